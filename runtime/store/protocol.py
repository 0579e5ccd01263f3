"""The object-store seam: where specs, inputs and results live.

A store holds byte objects under ``/``-separated keys (:mod:`runtime.store.keys`).
:class:`~runtime.store.local.LocalDirectoryStore` maps keys to files under a directory;
:class:`~runtime.store.s3.S3Store` keeps them in a bucket, with the same methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class ObjectStore(Protocol):
    """Minimal object store: every write is atomic, readers never see half an object."""

    uri: str

    def get(self, key: str) -> bytes:
        """Return the object's bytes; KeyError if it does not exist."""
        ...

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        """Return bytes ``start..stop-1`` of the object (fewer at its end); KeyError if it does not exist."""
        ...

    def put(self, key: str, payload: bytes) -> None:
        """Write the object atomically, replacing any previous version."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens if it does not exist."""
        ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Yield every key that starts with ``prefix``, in no particular order."""
        ...
