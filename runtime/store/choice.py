"""A store from its URI: a directory path or ``s3://bucket[/prefix]``."""

from __future__ import annotations

from pathlib import Path

from runtime.errors import StanFleetError
from runtime.store.local import LocalDirectoryStore
from runtime.store.protocol import ObjectStore


def open_store(uri: str) -> ObjectStore:
    """Open the store named by ``uri``: a directory path, ``file://`` URI or ``s3://bucket[/prefix]``."""
    if "://" not in uri:
        return LocalDirectoryStore(Path(uri))
    scheme, _, rest = uri.partition("://")
    if scheme == "file":
        return LocalDirectoryStore(Path(rest))
    if scheme == "s3":
        from runtime.store.s3 import S3Store  # boto3 only when an S3 store is asked for

        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StanFleetError(f"--store must name a bucket, got {uri!r}")
        return S3Store(bucket, prefix)
    raise StanFleetError(
        f"--store must be a directory, file:// or s3:// URI, got unsupported scheme {scheme!r}"
    )
