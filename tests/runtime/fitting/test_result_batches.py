"""Batches of results (runtime.fitting.result_batches) on a real store directory: when each is written,
what it holds, and what the readers make of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.ensemble.stored_results import load_results
from runtime.fitting.result_batches import ResultBatcher
from runtime.fitting.worker_interface import BatchWindow
from runtime.sbc.results import ReplicateResult
from runtime.store.keys import replicates_of_result_key, results_prefix
from runtime.store.local import LocalDirectoryStore

ENSEMBLE = "0123456789abcdef0123"


def failed_result(replicate: int) -> ReplicateResult:
    """A small result to batch (a failed fit's, so it carries no scores)."""
    return ReplicateResult(replicate, seed=replicate, status="failed", engine="pystan", error="data rejected")


def stored_batches(store: LocalDirectoryStore) -> list[list[int]]:
    return sorted(replicates_of_result_key(key) for key in store.list_keys(results_prefix(ENSEMBLE)))


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_full_window_is_written_at_once_in_replicate_order(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    reported: list[tuple[list[int], str | None]] = []
    with ResultBatcher(
        store, ENSEMBLE, BatchWindow(3, 600), on_stored=lambda r, e: reported.append((r, e))
    ) as batcher:
        for replicate in (5, 2, 9, 4):
            batcher.add(failed_result(replicate))
        assert stored_batches(store) == [[2, 5, 9]]
        assert batcher.held == 1
    assert stored_batches(store) == [[2, 5, 9], [4]]  # the rest, at close
    assert reported == [([2, 5, 9], None), ([4], None)]
    assert [r.replicate for r in load_results(store, ENSEMBLE, 10)] == [2, 4, 5, 9]
    assert load_results(store, ENSEMBLE, 10)[0] == failed_result(2)


def test_the_oldest_result_waits_at_most_the_window_while_nothing_else_comes(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    with ResultBatcher(store, ENSEMBLE, BatchWindow(100, 0.3)) as batcher:
        started = time.monotonic()
        batcher.add(failed_result(0))
        batcher.add(failed_result(1))
        wait_until(lambda: stored_batches(store) == [[0, 1]])  # written by the timer, mid-"fit"
        assert 0.25 < time.monotonic() - started < 5
        batcher.add(failed_result(2))  # a new window starts with the next result
        assert stored_batches(store) == [[0, 1]]
        wait_until(lambda: stored_batches(store) == [[0, 1], [2]])


def test_after_a_spot_notice_each_result_is_written_the_moment_it_comes(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    with ResultBatcher(store, ENSEMBLE, BatchWindow(100, 600)) as batcher:
        batcher.add(failed_result(0))
        batcher.add(failed_result(1))
        batcher.write_each_from_now()
        assert stored_batches(store) == [[0, 1]]
        batcher.add(failed_result(2))
        assert stored_batches(store) == [[0, 1], [2]]
        assert batcher.held == 0


def test_closing_with_nothing_held_writes_nothing_and_stops_the_timer(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    batcher = ResultBatcher(store, ENSEMBLE, BatchWindow(100, 0.1))
    batcher.close()
    assert stored_batches(store) == []
    assert not batcher._timer.is_alive()


def test_two_writers_of_the_same_replicates_do_not_overwrite_each_other(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    for _ in range(2):  # e.g. a retried child racing its first attempt
        with ResultBatcher(store, ENSEMBLE, BatchWindow(100, 600)) as batcher:
            batcher.add(failed_result(7))
    assert stored_batches(store) == [[7], [7]]
    assert [r.replicate for r in load_results(store, ENSEMBLE, 10)] == [7]  # read once


def test_a_window_must_hold_a_result() -> None:
    with pytest.raises(ValueError, match="max_results >= 1"):
        BatchWindow(0, 1.0)


def test_a_window_of_scattered_replicates_is_written_as_several_objects_with_short_names(
    tmp_path: Path,
) -> None:
    """Two workers alternating fast fits hold every other replicate: one key naming them all was over 255
    bytes (``OSError: File name too long`` on a local store)."""
    store = LocalDirectoryStore(tmp_path)
    reported: list[list[int]] = []
    every_other = list(range(0, 100, 2))
    with ResultBatcher(
        store, ENSEMBLE, BatchWindow(100, 600), on_stored=lambda r, e: reported.append(r)
    ) as batcher:
        for replicate in every_other:
            batcher.add(failed_result(replicate))
    assert [len(batch) for batch in stored_batches(store)] == [12, 12, 12, 12, 2]
    assert sorted(r for batch in reported for r in batch) == every_other
    assert max(len(key.rsplit("/", 1)[1]) for key in store.list_keys(results_prefix(ENSEMBLE))) < 200
    assert [r.replicate for r in load_results(store, ENSEMBLE, 100)] == every_other


def test_a_sealed_batcher_writes_what_it_holds_and_a_later_result_waits_unwritten(tmp_path: Path) -> None:
    """A stop signal's thread seals the batcher, then ends the process: a fit that ends meanwhile must
    not be reported as fitted and then lost."""
    store = LocalDirectoryStore(tmp_path)
    batcher = ResultBatcher(store, ENSEMBLE, BatchWindow(100, 600))
    batcher.add(failed_result(3))
    batcher.seal()
    assert stored_batches(store) == [[3]]
    added_later = threading.Thread(target=batcher.add, args=(failed_result(4),), daemon=True)
    added_later.start()
    added_later.join(timeout=1.0)
    assert added_later.is_alive()  # waiting for the end of the process
    assert stored_batches(store) == [[3]]
