"""What every object store (runtime/store/protocol.py) must do, run against the local directory store and
S3 (in moto) alike.

Each store's own file adds what is particular to it: test_local.py (atomic files, keys kept inside the
root), test_s3.py (the bucket, ranged GETs, paginated listing); test_choice.py opens stores from URIs.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from runtime.store.local import LocalDirectoryStore
from runtime.store.protocol import ObjectStore
from runtime.store.s3 import S3Store

STORES = ("local", "s3")
BUCKET = "stanfleet-store-contract-test"


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalDirectoryStore(tmp_path)
        return
    request.getfixturevalue("aws_credentials")  # fake credentials: moto, never a real account
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield S3Store(BUCKET, "team/a")  # under a prefix: keys must come back without it


def test_put_get_exists_and_list(store: ObjectStore) -> None:
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
    assert sorted(store.list_keys("ensembles/")) == [  # keys at every depth under the prefix
        "ensembles/a/results/000001.json",
        "ensembles/a/results/000002.json",
        "ensembles/b/spec.json",
    ]
    assert list(store.list_keys("ensembles/missing/")) == []


def test_get_missing_raises_key_error(store: ObjectStore) -> None:
    with pytest.raises(KeyError, match=re.escape("'nothing.json'")):
        store.get("nothing.json")


def test_put_replaces_the_previous_version(store: ObjectStore) -> None:
    store.put("k/x.json", b"old")
    store.put("k/x.json", b"new")
    assert store.get("k/x.json") == b"new"
    assert list(store.list_keys("k/")) == ["k/x.json"]


def test_get_range_reads_a_slice_and_stops_at_the_end(store: ObjectStore) -> None:
    store.put("k/x.bin", b"0123456789")
    assert store.get_range("k/x.bin", 2, 5) == b"234"
    assert store.get_range("k/x.bin", 8, 100) == b"89"
    assert store.get_range("k/x.bin", 20, 30) == b""
    assert store.get_range("k/x.bin", 5, 5) == b""
    with pytest.raises(KeyError, match=re.escape("'k/missing.bin'")):
        store.get_range("k/missing.bin", 0, 1)


def test_delete_removes_the_object_and_a_missing_one_is_no_error(store: ObjectStore) -> None:
    store.put("k/x.json", b"x")
    store.put("k/y.json", b"y")
    store.delete("k/x.json")
    assert not store.exists("k/x.json")
    with pytest.raises(KeyError, match=re.escape("'k/x.json'")):
        store.get("k/x.json")
    assert list(store.list_keys("k/")) == ["k/y.json"]
    store.delete("k/x.json")  # already gone
    store.delete("k/never.json")
    assert store.get("k/y.json") == b"y"
