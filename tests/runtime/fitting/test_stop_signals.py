"""SIGTERM and SIGINT as an exception (runtime.fitting.stop_signals), in a real process sent real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STOPPABLE = """
import signal, sys, time
from runtime.fitting.stop_signals import StopRequested, raise_on_stop_signals
raise_on_stop_signals()
try:
    print("ready", flush=True)
    time.sleep(60)  # a fit in flight
except StopRequested as stop:
    print(f"unwound: {stop}", flush=True)
    sys.stdin.readline()  # writing what is held: a second signal arrives meanwhile
    print("wrote what it held", flush=True)
    sys.exit(stop.exit_status)
"""


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT])
def test_the_first_stop_signal_unwinds_and_later_ones_do_not_cut_the_cleanup_short(first: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(first)
        assert process.stdout.readline() == f"unwound: stopped by {signal.Signals(first).name}\n"
        process.send_signal(signal.SIGTERM)  # ignored now
        process.stdin.write("go on\n")
        process.stdin.flush()
        assert process.stdout.readline() == "wrote what it held\n"
        assert process.wait(timeout=10) == 128 + first
    finally:
        process.kill()
        process.wait()
