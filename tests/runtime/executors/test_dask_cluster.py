"""The Dask backend on real clusters: a LocalCluster of worker processes, ``dask scheduler`` and ``dask
worker`` as separate processes, and Dask workers run as jobs of a one-node Slurm cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from moto.server import ThreadedMotoServer

from runtime.api import run_ensemble
from runtime.ensemble.stored_results import stored_objects
from runtime.errors import StanFleetError
from runtime.executors import dask_cluster
from runtime.executors.dask_cluster import DaskExecutor, next_task_size
from runtime.fitting.replicate_task import TaskOutcome
from runtime.store.keys import results_prefix
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.dask_clusters import local_cluster, process_cluster
from tests.runtime.helpers.engines_present import ENGINES, requires_cmdstan
from tests.runtime.helpers.poisson_example import DATA, GENERATOR, MODEL, QUICK_SAMPLER, ROOT, submit_command
from tests.runtime.helpers.slurm import LocalSlurm
from tests.runtime.helpers.stored_results import results_by_replicate

R = 12
SAMPLER: dict[str, Any] = {"chains": 2, "warmup": 300, "samples": 300, "thin": 3}


def run(store: Path, engine: str, replicates: int = R, store_uri: str | None = None, **backend: Any) -> Any:
    """The bundled example's ensemble on ``store`` (or ``store_uri``), 3 replicates per Dask task, its
    report in ``store``."""
    return run_ensemble(
        MODEL,
        generator=GENERATOR,
        data=DATA,
        replicates=replicates,
        engine=engine,
        store=store_uri or str(store),
        out=str(store / "report"),
        no_progress=True,
        replicates_per_child=3,
        **SAMPLER,
        **backend,
    )


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Any, Path]]:
    """An engine's report and store from the local backend (2 workers), made on first use."""
    made: dict[str, tuple[Any, Path]] = {}

    def reference(engine: str) -> tuple[Any, Path]:
        if engine not in made:
            store = tmp_path_factory.mktemp(f"local-{engine}")
            made[engine] = (run(store, engine, workers=2), store)
        return made[engine]

    return reference


@pytest.fixture
def moto_server(aws_credentials: None) -> Iterator[str]:
    """moto's S3 on a free port, emptied after."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def assert_same_as_local(report: Any, store: Path, local: tuple[Any, Path]) -> None:
    local_report, local_store = local
    assert report.ensemble_id == local_report.ensemble_id  # the same datasets and fit seeds
    dask_results = results_by_replicate(LocalDirectoryStore(store), report.ensemble_id, R)
    assert dask_results == results_by_replicate(LocalDirectoryStore(local_store), report.ensemble_id, R)
    assert len(dask_results) == R
    assert report.calibrated == local_report.calibrated
    assert without_run(report.summary) == without_run(local_report.summary)  # the verdict's p-values too


def without_run(summary: dict[str, Any]) -> dict[str, Any]:
    """The report's summary less how the run went (its backend, its seconds)."""
    return {name: value for name, value in summary.items() if name not in ("run", "fit_seconds_total")}


