"""Read an ensemble's stored results: as result objects, or streamed into a score table.

One listing, then the reads run on ``RESULT_READERS`` threads (a remote store's reads are latency-bound,
so R = 10,000 results take seconds instead of minutes), a bounded window of them ahead of the reader: the
payloads never sit in memory all together. A result is an object of its own or a line of a batch
(:func:`runtime.store.keys.result_batch_key`); a replicate stored twice (a batch rewritten after a retry)
is read once, from the object listed first.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from runtime.sbc.results import ReplicateResult
from runtime.sbc.score_table import ScoreTable, ScoreTableBuilder
from runtime.store.keys import is_result_batch_key, replicates_of_result_key, results_prefix
from runtime.store.protocol import ObjectStore

RESULT_READERS = 10
"""Threads reading results; botocore keeps 10 connections per client by default."""
KEYS_PER_TASK = 16
"""Results each thread reads in one task: a task per result costs more than a local read."""
TASKS_AHEAD = 2 * RESULT_READERS
"""Tasks in flight: at most this many times KEYS_PER_TASK results are read ahead of the one parsed."""


def result_keys(store: ObjectStore, ensemble_id: str, requested: int) -> list[str]:
    """The keys of the objects holding results of replicates ``0..requested-1``, by first replicate."""
    listed = [(replicates_of_result_key(key), key) for key in store.list_keys(results_prefix(ensemble_id))]
    return [
        key
        for replicates, key in sorted(listed, key=lambda item: (item[0][0], item[1]))
        if replicates[0] < requested
    ]


def stored_replicates(keys: list[str], requested: int) -> set[int]:
    """The replicates ``0..requested-1`` the objects at ``keys`` hold results of."""
    return {r for key in keys for r in replicates_of_result_key(key) if r < requested}


def stored_payloads(store: ObjectStore, keys: list[str]) -> Iterator[bytes]:
    """The objects at ``keys``, in that order, read on ``RESULT_READERS`` threads a bounded window ahead."""

    def read(task: list[str]) -> list[bytes]:
        return [store.get(key) for key in task]

    tasks = [keys[start : start + KEYS_PER_TASK] for start in range(0, len(keys), KEYS_PER_TASK)]
    with ThreadPoolExecutor(max_workers=RESULT_READERS) as pool:
        for start in range(0, len(tasks), TASKS_AHEAD):
            for payloads in pool.map(read, tasks[start : start + TASKS_AHEAD]):
                yield from payloads


def batch_payload(results: list[bytes]) -> bytes:
    """A batch object's content: one result's JSON per line, in the order of the key's replicates."""
    return b"\n".join(results)


def stored_objects(store: ObjectStore, keys: list[str]) -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """Each object at ``keys`` with its results: ``(key, [(replicate, result JSON), ...])``."""
    for key, payload in zip(keys, stored_payloads(store, keys), strict=True):
        replicates = replicates_of_result_key(key)
        lines = payload.splitlines() if is_result_batch_key(key) else [payload]
        if len(lines) != len(replicates):
            raise ValueError(f"{key} holds {len(lines)} results, its name lists {len(replicates)}")
        yield key, list(zip(replicates, lines, strict=True))


def result_payloads(store: ObjectStore, keys: list[str], requested: int) -> Iterator[bytes]:
    """Each result of replicates ``0..requested-1`` in the objects at ``keys``, once, as JSON bytes."""
    seen: set[int] = set()
    for _, results in stored_objects(store, keys):
        for replicate, line in results:
            if replicate < requested and replicate not in seen:
                seen.add(replicate)
                yield line


def load_results(store: ObjectStore, ensemble_id: str, requested: int) -> list[ReplicateResult]:
    """Every result of replicates ``0..requested-1`` present in the store, in replicate order."""
    keys = result_keys(store, ensemble_id, requested)
    results = [ReplicateResult.from_json(payload) for payload in result_payloads(store, keys, requested)]
    return sorted(results, key=lambda result: result.replicate)


def load_score_table(store: ObjectStore, ensemble_id: str, requested: int) -> ScoreTable:
    """The score table of every result of replicates ``0..requested-1`` present in the store."""
    keys = result_keys(store, ensemble_id, requested)
    builder = ScoreTableBuilder(expected=len(stored_replicates(keys, requested)))
    for payload in result_payloads(store, keys, requested):
        builder.add(payload)
    return builder.build()
