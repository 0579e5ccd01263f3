"""The ensemble lock with real processes: who waits, what a killed holder leaves, a store without locks."""

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runtime.ensemble import lock as ensemble_lock
from runtime.ensemble.lock import fitting_lock, lock_path
from runtime.store.local import LocalDirectoryStore

ROOT = Path(__file__).resolve().parents[3]

HOLD = """
import os, sys, time
from runtime.ensemble.lock import fitting_lock
from runtime.store.local import LocalDirectoryStore
with fitting_lock(LocalDirectoryStore(__import__("pathlib").Path(sys.argv[1])), "e1"):
    if sys.argv[2] == "fork":  # a child forked while the lock is held, as httpstan's pool is
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    print("held", flush=True)
    time.sleep(60)
"""


def hold_lock(store: Path, fork: bool = False) -> subprocess.Popen[str]:
    """A process that takes ensemble e1's lock, says so, and keeps it (in its own process group)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store), "fork" if fork else "-"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def acquire_timed(store: Path) -> tuple[float, list[str]]:
    """Take e1's lock here: seconds until held, and the lines said while waiting."""
    said: list[str] = []
    started = time.monotonic()
    with fitting_lock(LocalDirectoryStore(store), "e1", on_wait=said.append):
        return time.monotonic() - started, said


def test_a_second_holder_says_who_holds_the_lock_and_waits_for_it(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path)
    try:
        threading.Timer(1.5, holder.kill).start()
        waited, said = acquire_timed(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert waited >= 1.0
    assert len(said) == 1
    assert said[0].startswith(f"ensemble e1 is being fitted by another submission (pid {holder.pid} on ")
    assert "waiting for it to finish" in said[0]


@pytest.mark.parametrize("fork", [False, True], ids=["alone", "with-a-forked-child-alive"])
def test_a_killed_holder_leaves_the_lock_free_at_once(tmp_path: Path, fork: bool) -> None:
    holder = hold_lock(tmp_path, fork=fork)
    os.kill(holder.pid, signal.SIGKILL)  # the holder only: its forked child lives on
    holder.wait()
    try:
        waited, said = acquire_timed(tmp_path)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the forked child, if any
            os.killpg(holder.pid, signal.SIGKILL)
    assert said == []
    assert waited < 0.5


def test_the_lock_file_is_not_an_object_of_the_store(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    with fitting_lock(store, "e1"):
        assert lock_path(store, "e1").is_file()
        assert list(store.list_keys("ensembles/")) == []
    assert not lock_path(store, "e1").parent.exists()  # released: nothing left behind


TAKE_TURNS = """
import sys
from pathlib import Path
from runtime.ensemble.lock import fitting_lock
from runtime.store.local import LocalDirectoryStore
store = Path(sys.argv[1])
for _ in range(300):
    with fitting_lock(LocalDirectoryStore(store), "e1", on_wait=lambda line: None):
        inside = store / "inside"
        inside.mkdir()  # fails if another process is inside too
        inside.rmdir()
"""


def test_processes_take_turns_and_never_hold_the_lock_together(tmp_path: Path) -> None:
    # Each holder removes the lock file (and its folder) as it unlocks: a waiter that was locked on the
    # removed file must notice and lock the new one, or two processes would hold the lock at once.
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TAKE_TURNS, str(tmp_path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [
        (process.wait(timeout=120), process.stderr.read() if process.stderr else "") for process in processes
    ]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert not (tmp_path / "ensembles" / "e1").exists()


def test_a_store_without_working_locks_is_warned_about_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_locks(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(ensemble_lock.fcntl, "lockf", no_locks)
    ran = []
    with fitting_lock(LocalDirectoryStore(tmp_path), "e1"):
        ran.append(True)
    assert ran == [True]
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1
    assert warning.startswith(f"warning: the store {tmp_path} is on a filesystem without working file locks")


def test_taking_the_lock_clears_what_a_killed_submitters_writes_left_half_done(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put("ensembles/e1/results/000000.json", b"{}")
    partial = tmp_path / "ensembles" / "e1" / "results" / ".000003.json.hj9laudb.tmp"
    partial.write_bytes(b'{"replic')  # SIGKILL mid-write leaves the temporary file
    other = tmp_path / "ensembles" / "e2" / "results" / ".000001.json.abc.tmp"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"{")  # another ensemble's writer may still be at work
    with fitting_lock(store, "e1", on_wait=lambda line: None):
        assert not partial.exists()
    assert other.exists() and store.exists("ensembles/e1/results/000000.json")
