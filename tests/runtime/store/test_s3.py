"""The S3 store against moto: the same contract as the local directory store."""

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from runtime.errors import StanFleetError
from runtime.store.choice import open_store
from runtime.store.s3 import S3Store

BUCKET = "stanfleet-store-test"


@pytest.fixture
def bucket(aws_credentials: None) -> Iterator[str]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield BUCKET


def test_put_get_exists_and_list_under_a_prefix(bucket: str) -> None:
    store = open_store(f"s3://{bucket}/team/a")
    assert isinstance(store, S3Store)
    assert store.uri == f"s3://{bucket}/team/a"
    store.put("ensembles/e/results/000001.json", b"one")
    store.put("ensembles/e/spec.json", b"spec")
    assert store.get("ensembles/e/results/000001.json") == b"one"
    assert store.exists("ensembles/e/spec.json")
    assert not store.exists("ensembles/e/other.json")
    assert sorted(store.list_keys("ensembles/e/")) == [
        "ensembles/e/results/000001.json",
        "ensembles/e/spec.json",
    ]
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["team/a/ensembles/e/results/000001.json", "team/a/ensembles/e/spec.json"]


def test_listing_follows_pages(bucket: str) -> None:
    store = S3Store(bucket)
    for index in range(1005):  # more than one page of list_objects_v2
        store.put(f"r/{index:06d}", b"")
    assert len(list(store.list_keys("r/"))) == 1005


def test_missing_object_is_a_key_error(bucket: str) -> None:
    with pytest.raises(KeyError):
        S3Store(bucket).get("nothing.json")


def test_missing_bucket_is_not_hidden(bucket: str) -> None:
    with pytest.raises(ClientError) as error:
        S3Store("no-such-bucket-here").get("x")
    assert error.value.response["Error"]["Code"] == "NoSuchBucket"


def test_bucket_is_required() -> None:
    with pytest.raises(StanFleetError, match="--store must name a bucket"):
        open_store("s3://")


def test_get_range_is_one_ranged_get_and_stops_at_the_end(bucket: str) -> None:
    store = S3Store(bucket, "p")
    store.put("k/x.bin", b"0123456789")
    assert store.get_range("k/x.bin", 2, 5) == b"234"
    assert store.get_range("k/x.bin", 8, 100) == b"89"
    assert store.get_range("k/x.bin", 20, 30) == b""
    assert store.get_range("k/x.bin", 5, 5) == b""
    with pytest.raises(KeyError):
        store.get_range("k/missing.bin", 0, 1)
