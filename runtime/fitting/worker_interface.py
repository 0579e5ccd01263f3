"""How the worker is told what to do: its replicate-list syntax and the environment it reads.

Light on purpose (no engine, no ArviZ): the local executor imports it to start workers.
"""

from __future__ import annotations

from collections.abc import Mapping

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
