"""The product's one base exception, and how command lines report it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class StanFleetError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero.

    ``detail`` keeps the full text the message was trimmed from (a Stan engine's output), if any.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class MachineryError(StanFleetError):
    """An error of the machinery that runs a fit, not of the model and data.

    Its sources: an engine's I/O or protocol, a killed sampler process, memory, the store, or a bug. A fit
    that raises it is retried and, if it persists, reported as an error of the run; it is never stored as
    the replicate's result.
    """


def exit_status(command: Callable[[], int]) -> int:
    """Run a command line's body: a StanFleetError becomes ``error: <message>`` on stderr and exit 1."""
    try:
        return command()
    except StanFleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
