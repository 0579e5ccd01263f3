"""python -m runtime.worker (runtime/worker.py) with real fits on a store built by hand: its four forms."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.fitting.session import replicates_of_child
from runtime.fitting.worker_interface import BATCH_RESULTS_VARIABLE, BATCH_SECONDS_VARIABLE
from runtime.store.keys import replicates_of_result_key, result_key, results_prefix
from runtime.store.local import LocalDirectoryStore
from runtime.worker import main
from tests.runtime.helpers.engines_present import ENGINES
from tests.runtime.helpers.hand_built_ensemble import publish_ensemble
from tests.runtime.helpers.processes import processes_in_group

ROOT = Path(__file__).resolve().parents[2]
FITTED = re.compile(r"^replicate (\d+): fitted", re.MULTILINE)
"""The worker's log line for each fit."""


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
    (written,) = store.list_keys(results_prefix(ensemble_id))
    assert replicates_of_result_key(written) == [9]
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
        env={**os.environ, BATCH_RESULTS_VARIABLE: "1"},  # each result written at once: work is visible
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
def test_an_engine_to_load_goes_with_assignments_on_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["--store", str(tmp_path), "--ensemble-id", "x", "--replicates", "0", "--engine", "pystan"])
    assert usage.value.code == 2
    assert "error: --engine goes with --assignment-on-stdin" in capsys.readouterr().err


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
        "--engine",
        "pystan",  # loaded before the first line comes
    ]
    assignments = f"{ensemble_id} 2-3,7\n{ensemble_id} 5\n{ensemble_id} 9\n"
    one_window = {**os.environ, BATCH_SECONDS_VARIABLE: "600"}  # nothing written before the end
    fitted = subprocess.run(
        command, cwd=ROOT, input=assignments, capture_output=True, text=True, env=one_window
    )
    assert fitted.returncode == 0, fitted.stderr
    # one line per report, nothing else: 5 had a result, the rest are written together at the end
    assert fitted.stdout.splitlines() == [
        "fitted 2",
        "fitted 3",
        "fitted 7",
        "stored 5",
        "fitted 5",
        "fitted 9",
        "stored 2,3,7,9",
    ]
    assert sorted(map(replicates_of_result_key, store.list_keys(results_prefix(ensemble_id)))) == [
        [2, 3, 7, 9],
        [5],
    ]
    assert store.get(result_key(ensemble_id, 5)) == b"{}"
    nothing = subprocess.run(command, cwd=ROOT, input="", capture_output=True, text=True)  # no work for it
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_told_to_stop_writes_the_results_it_holds_then_exits(tmp_path: Path, stop: int) -> None:
    """ECS stops a container with SIGTERM (a timeout, a cancel); the results held are written first."""
    store = LocalDirectoryStore(tmp_path / "store")
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    command = [sys.executable, "-m", "runtime.worker", "--store", str(tmp_path / "store")]
    worker = subprocess.Popen(
        [*command, "--ensemble-id", ensemble_id, "--replicates", "0-99"],
        cwd=ROOT,
        env={**os.environ, BATCH_SECONDS_VARIABLE: "600"},  # nothing written unless told to stop
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert worker.stderr is not None
        seen = ""
        while len(FITTED.findall(seen)) < 2:  # the worker's log: one line per fit
            line = worker.stderr.readline()
            assert line, seen
            seen += line
        assert list(store.list_keys(results_prefix(ensemble_id))) == []
        worker.send_signal(stop)  # the worker only, as ECS signals a container's first process
        log = seen + worker.stderr.read()
        assert worker.wait(timeout=60) == 128 + stop, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert f"stopped by {signal.Signals(stop).name}: the results held were written" in log
    (written,) = store.list_keys(results_prefix(ensemble_id))
    held = replicates_of_result_key(written)
    assert len(held) >= 2 and held == list(range(len(held)))  # every fit finished before the stop
    assert [int(r) for r in FITTED.findall(log)][: len(held)] == held


def test_a_worker_whose_dispatcher_is_gone_still_writes_what_it_holds_and_exits_when_told_to_stop(
    tmp_path: Path,
) -> None:
    """A killed submitter leaves its workers' reports unread, then the kernel sends them SIGTERM.

    A report nobody reads must not replace the stop: an exit through the interpreter's shutdown would
    wait for the sampler pool of the abandoned fit, which can block forever on that fit's messages.
    """
    store = LocalDirectoryStore(tmp_path / "store")
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    worker = subprocess.Popen(
        [sys.executable, "-m", "runtime.worker", "--store", str(tmp_path / "store"), "--assignment-on-stdin"],
        cwd=ROOT,
        env={**os.environ, BATCH_SECONDS_VARIABLE: "600"},  # nothing written unless told to stop
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert worker.stdin is not None and worker.stdout is not None and worker.stderr is not None
        worker.stdin.write(f"{ensemble_id} 0-99\n")
        worker.stdin.flush()
        reports = [worker.stdout.readline(), worker.stdout.readline()]
        assert reports == ["fitted 0\n", "fitted 1\n"]
        worker.stdout.close()  # the dispatcher is gone: the next report finds no reader
        time.sleep(0.5)  # a fit or two more, reported to nobody
        worker.send_signal(signal.SIGTERM)
        status = worker.wait(timeout=60)
        log = worker.stderr.read()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert status == 128 + signal.SIGTERM, log
    assert "stopped by SIGTERM: the results held were written" in log
    assert "Traceback" not in log
    (written,) = store.list_keys(results_prefix(ensemble_id))
    assert replicates_of_result_key(written) == [int(r) for r in FITTED.findall(log)]
