from pathlib import Path

from runtime.executor import count_results, split_evenly
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
