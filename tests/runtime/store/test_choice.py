"""open_store: a store from a directory path, a file:// URI or an s3:// URI."""

from pathlib import Path

import pytest

from runtime.errors import StanFleetError
from runtime.store.choice import open_store
from runtime.store.local import LocalDirectoryStore
from runtime.store.s3 import S3Store


def test_open_store_accepts_paths_and_file_uris(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalDirectoryStore)
    assert open_store(str(tmp_path)).uri == str(tmp_path.resolve())
    assert open_store(f"file://{tmp_path}").uri == str(tmp_path.resolve())
    with pytest.raises(StanFleetError, match="unsupported scheme 'ftp'"):
        open_store("ftp://host/x")


def test_open_store_accepts_s3_uris_with_a_prefix() -> None:
    store = open_store("s3://some-bucket/team/a")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("some-bucket", "team/a/")
    assert store.uri == "s3://some-bucket/team/a"
    assert open_store("s3://some-bucket").uri == "s3://some-bucket"


def test_bucket_is_required() -> None:
    with pytest.raises(StanFleetError, match="--store must name a bucket"):
        open_store("s3://")
