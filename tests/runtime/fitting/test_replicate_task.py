from __future__ import annotations

from pathlib import Path

from runtime.ensemble.stored_results import load_results
from runtime.fitting.replicate_task import fit_replicate_task
from runtime.fitting.worker_interface import BatchWindow
from runtime.store.keys import replicates_of_result_key, results_prefix
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.hand_built_ensemble import publish_ensemble

WINDOW = BatchWindow(max_results=2, max_seconds=600)


def test_fits_the_task_and_says_what_became_of_each_replicate(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates={1})
    heard: list[list[int]] = []
    outcome = fit_replicate_task(
        store,
        ensemble_id,
        [0, 1, 2],
        cores=1,
        window=WINDOW,
        on_stored=lambda batch, error: heard.append(batch),
    )
    assert outcome.stored == [0, 1, 2]  # a fit the model rejected is a result too
    assert outcome.unfitted == []
    assert not outcome.stopped
    assert heard == [[0, 1], [2]]
    assert [r.status for r in load_results(store, ensemble_id, 3)] == ["ok", "failed", "ok"]


def test_a_task_run_again_skips_what_is_stored_and_reports_it(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    fit_replicate_task(store, ensemble_id, [0, 1], cores=1, window=WINDOW)
    before = set(store.list_keys(results_prefix(ensemble_id)))
    again = fit_replicate_task(store, ensemble_id, [0, 1, 2], cores=1, window=WINDOW)
    assert again.stored == [0, 1, 2]
    (written,) = set(store.list_keys(results_prefix(ensemble_id))) - before
    assert replicates_of_result_key(written) == [2]


def test_asked_to_stop_it_writes_what_it_holds_and_tries_no_more(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    asked: list[int] = []

    def stop_after_first_fit() -> bool:
        asked.append(1)
        return len(asked) > 1  # asked before the task, then after each fit

    outcome = fit_replicate_task(
        store, ensemble_id, [0, 1, 2], cores=1, window=BatchWindow(100, 600), should_stop=stop_after_first_fit
    )
    assert outcome.stopped
    assert outcome.stored == [0]
    (key,) = store.list_keys(results_prefix(ensemble_id))
    assert replicates_of_result_key(key) == [0]


def test_asked_to_stop_before_it_starts_it_opens_nothing(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    outcome = fit_replicate_task(store, ensemble_id, [0, 1], cores=1, window=WINDOW, should_stop=lambda: True)
    assert outcome.stopped
    assert (outcome.stored, outcome.unfitted) == ([], [])
    assert list(store.list_keys(results_prefix(ensemble_id))) == []
