"""Processes tied to their parent: forked children die with it, a worker follows its executor."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.executors.lifetime import PARENT_PID_VARIABLE

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

# Each prints the pid of the child it started, then sleeps until killed.
FORKING_PARENT = """
import os, time
from runtime.executors.lifetime import forked_children_die_with_this_process
forked_children_die_with_this_process()
child = os.fork()
if child == 0:
    time.sleep(600)
    os._exit(0)
print(child, flush=True)
time.sleep(600)
"""
SPAWNING_PARENT = f"""
import os, subprocess, sys, time
follower = "from runtime.executors.lifetime import follow_parent; import os, time; follow_parent(os.environ); time.sleep(600)"
environment = {{**os.environ, "{PARENT_PID_VARIABLE}": str(os.getpid())}}
child = subprocess.Popen([sys.executable, "-c", follower], env=environment)
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def gone_within(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@contextlib.contextmanager
def parent_and_child(program: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run ``program`` in its own process group; yield it and the pid it prints. Kills the group after."""
    parent = subprocess.Popen(
        [sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        yield parent, int(parent.stdout.readline())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


@pytest.mark.parametrize("program", [FORKING_PARENT, SPAWNING_PARENT], ids=["forked", "following"])
def test_the_child_dies_with_its_killed_parent(program: str) -> None:
    with parent_and_child(program) as (parent, child):
        time.sleep(0.5)  # the child has set its death signal
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # no handler runs: only the kernel can end the child
        parent.wait()
        assert gone_within(child)


def test_a_process_told_to_follow_a_parent_it_does_not_have_exits_at_once() -> None:
    code = "from runtime.executors.lifetime import follow_parent; import os; follow_parent(os.environ); print('ran')"
    environment = {**os.environ, PARENT_PID_VARIABLE: "1"}  # init: not this process's parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (1, "")


def test_exit_quickly_runs_the_exit_handlers_and_flushes(tmp_path: Path) -> None:
    marker = tmp_path / "handler-ran"
    code = f"""
import atexit, gc, pathlib, sys
from runtime.executors.lifetime import exit_quickly
from concurrent.futures import ProcessPoolExecutor
atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text(f"frozen: {{gc.get_freeze_count() > 0}}"))
pool = ProcessPoolExecutor(1)  # as httpstan's sampler pool: shut down at exit, not waited for forever
assert pool.submit(abs, -2).result() == 2
print("buffered, not yet flushed", end="")
print("to stderr", end="", file=sys.stderr)
exit_quickly(3)
print("never")
"""
    finished = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 3
    assert finished.stdout == "buffered, not yet flushed"
    assert finished.stderr == "to stderr"
    assert marker.read_text() == "frozen: True"  # the exit skips collecting what was alive
