"""Read an ensemble's stored results: as result objects, or streamed into a score table.

One listing, then the reads run on ``RESULT_READERS`` threads (a remote store's reads are latency-bound,
so R = 10,000 results take seconds instead of minutes), a bounded window of them ahead of the reader: the
payloads never sit in memory all together.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from runtime.sbc.results import ReplicateResult
from runtime.sbc.score_table import ScoreTable, ScoreTableBuilder
from runtime.store.keys import replicate_of_result_key, results_prefix
from runtime.store.protocol import ObjectStore

RESULT_READERS = 10
"""Threads reading results; botocore keeps 10 connections per client by default."""
KEYS_PER_TASK = 16
"""Results each thread reads in one task: a task per result costs more than a local read."""
TASKS_AHEAD = 2 * RESULT_READERS
"""Tasks in flight: at most this many times KEYS_PER_TASK results are read ahead of the one parsed."""


def result_keys(store: ObjectStore, ensemble_id: str, requested: int) -> list[str]:
    """The keys of the stored results of replicates ``0..requested-1``, in replicate order."""
    return sorted(
        key
        for key in store.list_keys(results_prefix(ensemble_id))
        if replicate_of_result_key(key) < requested
    )


def stored_payloads(store: ObjectStore, keys: list[str]) -> Iterator[bytes]:
    """The objects at ``keys``, in that order, read on ``RESULT_READERS`` threads a bounded window ahead."""

    def read(task: list[str]) -> list[bytes]:
        return [store.get(key) for key in task]

    tasks = [keys[start : start + KEYS_PER_TASK] for start in range(0, len(keys), KEYS_PER_TASK)]
    with ThreadPoolExecutor(max_workers=RESULT_READERS) as pool:
        for start in range(0, len(tasks), TASKS_AHEAD):
            for payloads in pool.map(read, tasks[start : start + TASKS_AHEAD]):
                yield from payloads


def load_results(store: ObjectStore, ensemble_id: str, requested: int) -> list[ReplicateResult]:
    """Every result of replicates ``0..requested-1`` present in the store, in replicate order."""
    keys = result_keys(store, ensemble_id, requested)
    return [ReplicateResult.from_json(payload) for payload in stored_payloads(store, keys)]


def load_score_table(store: ObjectStore, ensemble_id: str, requested: int) -> ScoreTable:
    """The score table of every result of replicates ``0..requested-1`` present in the store."""
    keys = result_keys(store, ensemble_id, requested)
    builder = ScoreTableBuilder(expected=len(keys))
    for payload in stored_payloads(store, keys):
        builder.add(payload)
    return builder.build()
