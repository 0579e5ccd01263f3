"""What is particular to the local directory store; the contract it shares with S3 is test_contract.py."""

import os
from pathlib import Path

import pytest

from runtime.store.local import LocalDirectoryStore


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


def test_partial_writes_of_killed_writers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("e/results/000001.json", b"1")
    for partial in ("e/results/.000003.json.hj9laudb.tmp", "e/.spec.json.x.tmp"):
        (tmp_path / partial).write_bytes(b"partial")
    (tmp_path / "e" / ".fitting.lock").write_bytes(b"pid")
    assert store.remove_partial_writes("e/") == 2
    assert sorted(p.name for p in (tmp_path / "e").rglob("*")) == [".fitting.lock", "000001.json", "results"]
    assert store.remove_partial_writes("missing/") == 0


def test_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    with pytest.raises(ValueError, match=r"^invalid store key '\.\./outside\.json'$"):
        store.put("../outside.json", b"x")
