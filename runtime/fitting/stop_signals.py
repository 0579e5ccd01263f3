"""On SIGTERM or SIGINT, write the results a worker holds, then end it.

ECS stops a container (a Batch job's timeout, ``runtime.cancel``, a stop of the task) with SIGTERM,
then SIGKILL after the agent's stop timeout (30 s by default); the local executor stops its workers the
same way, and the kernel sends SIGTERM to a worker whose submitter died.

The signal's handler only starts a thread, which writes what is held and ends the process with status
128 + the signal's number. The fit in flight is not interrupted but abandoned, as a kill would: no
exception is raised into the sampler's code, where PyStan's event loop can swallow it and then wait
forever for the abandoned fit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_on_stop_signals(write_held: Callable[[], None]) -> None:
    """On the first SIGTERM or SIGINT, run ``write_held`` on a thread of its own, then end the process.

    The exit status is the shell's for a process ended by the signal, 128 + its number. Later stop
    signals are ignored, so that the write is not cut short (SIGKILL still is). A process that is PID 1
    of a container needs a handler: the kernel drops the signals PID 1 has none for.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        threading.Thread(target=_write_then_exit, args=(write_held, signum), name="stop", daemon=True).start()

    for each in STOP_SIGNALS:
        signal.signal(each, stop)


def _write_then_exit(write_held: Callable[[], None], signum: int) -> NoReturn:
    outcome = "the results held were written"
    try:
        write_held()
    except Exception:  # the process ends all the same: say why the results may be missing
        traceback.print_exc()
        outcome = "writing the results held failed"
    print(f"stopped by {signal.Signals(signum).name}: {outcome}", file=sys.stderr, flush=True)
    os._exit(128 + signum)  # not a normal exit: that would wait for the abandoned fit's sampler processes
