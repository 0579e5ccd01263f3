"""What is particular to the S3 store, against moto; the contract it shares with the local directory store
is test_contract.py."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from runtime.store.s3 import S3Store

BUCKET = "stanfleet-store-test"


@pytest.fixture
def bucket(aws_credentials: None) -> Iterator[str]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield BUCKET


def test_keys_are_kept_under_the_prefix_in_the_bucket(bucket: str) -> None:
    store = S3Store(bucket, "team/a")
    assert store.uri == f"s3://{bucket}/team/a"
    store.put("ensembles/e/results/000001.json", b"one")
    store.put("ensembles/e/spec.json", b"spec")
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


def test_missing_bucket_is_not_hidden(bucket: str) -> None:
    with pytest.raises(ClientError, match=r"\(NoSuchBucket\)") as error:
        S3Store("no-such-bucket-here").get("x")
    assert error.value.response["Error"]["Code"] == "NoSuchBucket"


def test_get_range_is_one_ranged_get_and_stops_at_the_end(bucket: str) -> None:
    store = S3Store(bucket, "p")
    store.put("k/x.bin", b"0123456789")
    ranges: list[str | None] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        ranges.append(params.get("Range"))

    store._client.meta.events.register("provide-client-params.s3.GetObject", record)
    assert store.get_range("k/x.bin", 2, 5) == b"234"
    assert store.get_range("k/x.bin", 8, 100) == b"89"
    assert store.get_range("k/x.bin", 20, 30) == b""
    assert store.get_range("k/x.bin", 5, 5) == b""  # an empty range asks nothing
    with pytest.raises(KeyError, match=r"'k/missing\.bin'"):
        store.get_range("k/missing.bin", 0, 1)
    assert ranges == ["bytes=2-4", "bytes=8-99", "bytes=20-29", "bytes=0-0"]  # one ranged GET each
