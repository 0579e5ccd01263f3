"""Tests of reading an ensemble's stored results."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import runtime.ensemble.stored_results as stored_results
from runtime.ensemble.stored_results import (
    RESULT_READERS,
    load_results,
    load_score_table,
    result_keys,
    stored_payloads,
)
from runtime.sbc.results import ReplicateResult
from runtime.sbc.score_table import ScoreTable
from runtime.store.keys import result_batch_key, result_key
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.sbc_results import ensemble

ENSEMBLE = "f" * 20


def failed_result(replicate: int) -> bytes:
    return ReplicateResult(replicate=replicate, seed=1, status="failed", engine="pystan", error="x").to_json()


def test_results_load_in_replicate_order_from_many_reader_threads(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    for replicate in reversed(range(3 * RESULT_READERS)):
        store.put(result_key(ENSEMBLE, replicate), failed_result(replicate))
    loaded = load_results(store, ENSEMBLE, 2 * RESULT_READERS + 1)
    assert [r.replicate for r in loaded] == list(range(2 * RESULT_READERS + 1))


def test_the_score_table_streams_every_requested_result_in_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stored_results, "RESULTS_PER_TASK", 2)
    monkeypatch.setattr(stored_results, "RESULTS_AHEAD", 4)
    store = LocalDirectoryStore(tmp_path)
    results = ensemble(12, lambda rng: int(rng.integers(0, 100)))
    for result in results:
        store.put(result_key(ENSEMBLE, result.replicate), result.to_json())
    assert len(result_keys(store, ENSEMBLE, 10)) == 10
    table = load_score_table(store, ENSEMBLE, 10)
    expected = ScoreTable.from_results(results[:10])
    assert list(table.replicate) == list(range(10))
    assert table.names == expected.names
    np.testing.assert_array_equal(table.scores["rank"], expected.scores["rank"])
    np.testing.assert_array_equal(table.scores["mean"], expected.scores["mean"])


class CountingStore(LocalDirectoryStore):
    """A local store that counts the objects read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        payload = super().get(key)
        with self._lock:
            self.reads += 1
        return payload


def test_the_read_ahead_is_bounded_by_results_not_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 1000-scalar results are 30 MB each: reading 20 tasks of them ahead took 3.5 GiB."""
    monkeypatch.setattr(stored_results, "RESULTS_AHEAD", 25)
    store = CountingStore(tmp_path)
    for first in range(0, 200, 10):
        batch = range(first, first + 10)
        store.put(result_batch_key(ENSEMBLE, batch, "w"), b"\n".join(failed_result(r) for r in batch))
    keys = result_keys(store, ENSEMBLE, 200)
    ahead = []
    for received, _ in enumerate(stored_payloads(store, keys)):
        ahead.append(store.reads - received)  # objects read, this one included, not yet handed over
    assert len(ahead) == 20 and max(ahead) <= 1 + 25 // 10


def test_batches_and_single_results_read_together_each_replicate_once(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    results = ensemble(12, lambda rng: int(rng.integers(0, 100)))
    for result in results[:3]:  # written one object per replicate, as before batches
        store.put(result_key(ENSEMBLE, result.replicate), result.to_json())
    batch = [results[r] for r in (3, 4, 5, 7, 10, 11)]
    store.put(
        result_batch_key(ENSEMBLE, [r.replicate for r in batch], "a1"), b"\n".join(r.to_json() for r in batch)
    )
    # A replicate stored twice (a batch rewritten after a retry) counts once.
    again = [results[r] for r in (5, 6)]
    store.put(result_batch_key(ENSEMBLE, [5, 6], "b2"), b"\n".join(r.to_json() for r in again))
    loaded = load_results(store, ENSEMBLE, 11)
    assert [r.replicate for r in loaded] == [0, 1, 2, 3, 4, 5, 6, 7, 10]
    assert [r.to_json() for r in loaded] == [results[r].to_json() for r in (0, 1, 2, 3, 4, 5, 6, 7, 10)]
    table = load_score_table(store, ENSEMBLE, 11)
    assert list(table.replicate) == [0, 1, 2, 3, 4, 5, 6, 7, 10]
    np.testing.assert_array_equal(
        table.scores["rank"],
        ScoreTable.from_results([results[r] for r in list(table.replicate)]).scores["rank"],
    )


def test_a_batch_whose_lines_do_not_match_its_name_is_refused(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    store.put(result_batch_key(ENSEMBLE, [0, 1], "a"), failed_result(0))
    with pytest.raises(ValueError, match=r"batch\.000000-000001\.a\.jsonl holds 1 results, its name lists 2"):
        load_results(store, ENSEMBLE, 2)
