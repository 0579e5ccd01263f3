"""The worker with real fits on a store built by hand."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.engines.settings import SamplerSettings
from runtime.errors import StanFleetError
from runtime.fitting import session as worker
from runtime.fitting.session import replicates_of_child, run_worker, serve_assignments
from runtime.sbc.results import ReplicateResult
from runtime.store.keys import result_key, spec_key
from runtime.store.local import LocalDirectoryStore
from runtime.worker import main
from tests.runtime.helpers.engines_present import ENGINES
from tests.runtime.helpers.hand_built_ensemble import hand_built_spec, publish_block, publish_ensemble
from tests.runtime.helpers.stan_cases import kill_samplers_once_running

ROOT = Path(__file__).resolve().parents[2]


def test_fits_each_replicate_and_records_a_failed_fit_as_data(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates={1})
    run_worker(store, ensemble_id, [0, 1, 2])
    results = [ReplicateResult.from_json(store.get(result_key(ensemble_id, r))) for r in range(3)]
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
    run_worker(store, ensemble_id, [0, 1])
    assert store.get(result_key(ensemble_id, 0)) == b"kept as is"
    assert json.loads(store.get(result_key(ensemble_id, 1)))["status"] == "ok"


def test_command_line_reports_a_missing_ensemble(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--store", str(tmp_path), "--ensemble-id", "nope", "--replicates", "0-1"])
    assert code == 1
    assert capsys.readouterr().err.startswith("error: ensemble nope is not in the store")


def test_an_array_child_fits_its_slice_of_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    plan = {"replicates_per_child": 2, "missing": [1, 4, 5, 7, 9], "ensemble_id": ensemble_id}
    store.put("claims/plan.json", json.dumps(plan).encode())
    monkeypatch.setenv("STANFLEET_CHILD_OFFSET", "2")
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "0")  # child 2 of the submission: the last, short slice
    assert main(["--store", str(tmp_path), "--ensemble-id", ensemble_id, "--plan", "claims/plan.json"]) == 0
    written = sorted(k for k in store.list_keys(f"ensembles/{ensemble_id}/results/"))
    assert written == [result_key(ensemble_id, 9)]
    assert replicates_of_child(store, "claims/plan.json", 0) == [1, 4]


def test_compile_only_builds_without_fitting(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    assert main(["--store", str(tmp_path), "--ensemble-id", ensemble_id, "--compile-only"]) == 0
    assert list(store.list_keys(f"ensembles/{ensemble_id}/results/")) == []


def test_compile_only_writes_the_compiled_marker_last(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    marker = "models/compiled/abc.json"
    argv = [
        "--store",
        str(tmp_path),
        "--ensemble-id",
        ensemble_id,
        "--compile-only",
        "--compiled-marker",
        marker,
    ]
    assert main(argv) == 0
    assert json.loads(store.get(marker)) == {"ensemble_id": ensemble_id, "engine": "pystan"}


def test_a_compiled_marker_goes_with_compile_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(
            [
                "--store",
                str(tmp_path),
                "--ensemble-id",
                "x",
                "--replicates",
                "0",
                "--compiled-marker",
                "m.json",
            ]
        )
    assert usage.value.code == 2
    assert "error: --compiled-marker goes with --compile-only" in capsys.readouterr().err


def test_a_missing_plan_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    assert main(["--store", str(tmp_path), "--ensemble-id", ensemble_id, "--plan", "claims/none.json"]) == 1
    assert "plan claims/none.json is not in the store" in capsys.readouterr().err


def processes_in_group(group: int) -> list[int]:
    """Live members of a process group (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the death signal of forked children is Linux's")
@pytest.mark.parametrize("engine", ENGINES)
def test_a_worker_killed_alone_leaves_no_process_behind(tmp_path: Path, engine: str) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    ensemble_id = publish_ensemble(store, bad_replicates=set(), engine=engine)
    command = [sys.executable, "-m", "runtime.worker", "--store", str(tmp_path / "store")]
    worker = subprocess.Popen(
        [*command, "--ensemble-id", ensemble_id, "--replicates", "0-99"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        # Mid-way, while the worker and its sampler processes (a pool, or a CmdStan run) are at work.
        while not list(store.list_keys(f"ensembles/{ensemble_id}/results/")) or (
            len(processes_in_group(worker.pid)) < 2
        ):
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.001)
        worker.send_signal(signal.SIGKILL)  # the worker only, not its group
        worker.wait()
        # PyStan's sampler pool dies with the worker; a CmdStan run ends with its fit (a fraction of a second).
        deadline = time.monotonic() + 10
        while processes_in_group(worker.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_in_group(worker.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


@pytest.mark.slow
def test_a_worker_fits_each_assignment_read_from_stdin_and_reports_each_result(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    store.put(result_key(ensemble_id, 5), b"{}")  # already fitted: reported, not refitted
    command = [
        sys.executable,
        "-m",
        "runtime.worker",
        "--store",
        str(tmp_path / "store"),
        "--assignment-on-stdin",
    ]
    assignments = f"{ensemble_id} 2-3,7\n{ensemble_id} 5\n{ensemble_id} 9\n"
    fitted = subprocess.run(command, cwd=ROOT, input=assignments, capture_output=True, text=True)
    assert fitted.returncode == 0, fitted.stderr
    assert fitted.stdout.split() == ["2", "3", "7", "5", "9"]  # one line per result, nothing else
    assert sorted(store.list_keys(f"ensembles/{ensemble_id}/results/")) == [
        result_key(ensemble_id, r) for r in (2, 3, 5, 7, 9)
    ]
    assert store.get(result_key(ensemble_id, 5)) == b"{}"
    nothing = subprocess.run(command, cwd=ROOT, input="", capture_output=True, text=True)  # no work for it
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "")


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
    monkeypatch.setattr(worker, "RETRY_DELAY_SECONDS", 0.0)


@pytest.mark.usefixtures("no_retry_delay")
def test_a_store_error_is_retried_and_the_result_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = FlakyStore(tmp_path, failures=2)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    reports = io.StringIO()
    serve_assignments(store, io.StringIO(f"{ensemble_id} 0\n"), reports)
    assert reports.getvalue() == "0\n"
    assert ReplicateResult.from_json(store.get(result_key(ensemble_id, 0))).status == "ok"
    log = capsys.readouterr().err
    assert "replicate 0: attempt 1 of 3 hit an error of the machinery, not the model: OSError" in log
    assert "attempt 2 of 3" in log and "attempt 3" not in log


@pytest.mark.usefixtures("no_retry_delay")
def test_a_persistent_error_of_the_machinery_leaves_no_result_and_is_reported(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path, failures=worker.MACHINERY_ATTEMPTS)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    reports = io.StringIO()
    serve_assignments(store, io.StringIO(f"{ensemble_id} 0-1\n"), reports)
    assert reports.getvalue() == "0 OSError: [Errno 28] No space left on device\n1\n"
    assert list(store.list_keys(f"ensembles/{ensemble_id}/results/")) == [result_key(ensemble_id, 1)]
    # the array child's form: fits the rest, then fails, so Batch marks the job failed
    store.failures = worker.MACHINERY_ATTEMPTS
    with pytest.raises(
        StanFleetError, match=r"^1 replicate\(s\) of ensemble \w+ hit errors of the machinery"
    ):
        run_worker(store, ensemble_id, [0, 2])
    assert not store.exists(result_key(ensemble_id, 0))
    assert store.exists(result_key(ensemble_id, 2))


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
    assert ReplicateResult.from_json(store.get(result_key(spec.ensemble_id, 0))).status == "ok"
    assert "replicate 0: attempt 1 of 3 hit an error of the machinery" in capsys.readouterr().err
