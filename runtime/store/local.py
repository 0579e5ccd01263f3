"""The local store: keys are files under a directory, written atomically."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from runtime.store.atomic_file import write_atomically


class LocalDirectoryStore:
    """An object store in a local directory; keys map to relative file paths."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid store key {key!r}")
        return self.root / key

    def get(self, key: str) -> bytes:
        """Return the object's bytes; KeyError if it does not exist."""
        try:
            with open(self._path(key), "rb") as file:  # Path.read_bytes costs twice as much
                return file.read()
        except FileNotFoundError:
            raise KeyError(key) from None

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        """Return bytes ``start..stop-1`` of the object (fewer at its end); KeyError if it does not exist."""
        try:
            with self._path(key).open("rb") as file:
                file.seek(start)
                return file.read(max(0, stop - start))
        except FileNotFoundError:
            raise KeyError(key) from None

    def put(self, key: str, payload: bytes) -> None:
        """Write to a temporary file in the same directory, fsync, then rename over the key."""
        write_atomically(self._path(key), payload)

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object's file; nothing happens if it does not exist."""
        self._path(key).unlink(missing_ok=True)

    def remove_partial_writes(self, folder: str) -> int:
        """Delete the temporary files that writes under ``folder`` left unfinished; return how many.

        A writer killed with SIGKILL leaves its temporary file (``.<name>.<random>.tmp``) behind. Call
        this only where no write under ``folder`` can be in flight.
        """
        removed = 0
        pending = [str(self._path(folder))]
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
        return removed

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Yield keys under ``prefix``; temporary files of writes in flight are skipped."""
        directory = prefix.rpartition("/")[0]
        base = self._path(directory) if directory else self.root
        if not base.is_dir():
            return
        # os.scandir on strings: a million keys list in seconds, where Path.rglob takes half a minute.
        pending = [(str(base), f"{directory}/" if directory else "")]
        while pending:
            folder, relative = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    key = relative + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, f"{key}/"))
                    elif entry.is_file() and key.startswith(prefix):
                        yield key
