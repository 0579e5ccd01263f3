"""Session-wide guard: the suite leaves no orphaned process running.

Every process a test starts inherits :data:`SESSION_VARIABLE`. When the session ends, any process still
carrying this session's value that is no longer a descendant of pytest (an orphaned worker, a killed
worker's sampler pool) is reported, killed, and fails the run. Pytest's own children (the CDK's jsii
runtime, which stops when the interpreter exits) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

SESSION_VARIABLE = "STANFLEET_TEST_SESSION"
GRACE_SECONDS = 10.0
"""How long processes get to end on their own (a CmdStan run finishing its fit) before they count."""


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ[SESSION_VARIABLE] = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    marker = f"{SESSION_VARIABLE}={os.environ.get(SESSION_VARIABLE)}".encode()
    deadline = time.monotonic() + GRACE_SECONDS
    while (left := processes_marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left:
        return
    for pid, command in left.items():
        print(f"\nleft running by the tests, now killed: pid {pid}: {command}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def processes_marked(marker: bytes) -> dict[int, str]:
    """Live orphans whose environment holds ``marker`` (not zombies, not pytest's descendants): pid -> command."""
    if not Path("/proc").is_dir():  # not Linux: nothing to check with
        return {}
    parents: dict[int, int] = {}
    marked: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            parents[int(entry.name)] = int(parent)
            if state == "Z" or marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            marked[int(entry.name)] = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return {pid: command.strip() for pid, command in marked.items() if not descends_from_us(pid, parents)}


def descends_from_us(pid: int, parents: dict[int, int]) -> bool:
    """Whether ``pid`` is this process or one of its descendants."""
    seen = set()
    while pid not in seen and pid > 1:
        if pid == os.getpid():
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False
