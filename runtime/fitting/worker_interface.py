"""How the worker is told what to do: its replicate-list syntax and the environment it reads.

Light on purpose (no engine, no ArviZ): the local executor imports it to start workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runtime.errors import StanFleetError

WORKER_CORES_VARIABLE = "STANFLEET_WORKER_CORES"
"""Cores one fit may use (default 1): the local executor divides the machine's cores among its workers,
and the Batch job definition sets the job's vCPUs."""


def worker_cores(environment: Mapping[str, str]) -> int:
    """Cores one fit may use: ``STANFLEET_WORKER_CORES``, else 1.

    The local executor and the Batch job definition set ``STANFLEET_WORKER_CORES``.
    """
    text = environment.get(WORKER_CORES_VARIABLE, "1")
    if not text.isdigit() or int(text) < 1:
        raise StanFleetError(f"{WORKER_CORES_VARIABLE} must be a positive integer, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class BatchWindow:
    """When a worker writes the results it holds: at ``max_results`` results or after ``max_seconds``."""

    max_results: int
    max_seconds: float

    def __post_init__(self) -> None:
        if self.max_results < 1 or self.max_seconds < 0:
            raise ValueError(f"a batch window needs max_results >= 1 and max_seconds >= 0, got {self}")


ARRAY_CHILD_WINDOW = BatchWindow(max_results=100, max_seconds=30.0)
"""A Batch array child writes at most 2 objects a minute however fast its fits are (a PUT costs
$0.005/1000), and a SIGKILL costs at most 30 s of fits; 100 fast fits (0.25 s each) fill a window in
25 s, so the window rarely holds more than a third of a child's work."""
LOCAL_WORKER_WINDOW = BatchWindow(max_results=100, max_seconds=2.0)
"""A local worker writes every 2 s: the progress bar counts stored results, so it moves at least that
often, and a store directory gets tens of files per thousand fast fits instead of a thousand."""

BATCH_RESULTS_VARIABLE = "STANFLEET_BATCH_RESULTS"
"""Results a worker holds before it writes them as one object (overrides its form's default)."""
BATCH_SECONDS_VARIABLE = "STANFLEET_BATCH_SECONDS"
"""Seconds the oldest held result waits at most before the worker writes what it holds."""


def batch_window(environment: Mapping[str, str], default: BatchWindow) -> BatchWindow:
    """The worker's batch window: ``default``, with the variables above overriding its parts."""
    results = environment.get(BATCH_RESULTS_VARIABLE, str(default.max_results))
    seconds = environment.get(BATCH_SECONDS_VARIABLE, str(default.max_seconds))
    try:
        return BatchWindow(max_results=int(results), max_seconds=float(seconds))
    except ValueError:
        raise StanFleetError(
            f"{BATCH_RESULTS_VARIABLE} must be a positive integer and {BATCH_SECONDS_VARIABLE} a "
            f"non-negative number of seconds, got {results!r} and {seconds!r}"
        ) from None


def child_index(environment: Mapping[str, str]) -> int:
    """The array child's index across all array jobs of a submission."""
    return int(environment.get("STANFLEET_CHILD_OFFSET", "0")) + int(
        environment.get("AWS_BATCH_JOB_ARRAY_INDEX", "0")
    )


def parse_replicates(text: str) -> list[int]:
    """Parse a comma-separated list of replicate numbers and ``a-b`` ranges (inclusive)."""
    replicates: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        replicates.extend(range(int(first), int(last or first) + 1))
    return replicates
