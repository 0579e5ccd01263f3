"""Retries of errors of the machinery (runtime.fitting.retries): each attempt logged, a stop let through."""

from __future__ import annotations

import pytest

from runtime.fitting.retries import with_retries


def test_an_action_that_recovers_returns_its_value_and_logs_each_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[int] = []

    def action() -> str:
        calls.append(len(calls))
        if len(calls) < 3:
            raise OSError(28, "No space left on device")
        return "written"

    assert with_retries(action, attempts=3, delay=0.0, subject="batch x", failure="at writing it failed") == (
        "written",
        None,
    )
    log = capsys.readouterr().err
    assert "batch x: attempt 1 of 3 at writing it failed: OSError: [Errno 28] No space left on device" in log
    assert "attempt 2 of 3" in log and "attempt 3" not in log


def test_a_persistent_error_gives_its_last_line_after_every_attempt() -> None:
    calls: list[int] = []

    def action() -> None:
        calls.append(1)
        raise ValueError(f"bad {len(calls)}")

    assert with_retries(action, attempts=3, delay=0.0, subject="s", failure="f") == (
        None,
        "ValueError: bad 3",
    )
    assert len(calls) == 3


def test_an_interrupt_is_not_retried() -> None:
    calls: list[int] = []

    def action() -> None:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with_retries(action, attempts=3, delay=0.0, subject="s", failure="f")
    assert calls == [1]
