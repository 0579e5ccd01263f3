"""The worker's loop (runtime.fitting.session) with real fits on a store built by hand: results written in
batches, replicates with a result skipped, errors of the machinery retried, what became of each reported."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.stored_results import load_results, stored_replicates
from runtime.errors import StanFleetError
from runtime.fitting import result_batches, session
from runtime.fitting.session import run_worker, serve_assignments
from runtime.fitting.worker_interface import BatchWindow
from runtime.store.keys import (
    replicates_of_result_key,
    result_batch_key,
    result_key,
    results_prefix,
    spec_key,
)
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.engines_present import ENGINES
from tests.runtime.helpers.hand_built_ensemble import hand_built_spec, publish_block, publish_ensemble
from tests.runtime.helpers.stan_cases import kill_samplers_once_running


def test_fits_each_replicate_and_records_a_failed_fit_as_data(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates={1})
    run_worker(store, ensemble_id, [0, 1, 2])
    (key,) = store.list_keys(results_prefix(ensemble_id))  # one batch: the window holds 100 results
    assert replicates_of_result_key(key) == [0, 1, 2]
    results = load_results(store, ensemble_id, 3)
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert results[1].error is not None
    assert "y[1] is -1" in results[1].error
    ok = results[0]
    assert set(ok.variables) == {"lambda"}
    assert set(ok.test_quantities) == {"log_lik"}
    assert ok.variables["lambda"].max_rank == 100  # 2 chains x 200 draws, thinned by 4
    assert ok.diagnostics is not None
    assert ok.diagnostics.num_draws == 400
    assert 0 < ok.sample_seconds <= ok.total_seconds


def test_skips_replicates_that_have_a_result(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    store.put(result_key(ensemble_id, 0), b"kept as is")
    store.put(result_batch_key(ensemble_id, [2], "w"), b"kept in a batch")
    run_worker(store, ensemble_id, [0, 1, 2])
    assert store.get(result_key(ensemble_id, 0)) == b"kept as is"
    assert store.get(result_batch_key(ensemble_id, [2], "w")) == b"kept in a batch"
    (written,) = set(store.list_keys(results_prefix(ensemble_id))) - {
        result_key(ensemble_id, 0),
        result_batch_key(ensemble_id, [2], "w"),
    }
    assert replicates_of_result_key(written) == [1]
    assert json.loads(store.get(written))["status"] == "ok"


def test_a_full_window_is_written_at_once_and_the_rest_at_the_end(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    run_worker(store, ensemble_id, [0, 1, 2], window=BatchWindow(max_results=2, max_seconds=600))
    keys = sorted(store.list_keys(results_prefix(ensemble_id)), key=replicates_of_result_key)
    assert [replicates_of_result_key(key) for key in keys] == [[0, 1], [2]]
    assert [r.replicate for r in load_results(store, ensemble_id, 3)] == [0, 1, 2]


def test_reports_each_replicate_fitted_then_stored(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    store.put(result_key(ensemble_id, 2), b"kept as is")
    reports = io.StringIO()
    assignments = io.StringIO(f"{ensemble_id} 0-1\n{ensemble_id} 2\n")
    serve_assignments(store, assignments, reports, window=BatchWindow(max_results=100, max_seconds=600))
    # replicate 2 had a result: stored at once; 0 and 1 are held and written together at the end
    assert reports.getvalue() == "fitted 0\nfitted 1\nstored 2\nfitted 2\nstored 0,1\n"


class FlakyStore(LocalDirectoryStore):
    """A local store whose first ``failures`` writes of results fail as a full disk does."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def put(self, key: str, payload: bytes) -> None:
        if "/results/" in key and self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        super().put(key, payload)


@pytest.fixture
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(result_batches, "RETRY_DELAY_SECONDS", 0.0)


@pytest.mark.usefixtures("no_retry_delay")
def test_a_store_error_is_retried_and_the_batch_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = FlakyStore(tmp_path, failures=2)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    reports = io.StringIO()
    serve_assignments(store, io.StringIO(f"{ensemble_id} 0\n"), reports)
    assert reports.getvalue() == "fitted 0\nstored 0\n"
    assert [r.status for r in load_results(store, ensemble_id, 1)] == ["ok"]
    log = capsys.readouterr().err
    assert "batch of 1 results" in log and "attempt 1 of 3 at writing it failed: OSError" in log
    assert "attempt 2 of 3" in log and "attempt 3" not in log


@pytest.mark.usefixtures("no_retry_delay")
def test_a_batch_the_store_keeps_refusing_leaves_its_replicates_unfitted_and_reported(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path, failures=result_batches.WRITE_ATTEMPTS)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    reports = io.StringIO()
    window = BatchWindow(max_results=2, max_seconds=600)
    serve_assignments(store, io.StringIO(f"{ensemble_id} 0-2\n"), reports, window=window)
    error = "OSError: [Errno 28] No space left on device"
    assert reports.getvalue() == (
        f"fitted 0\nunfitted 0 {error}\nunfitted 1 {error}\nfitted 1\nfitted 2\nstored 2\n"
    )
    (key,) = store.list_keys(results_prefix(ensemble_id))
    assert replicates_of_result_key(key) == [2]
    # the array child's form: fits the rest, then fails, so Batch marks the job failed
    store.failures = result_batches.WRITE_ATTEMPTS
    with pytest.raises(
        StanFleetError,
        match=r"^2 replicate\(s\) of ensemble \w+ hit errors of the machinery .*\(replicates 0, 1\)",
    ):
        run_worker(store, ensemble_id, [0, 1, 2], window=window)
    assert stored_replicates(list(store.list_keys(results_prefix(ensemble_id))), 3) == {2}


@pytest.mark.slow
@pytest.mark.usefixtures("no_retry_delay")
@pytest.mark.parametrize("engine", ENGINES)
def test_a_sampler_killed_mid_fit_is_retried_and_not_stored_as_a_failure(
    tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    spec = replace(
        hand_built_spec(engine), settings=SamplerSettings(chains=2, warmup=400_000, samples=50, thin=1)
    )
    store.put(spec_key(spec.ensemble_id), spec.to_json())
    publish_block(store, spec, 0, bad_replicates=set())
    killed: list[int] = []
    killer = threading.Thread(target=kill_samplers_once_running, args=(killed, engine, 0.3))
    killer.start()
    try:
        run_worker(store, spec.ensemble_id, [0])
    finally:
        killer.join()
    assert killed
    assert [r.status for r in load_results(store, spec.ensemble_id, 1)] == ["ok"]
    assert "replicate 0: attempt 1 of 3 hit an error of the machinery" in capsys.readouterr().err
