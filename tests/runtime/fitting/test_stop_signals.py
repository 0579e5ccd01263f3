"""SIGTERM and SIGINT end a worker once what it holds is written (runtime.fitting.stop_signals), in a real
process sent real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STOPPABLE = """
import sys, time
from runtime.fitting.stop_signals import exit_on_stop_signals

def write_held():
    print("writing", flush=True)
    sys.stdin.readline()  # a slow write: a second signal arrives meanwhile
    print("written", flush=True)

exit_on_stop_signals(write_held)
print("ready", flush=True)
try:
    time.sleep(60)  # a fit in flight
    print("the fit went on undisturbed", flush=True)
    time.sleep(60)
except BaseException as error:
    print(f"the fit was interrupted: {error!r}", flush=True)
"""


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT])
def test_the_first_stop_signal_writes_what_is_held_and_exits_and_later_ones_do_not_cut_it_short(
    first: int,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(first)
        assert process.stdout.readline() == "writing\n"
        process.send_signal(signal.SIGTERM)  # ignored now
        process.stdin.write("go on\n")
        process.stdin.flush()
        assert process.stdout.readline() == "written\n"
        assert process.wait(timeout=10) == 128 + first
        assert process.stdout.read() == ""  # nothing was raised into the fit in flight
        assert (
            process.stderr.read()
            == f"stopped by {signal.Signals(first).name}: the results held were written\n"
        )
    finally:
        process.kill()
        process.wait()


FAILING_WRITE = """
import time
from runtime.fitting.stop_signals import exit_on_stop_signals

def write_held():
    raise OSError("the disk is gone")

exit_on_stop_signals(write_held)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_stop_whose_write_fails_says_so_and_still_exits() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", FAILING_WRITE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert "OSError: the disk is gone" in log
    assert log.endswith("stopped by SIGTERM: writing the results held failed\n")
