"""One fitter per ensemble on a local store: a lock file the OS releases when its holder dies.

A second submission of an ensemble that another process is fitting waits for that process, then goes
on as a rerun does: it fits what is still missing (nothing, if the first one finished) and reports.
Waiting, rather than joining in, keeps one dispatcher per ensemble: the first submission already uses
every core, so a second set of workers would only compete for them, and it would need a claim per
replicate where one lock per ensemble does.

The lock is a POSIX record lock (``fcntl.lockf``) on ``ensembles/<id>/.fitting.lock``. The kernel drops
it when its holder exits, however it dies (``kill -9`` included), so no stale lock outlives a submitter.
Unlike ``flock``, a record lock is not inherited by forked children (httpstan's sampler pool, the
report's renderers), which may outlive a killed submitter. Stores other than a local directory have no
lock: on AWS, the trigger's claims keep two uploads of one manifest from fitting anything twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from runtime.keys import ensemble_prefix
from runtime.store import LocalDirectoryStore, ObjectStore

LOCK_NAME = ".fitting.lock"
"""The lock file's name in the ensemble's folder (a dot name: the store's listings skip it)."""

_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
"""What ``lockf`` fails with on a filesystem without working locks (NFS without its lock daemon, some
FUSE filesystems)."""


def lock_path(store: LocalDirectoryStore, ensemble_id: str) -> Path:
    """Where the ensemble's lock file lives in a local store."""
    return store.root / ensemble_prefix(ensemble_id) / LOCK_NAME


@contextlib.contextmanager
def fitting_lock(
    store: ObjectStore, ensemble_id: str, *, on_wait: Callable[[str], None] = print
) -> Iterator[None]:
    """Hold the ensemble's lock for the block; while another process holds it, call ``on_wait`` once
    with a line saying who, then wait (Ctrl-C stops the wait).

    A store on a filesystem without working locks gets a one-line warning on stderr, and no lock.
    """
    if not isinstance(store, LocalDirectoryStore):
        yield
        return
    path = lock_path(store, ensemble_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as file:
        try:
            _acquire(file.fileno(), lambda: on_wait(_waiting_line(ensemble_id, path)))
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            print(
                f"warning: the store {store.uri} is on a filesystem without working file locks "
                f"({os.strerror(exc.errno)}): two submissions of ensemble {ensemble_id} at once would "
                "both fit its missing replicates",
                file=sys.stderr,
            )
            yield
            return
        _record_holder(file.fileno())
        try:
            yield
        finally:
            fcntl.lockf(file.fileno(), fcntl.LOCK_UN)


def _acquire(descriptor: int, announce_wait: Callable[[], None]) -> None:
    """Take the lock at once if it is free; else announce the wait and block until it is released."""
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            raise
    announce_wait()
    fcntl.lockf(descriptor, fcntl.LOCK_EX)


def _record_holder(descriptor: int) -> None:
    """Write who holds the lock into the lock file, for the message of a process that waits for it."""
    holder = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}\n"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, holder.encode(), 0)


def _waiting_line(ensemble_id: str, path: Path) -> str:
    holder = path.read_text().strip() or "another process"
    return (
        f"ensemble {ensemble_id} is being fitted by another submission ({holder}); waiting for it to "
        "finish, then fitting whatever it leaves missing (Ctrl-C stops waiting)"
    )
