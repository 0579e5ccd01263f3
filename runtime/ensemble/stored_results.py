"""Read an ensemble's stored results: as result objects, or streamed into a score table.

One listing, then the reads run on ``RESULT_READERS`` threads (a remote store's reads are latency-bound,
so R = 10,000 results take seconds instead of minutes), at most ``RESULTS_AHEAD`` results ahead of the
reader: the payloads never sit in memory all together. A result is an object of its own or a line of a batch
(:func:`runtime.store.keys.result_batch_key`); a replicate stored twice (a batch rewritten after a retry)
is read once, from the object listed first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from runtime.sbc.results import ReplicateResult
from runtime.sbc.score_table import ScoreTable, ScoreTableBuilder
from runtime.store.keys import is_result_batch_key, replicates_of_result_key, results_prefix
from runtime.store.protocol import ObjectStore

RESULT_READERS = 10
"""Threads reading results; botocore keeps 10 connections per client by default."""
RESULTS_PER_TASK = 16
"""Results each thread reads in one task (a batch object holding more is a task alone): a task per
single-result object costs more than a local read."""
RESULTS_AHEAD = 1000
"""Results read at most ahead of the one parsed, counted by the names of the objects in flight: 10
batch objects of 100, 60 tasks of single results. It bounds the memory of the read-ahead (a result of
1000 scalars is about 300 KB) whether a store holds batches or one object per result."""


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

    tasks = _reading_tasks(keys)
    with ThreadPoolExecutor(max_workers=RESULT_READERS) as pool:
        in_flight: deque[tuple[Future[list[bytes]], int]] = deque()
        ahead, submitted = 0, 0
        while submitted < len(tasks) or in_flight:
            while submitted < len(tasks) and (not in_flight or ahead + tasks[submitted][1] <= RESULTS_AHEAD):
                task, results = tasks[submitted]
                in_flight.append((pool.submit(read, task), results))
                ahead += results
                submitted += 1
            future, results = in_flight.popleft()
            yield from future.result()
            ahead -= results


def _reading_tasks(keys: list[str]) -> list[tuple[list[str], int]]:
    """``keys`` in order, grouped into tasks of about RESULTS_PER_TASK results: (keys, results)."""
    tasks: list[tuple[list[str], int]] = []
    for key in keys:
        results = len(replicates_of_result_key(key))
        if tasks and tasks[-1][1] + results <= RESULTS_PER_TASK:
            tasks[-1][0].append(key)
            tasks[-1] = (tasks[-1][0], tasks[-1][1] + results)
        else:
            tasks.append(([key], results))
    return tasks


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
