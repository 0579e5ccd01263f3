"""One fitter per ensemble on a local store: a lock file the OS releases when its holder dies.

A second submission of an ensemble that another process is fitting waits for that process, then goes
on as a rerun does: it fits what is still missing (nothing, if the first one finished) and reports.
Waiting, rather than joining in, keeps one dispatcher per ensemble: the first submission already uses
every core, so a second set of workers would only compete for them, and it would need a claim per
replicate where one lock per ensemble does.

The lock is a POSIX record lock (``fcntl.lockf``) on ``ensembles/<id>/.fitting.lock``. The kernel drops
it when its holder exits, however it dies (``kill -9`` included), so no stale lock outlives a submitter.
Unlike ``flock``, a record lock is not inherited by forked children (httpstan's sampler pool, the
report's renderers), which may outlive a killed submitter. The holder removes the file as it releases
the lock, so the store holds no trace of a submission that wrote nothing. Stores other than a local
directory get no lock here: on AWS, the trigger takes one manifest upload of an ensemble at a time
(its lease) and submits jobs only for replicates that no running job holds.
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

from runtime.store.keys import ensemble_prefix
from runtime.store.local import LocalDirectoryStore
from runtime.store.protocol import ObjectStore

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
    """Hold the ensemble's lock for the block.

    While another process holds it, call ``on_wait`` once with a line saying who, then wait (Ctrl-C stops
    the wait). Once it holds the lock, the temporary files of writes a killed submitter left unfinished in
    the ensemble's folder are deleted. The lock file is removed on release, so a submission that stops on
    bad input leaves the store as it found it.

    A store on a filesystem without working locks gets a one-line warning on stderr, and no lock.
    """
    if not isinstance(store, LocalDirectoryStore):
        yield
        return
    path = lock_path(store, ensemble_id)
    try:
        descriptor = _open_locked(path, lambda: on_wait(_waiting_line(ensemble_id, path)))
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
    try:
        _record_holder(descriptor)
        # The holder is the ensemble's only writer: a partial write in its folder is a killed writer's.
        store.remove_partial_writes(ensemble_prefix(ensemble_id))
        yield
    finally:
        path.unlink(
            missing_ok=True
        )  # before unlocking: a waiter that gets the lock then finds its file gone and retries
        with contextlib.suppress(OSError):  # the folder this made, unless something else is in it
            path.parent.rmdir()
        os.close(descriptor)


def _open_locked(path: Path, announce_wait: Callable[[], None]) -> int:
    """Open the lock file and lock it, waiting if it is held (``announce_wait`` is called once).

    A holder removes the file before it unlocks: a lock taken on a file that is no longer at ``path``
    is dropped and taken again on the file there now.
    """
    announced = False
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, FileExistsError):  # a holder leaving removed the folder meanwhile
            continue
        try:
            try:
                fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                if not announced:
                    announce_wait()
                    announced = True
                fcntl.lockf(descriptor, fcntl.LOCK_EX)
            if _same_file(descriptor, path):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)


def _same_file(descriptor: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``descriptor``."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


def _record_holder(descriptor: int) -> None:
    """Write who holds the lock into the lock file, for the message of a process that waits for it."""
    holder = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}\n"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, holder.encode(), 0)


def _waiting_line(ensemble_id: str, path: Path) -> str:
    try:
        holder = path.read_text().strip() or "another process"
    except FileNotFoundError:  # released meanwhile
        holder = "another process"
    return (
        f"ensemble {ensemble_id} is being fitted by another submission ({holder}); waiting for it to "
        "finish, then fitting whatever it leaves missing (Ctrl-C stops waiting)"
    )
