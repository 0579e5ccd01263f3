from __future__ import annotations

from pathlib import Path

from runtime.executors.dask_tasks import probe_store
from runtime.store.local import LocalDirectoryStore


def test_a_store_the_worker_reads_and_writes_passes_and_keeps_nothing(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("probes/p", b"token")
    assert probe_store(str(tmp_path), "probes/p", b"token") is None
    assert list(store.list_keys("probes/")) == ["probes/p"]


def test_a_store_without_the_probe_is_named_in_the_answer(tmp_path: Path) -> None:
    assert (
        probe_store(str(tmp_path / "elsewhere"), "probes/p", b"token")
        == "the probe object probes/p is not there"
    )


def test_another_store_at_the_same_path_is_told_apart(tmp_path: Path) -> None:
    LocalDirectoryStore(tmp_path).put("probes/p", b"other")
    assert (
        probe_store(str(tmp_path), "probes/p", b"token")
        == "the probe object probes/p holds other bytes there"
    )
