import os
from pathlib import Path

import pytest

from runtime.errors import StanFleetError
from runtime.store.choice import open_store
from runtime.store.local import LocalDirectoryStore


def test_put_get_exists_and_list(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("ensembles/a/results/000001.json", b"one")
    store.put("ensembles/a/results/000002.json", b"two")
    store.put("ensembles/b/spec.json", b"spec")
    assert store.get("ensembles/a/results/000001.json") == b"one"
    assert store.exists("ensembles/b/spec.json")
    assert not store.exists("ensembles/b/other.json")
    assert sorted(store.list_keys("ensembles/a/")) == [
        "ensembles/a/results/000001.json",
        "ensembles/a/results/000002.json",
    ]
    assert list(store.list_keys("ensembles/missing/")) == []


def test_get_missing_raises_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        LocalDirectoryStore(tmp_path).get("nothing.json")


def test_put_replaces_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("k/x.json", b"old")
    store.put("k/x.json", b"new")
    assert store.get("k/x.json") == b"new"
    assert os.listdir(tmp_path / "k") == ["x.json"]


def test_temporary_files_of_writes_in_flight_are_not_listed(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("k/done.json", b"1")
    (tmp_path / "k" / ".half.json.123.tmp").write_bytes(b"partial")
    assert list(store.list_keys("k/")) == ["k/done.json"]


def test_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    with pytest.raises(ValueError, match="invalid store key"):
        store.put("../outside.json", b"x")


def test_open_store_accepts_paths_and_file_uris(tmp_path: Path) -> None:
    assert open_store(str(tmp_path)).uri == str(tmp_path.resolve())
    assert open_store(f"file://{tmp_path}").uri == str(tmp_path.resolve())
    with pytest.raises(StanFleetError, match="unsupported scheme 'ftp'"):
        open_store("ftp://host/x")


def test_get_range_reads_a_slice_and_stops_at_the_end(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("k/x.bin", b"0123456789")
    assert store.get_range("k/x.bin", 2, 5) == b"234"
    assert store.get_range("k/x.bin", 8, 100) == b"89"
    assert store.get_range("k/x.bin", 20, 30) == b""
    with pytest.raises(KeyError):
        store.get_range("k/missing.bin", 0, 1)
