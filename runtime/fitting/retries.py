"""Retry an action that fails for reasons of the machinery (a store, a sampler process), logging each try."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

from runtime.fitting.fit_replicate import describe_failure

T = TypeVar("T")


def with_retries(
    action: Callable[[], T], *, attempts: int, delay: float, subject: str, failure: str
) -> tuple[T, None] | tuple[None, str]:
    """Run ``action`` until it returns, at most ``attempts`` times; its value, or the last error's line.

    Returns ``(value, None)`` or ``(None, error)``. Each failure is logged on stderr as ``<subject>: attempt i of n <failure>: <error>`` with its full
    text; the pause before attempt i + 1 is ``delay * i``. Only Exceptions are retried: an interrupt
    (a KeyboardInterrupt, a SystemExit) goes through.
    """
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            return action(), None
        except Exception as exc:
            error, detail = describe_failure(exc)
            print(
                f"{subject}: attempt {attempt} of {attempts} {failure}: {error}\n{detail}",
                file=sys.stderr,
                flush=True,
            )
            if attempt < attempts:
                time.sleep(delay * attempt)
    return None, error
