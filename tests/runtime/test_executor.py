from pathlib import Path

import pytest

from runtime.errors import StanFleetError
from runtime.executor import LocalProcessExecutor, count_results, split_evenly
from runtime.keys import result_key
from runtime.store import LocalDirectoryStore


def test_split_evenly_makes_contiguous_balanced_shares() -> None:
    shares = split_evenly(list(range(10)), 3)
    assert shares == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split_evenly([1, 2], 5) == [[1], [2]]
    assert split_evenly([4], 1) == [[4]]


def test_count_results_counts_only_the_listed_replicates(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    for replicate in (0, 2, 5):
        store.put(result_key("e", replicate), b"{}")
    assert count_results(store, "e", [0, 1, 2, 3]) == 2
    assert count_results(store, "other", [0]) == 0


def test_a_failing_worker_is_reported_with_its_log_and_how_to_resume(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    seen: list[int] = []
    with pytest.raises(
        StanFleetError, match=r"1 worker\(s\) failed .*ensemble absent is not in the store.*rerun"
    ):
        LocalProcessExecutor(store, workers=1, poll_seconds=0.05).run("absent", [0, 1], seen.append)
    assert seen[-1] == 0


def test_nothing_to_run_starts_no_worker(tmp_path: Path) -> None:
    seen: list[int] = []
    LocalProcessExecutor(LocalDirectoryStore(tmp_path), workers=2).run("absent", [], seen.append)
    assert seen == []
