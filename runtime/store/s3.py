"""The S3 object store: the same operations as the local directory store, on a bucket.

``s3://bucket`` or ``s3://bucket/prefix``. The endpoint and region follow boto3's own configuration
(e.g. ``AWS_ENDPOINT_URL_S3`` for a moto server) unless a region is given. S3 writes are atomic per
object.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError


class S3Store:
    """An object store on an S3 bucket, keys under an optional prefix."""

    def __init__(self, bucket: str, prefix: str = "", *, region: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._region = region

    @cached_property
    def _client(self) -> Any:
        return boto3.client("s3", region_name=self._region)

    def get(self, key: str) -> bytes:
        """Return the object's bytes; KeyError if it does not exist."""
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise
        return body

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        """Return bytes ``start..stop-1`` of the object (fewer at its end) with one ranged GET."""
        if stop <= start:
            return b""
        try:
            response = self._client.get_object(
                Bucket=self.bucket, Key=self.prefix + key, Range=f"bytes={start}-{stop - 1}"
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            if code == "InvalidRange":  # start is past the end of the object
                return b""
            raise
        body: bytes = response["Body"].read()
        return body

    def put(self, key: str, payload: bytes) -> None:
        """Write the object (S3 replaces objects atomically)."""
        self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=payload)

    def exists(self, key: str) -> bool:
        """Whether the object exists (one HEAD request)."""
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Remove the object (S3 answers a delete of a missing key with success too)."""
        self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Yield keys under ``prefix`` through the list_objects_v2 paginator."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]
