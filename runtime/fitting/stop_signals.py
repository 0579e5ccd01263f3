"""Turn SIGTERM and SIGINT into an exception, so a worker told to stop writes what it holds first.

ECS stops a container (a Batch job's timeout, ``runtime.cancel``, a stop of the task) with SIGTERM,
then SIGKILL after the agent's stop timeout (30 s by default); the local executor stops its workers the
same way. The exception unwinds the fit in flight; the worker's ``finally`` writes the results it holds.
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(SystemExit):
    """Raised in the main thread by SIGTERM or SIGINT; its exit status is the shell's, 128 + the number.

    A SystemExit, so that it gets through the worker's handlers of fit errors (``except Exception``) and
    through asyncio's event loop (PyStan's client runs in one), which swallows any other BaseException
    raised in a callback and carries on.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"

    @property
    def exit_status(self) -> int:
        """The shell's status for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


def raise_on_stop_signals() -> None:
    """Make the first SIGTERM or SIGINT raise :class:`StopRequested`; later ones are ignored.

    Ignored, so that writing the results held is not cut short by a second signal (SIGKILL still is).
    A process that is PID 1 of a container needs this: the kernel drops signals PID 1 has no handler for.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise StopRequested(signum)

    for each in STOP_SIGNALS:
        signal.signal(each, stop)