def stored_once(store: Path, ensemble_id: str) -> list[int]:
    """Every replicate with a result, each once (a replicate stored twice fails)."""
    keys = list(LocalDirectoryStore(store).list_keys(results_prefix(ensemble_id)))
    replicates = [r for _, results in stored_objects(LocalDirectoryStore(store), keys) for r, _ in results]
    assert len(replicates) == len(set(replicates)), "a replicate was stored twice"
    return sorted(replicates)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_on_a_local_cluster_the_results_equal_the_local_backends(
    engine: str, tmp_path: Path, local_reference: Callable[[str], tuple[Any, Path]]
) -> None:
    with local_cluster() as client:
        report = run(tmp_path / "store", engine, backend="dask", scheduler=client)
        assert client.status == "running"  # a client we were given is left open
    assert_same_as_local(report, tmp_path / "store", local_reference(engine))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_on_scheduler_and_worker_processes_the_results_equal_the_local_backends(
    engine: str, tmp_path: Path, local_reference: Callable[[str], tuple[Any, Path]]
) -> None:
    with process_cluster(tmp_path) as address:
        report = run(tmp_path / "store", engine, backend="dask", scheduler=address)
    assert_same_as_local(report, tmp_path / "store", local_reference(engine))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_a_worker_killed_mid_run_costs_only_what_it_had_not_stored(engine: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    replicates = 40
    with local_cluster() as client:
        stored_when_killed: list[int] = []

        def kill_a_worker_once_results_are_in() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(store.glob("ensembles/*/results/batch.*")):
                time.sleep(0.05)
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            (ensemble,) = (path.name for path in (store / "ensembles").iterdir())
            stored_when_killed.append(len(stored_once(store, ensemble)))

        killer = threading.Thread(target=kill_a_worker_once_results_are_in, daemon=True)
        killer.start()
        report = run(store, engine, replicates, backend="dask", scheduler=client)
        killer.join()
    assert 0 < stored_when_killed[0] < replicates, "the worker was not killed mid-run"
    assert stored_once(store, report.ensemble_id) == list(range(replicates))
    assert report.calibrated is not None


SCHEDULER_TASKS = lambda dask_scheduler: len(dask_scheduler.tasks)  # noqa: E731
"""The number of tasks the scheduler knows of (run there; a lambda travels by value, not by import)."""


@pytest.mark.slow
def test_ctrl_c_stops_the_tasks_leaves_the_cluster_idle_and_a_rerun_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    command = [
        *submit_command("--replicates", "60", "--engine", "pystan", *QUICK_SAMPLER),
        "--store",
        str(store),
    ]
    with process_cluster(tmp_path) as address:
        dask_command = [*command, "--backend", "dask", "--scheduler", address, "--replicates-per-child", "10"]
        submitter = subprocess.Popen(
            dask_command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 120
        while not any(store.glob("ensembles/*/results/batch.*")):
            assert submitter.poll() is None and time.monotonic() < deadline, submitter.communicate()[0]
            time.sleep(0.05)
        submitter.send_signal(signal.SIGINT)
        output, _ = submitter.communicate(timeout=120)
        assert submitter.returncode == 130, output
        assert "rerun the same command to resume" in output
        with Client(address) as client:
            deadline = time.monotonic() + 10  # the submitter's futures are released as it disconnects
            while client.run_on_scheduler(SCHEDULER_TASKS) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.run_on_scheduler(SCHEDULER_TASKS) == 0
            assert all(not keys for keys in client.processing().values())
        (ensemble,) = (path.name for path in (store / "ensembles").iterdir())
        partial = stored_once(store, ensemble)
        assert 0 < len(partial) < 60
        rerun = subprocess.run([*dask_command, "--no-progress"], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(partial)} reused" in rerun.stdout
    assert stored_once(store, ensemble) == list(range(60))


@pytest.mark.slow
def test_workers_that_cannot_reach_the_store_are_refused_before_anything_is_written(
    tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    boto3.client("s3").create_bucket(Bucket="shared")
    unreachable = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    with (
        process_cluster(tmp_path, workers=1, worker_environment=unreachable) as address,
        pytest.raises(StanFleetError) as refused,
    ):
        run(tmp_path, "pystan", backend="dask", scheduler=address, store_uri="s3://shared")
    message = str(refused.value)
    assert "\n" not in message
    assert (
        message.startswith("the Dask worker tcp://127.0.0.1:")
        and "cannot use the store s3://shared" in message
    )
    assert boto3.client("s3").list_objects_v2(Bucket="shared")["KeyCount"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("process", "refusal"),
    [
        (
            "worker",
            r"^the Dask worker \S+ cannot run StanFleet \(\w+: .*not StanFleet.*\); start workers in the ",
        ),
        (
            "scheduler",
            r"^the Dask scheduler \S+ cannot take StanFleet's tasks \(RuntimeError: Error during deserialization "
            r"of the task graph\. This frequently\); start it in the project's environment",
        ),
    ],
)
def test_a_worker_or_scheduler_that_cannot_import_stanfleet_is_refused_in_one_line(
    process: str, refusal: str, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "runtime").mkdir(parents=True)  # another package named runtime comes first on its path
    (shadow / "runtime" / "__init__.py").write_text("raise ImportError('not StanFleet')\n")
    environment = {f"{process}_environment": {"PYTHONPATH": str(shadow)}}
    with (
        process_cluster(tmp_path, workers=1, **environment) as address,
        pytest.raises(StanFleetError, match=refusal),
    ):
        run(tmp_path / "store", "pystan", backend="dask", scheduler=address)
    assert not (tmp_path / "store" / "ensembles").exists()


@pytest.mark.slow
@requires_cmdstan
def test_workers_without_cmdstan_fail_the_compile_task_in_one_line(tmp_path: Path) -> None:
    with (
        process_cluster(
            tmp_path, workers=1, worker_environment={"CMDSTAN": str(tmp_path / "no-cmdstan")}
        ) as address,
        pytest.raises(StanFleetError) as refused,
    ):
        run(tmp_path / "store", "cmdstanpy", backend="dask", scheduler=address)
    message = str(refused.value)
    assert message.startswith("compiling the model on a Dask worker failed: StanFleetError: ")
    assert "CmdStan" in message and "\n" not in message
    assert not list((tmp_path / "store").glob("ensembles/*/results/*"))


def test_an_unreachable_scheduler_and_a_missing_one_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_cluster, "CONNECT_SECONDS", 1.0)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(StanFleetError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: "):
        run(tmp_path, "pystan", backend="dask", scheduler="tcp://127.0.0.1:9")
    with pytest.raises(
        StanFleetError, match=r"^--backend dask needs --scheduler ADDRESS \(or \$DASK_SCHEDULER_ADDRESS\)$"
    ):
        run(tmp_path, "pystan", backend="dask")
    with pytest.raises(StanFleetError, match=r"^--scheduler needs --backend dask, got --backend local$"):
        run(tmp_path, "pystan", scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "ensembles").exists()


def test_tasks_shrink_to_one_replicate_as_the_end_nears() -> None:
    assert next_task_size(100_000, 74, threads=2) == 74
    assert next_task_size(200, 74, threads=2) == 50
    assert next_task_size(20, 74, threads=2) == 5
    assert next_task_size(3, 74, threads=16) == 1


def test_r_of_100000_keeps_a_bounded_window_of_tasks_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduling alone, on in-process workers: each task reports its replicates stored, fitting none."""

    def fake_fit_task(
        store_uri: str, ensemble_id: str, replicates: list[int], stop_event: str, topic: str
    ) -> TaskOutcome:
        return TaskOutcome(stored=list(replicates), unfitted=[])

    in_flight: list[int] = []
    submit = dask_cluster._EnsembleRun._submit

    def counting_submit(self: Any, replicates: list[int]) -> None:
        submit(self, replicates)
        in_flight.append(len(self._in_flight))

    monkeypatch.setattr(dask_cluster, "fit_task", fake_fit_task)
    monkeypatch.setattr(dask_cluster, "compile_task", lambda store_uri, ensemble_id: None)
    monkeypatch.setattr(dask_cluster._EnsembleRun, "_submit", counting_submit)
    progress: list[int] = []
    replicates = list(range(100_000))
    chunks = (replicates[start : start + 10_000] for start in range(0, 100_000, 10_000))
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        executor = DaskExecutor(
            client, LocalDirectoryStore(tmp_path), replicates_per_task=100, owns_client=False
        )
        unfitted = executor.run("0" * 20, replicates, lambda done, detail="": progress.append(done), chunks)
    assert unfitted == []
    assert progress[-1] == 100_000
    assert 1000 <= len(in_flight) <= 1100  # tasks of 100, smaller ones at the end
    assert max(in_flight) <= dask_cluster.MIN_TASKS_IN_FLIGHT


@pytest.mark.slow
def test_an_ensemble_runs_on_dask_workers_that_are_slurm_jobs(
    slurm: LocalSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dask_jobqueue import SLURMCluster

    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))  # dask-jobqueue calls sbatch and scancel with ours
    with (
        SLURMCluster(**slurm.dask_workers(tmp_path / "logs")) as cluster,
        Client(cluster) as client,
    ):
        cluster.scale(2)
        client.wait_for_workers(2, timeout=120)
        report = run(tmp_path / "store", "auto", backend="dask", scheduler=client)
        assert len(slurm.job_ids()) == 2
    assert stored_once(tmp_path / "store", report.ensemble_id) == list(range(R))
    assert report.calibrated is not None
    slurm.wait_for_empty_queue()
