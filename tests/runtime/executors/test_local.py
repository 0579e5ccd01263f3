import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.ensemble.stored_results import load_results
from runtime.errors import StanFleetError
from runtime.executors import local as executor
from runtime.executors.lifetime import PARENT_PID_VARIABLE
from runtime.executors.local import LocalProcessExecutor, has_exited, reap_with_group
from runtime.executors.protocol import count_results
from runtime.fitting.worker_interface import BATCH_SECONDS_VARIABLE, WORKER_CORES_VARIABLE
from runtime.store.keys import INPUT_BLOCK_SIZE, result_batch_key, result_key
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.hand_built_ensemble import hand_built_spec, publish_block, publish_ensemble


def test_count_results_counts_only_the_listed_replicates(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    for replicate in (0, 2, 5):
        store.put(result_key("e", replicate), b"{}")
    store.put(result_batch_key("e", [2, 3, 9], "w"), b"{}\n{}\n{}")  # 2 again, in a batch: counted once
    assert count_results(store, "e", [0, 1, 2, 3]) == 3
    assert count_results(store, "other", [0]) == 0


def test_a_failing_worker_is_reported_with_its_log_and_how_to_resume(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    seen: list[int] = []
    with pytest.raises(
        StanFleetError, match=r"1 worker\(s\) failed .*ensemble absent is not in the store.*rerun"
    ):
        LocalProcessExecutor(store, workers=1).run("absent", [0, 1], seen.append)
    assert seen[-1] == 0


def test_nothing_to_run_starts_no_worker(tmp_path: Path) -> None:
    seen: list[int] = []
    LocalProcessExecutor(LocalDirectoryStore(tmp_path), workers=2).run("absent", [], seen.append)
    assert seen == []


def test_a_finished_workers_leftover_processes_are_killed_with_its_group() -> None:
    # A "worker" that starts a long sleep in its own process group, prints its pid and exits at once.
    code = "import subprocess; print(subprocess.Popen(['sleep', '600']).pid, flush=True)"
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, process_group=0)
    assert worker.stdout is not None
    leftover = int(worker.stdout.readline())
    assert Path(f"/proc/{leftover}").exists()
    reap_with_group(worker)
    assert worker.returncode == 0
    deadline = time.monotonic() + 10
    while Path(f"/proc/{leftover}").exists() and time.monotonic() < deadline:  # gone once init reaps it
        time.sleep(0.05)
    assert not Path(f"/proc/{leftover}").exists()
    running = subprocess.Popen(["sleep", "600"])
    assert not has_exited(running)
    running.kill()
    running.wait()


@pytest.mark.slow
def test_workers_share_the_machines_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, str]] = []
    real_popen = subprocess.Popen

    def recording_popen(command: list[str], **options: object) -> subprocess.Popen[bytes]:
        started.append(dict(options["env"]))  # type: ignore[call-overload]
        return real_popen(command, **options)  # type: ignore[call-overload]

    monkeypatch.setattr(executor.subprocess, "Popen", recording_popen)
    monkeypatch.setattr(executor, "usable_cores", lambda: 8)
    # The ensemble is absent: each worker given a replicate says so and exits 1. Two replicates go to each
    # worker at once (ASSIGNED_AHEAD), so workers 0 and 1 get the three and worker 2 none: two fail.
    failed = r"^2 worker\(s\) failed \(exit code 1; log \S+worker-0\.log: error: ensemble absent is not in the store "
    with pytest.raises(
        StanFleetError, match=failed + r".*\); finished results are kept, rerun the same command"
    ):
        LocalProcessExecutor(LocalDirectoryStore(tmp_path), workers=3).run(
            "absent", [0, 1, 2], lambda done, detail="": None
        )
    assert [env[WORKER_CORES_VARIABLE] for env in started] == ["2", "2", "2"]
    assert {env[PARENT_PID_VARIABLE] for env in started} == {str(os.getpid())}


def test_a_failed_workers_log_outlives_the_executor(tmp_path: Path) -> None:
    with (
        pytest.raises(StanFleetError, match=r"log (\S+):") as failure,
        LocalProcessExecutor(LocalDirectoryStore(tmp_path), workers=1) as executor,
    ):
        executor.run("absent", [0], lambda done, detail="": None)
    log = Path(re.search(r"log (\S+):", str(failure.value)).group(1))  # type: ignore[union-attr]
    assert "ensemble absent is not in the store" in log.read_text()


def wait_for_a_result(store: LocalDirectoryStore, ensemble_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not list(store.list_keys(f"ensembles/{ensemble_id}/results/")):
        assert time.monotonic() < deadline, "no fit finished before the rest was published"
        time.sleep(0.05)


@pytest.mark.slow
def test_fits_start_with_the_first_published_batch_and_go_on_as_more_are_published(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())  # input block 0 only
    later = [INPUT_BLOCK_SIZE, INPUT_BLOCK_SIZE + 1, INPUT_BLOCK_SIZE + 2]

    def published() -> Iterator[list[int]]:
        yield [0, 1, 2]
        wait_for_a_result(store, ensemble_id)  # deadlocks unless fits run while this is consumed
        publish_block(store, hand_built_spec(), 1, bad_replicates=set())  # after the workers listed packs
        yield later

    seen: list[int] = []
    with LocalProcessExecutor(store, workers=2) as executor:
        executor.run(ensemble_id, [0, 1, 2, *later], lambda done, detail="": seen.append(done), published())
    assert [r.replicate for r in load_results(store, ensemble_id, 2 * INPUT_BLOCK_SIZE)] == [0, 1, 2, *later]
    assert seen[0] == 0 and seen[-1] == 6 and seen == sorted(seen)  # stored results, batch by batch
    assert all(r.status == "ok" for r in load_results(store, ensemble_id, 2 * INPUT_BLOCK_SIZE))


@pytest.mark.slow
def test_a_batch_that_fails_to_publish_stops_the_run_and_keeps_the_finished_fits(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())

    def published() -> Iterator[list[int]]:
        yield [0, 1]
        wait_for_a_result(store, ensemble_id)
        raise StanFleetError("replicate 150's simulated data: 'y' must hold integers")

    with (
        pytest.raises(StanFleetError, match="replicate 150's simulated data"),
        LocalProcessExecutor(store, workers=1) as executor,
    ):
        executor.run(ensemble_id, [0, 1, 150], lambda done, detail="": None, published())
    assert len(list(store.list_keys(f"ensembles/{ensemble_id}/results/"))) >= 1


@pytest.mark.slow
def test_workers_finish_even_when_a_process_forked_here_holds_their_input(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    with LocalProcessExecutor(store, workers=1) as executor:
        holder = os.fork()  # as httpstan's pool does in the submitter: it inherits the workers' pipes
        if holder == 0:
            time.sleep(600)
            os._exit(0)
        try:
            executor.run(ensemble_id, [0, 1], lambda done, detail="": None)
        finally:
            os.kill(holder, signal.SIGKILL)
            os.waitpid(holder, 0)
    assert [r.replicate for r in load_results(store, ensemble_id, 2)] == [0, 1]


@pytest.mark.slow
def test_an_interrupted_run_keeps_the_results_its_workers_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C: the workers are sent SIGTERM and write what they hold before they are stopped."""
    monkeypatch.setenv(BATCH_SECONDS_VARIABLE, "600")  # no result is written before the interrupt
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = publish_ensemble(store, bad_replicates=set())
    executor = LocalProcessExecutor(store, workers=2)

    def published() -> Iterator[list[int]]:
        yield list(range(50))
        deadline = time.monotonic() + 120
        while fitted_in_logs(executor) < 3:  # the workers hold results: fitted, not written
            assert time.monotonic() < deadline, "no fits"
            time.sleep(0.05)
        assert count_results(store, ensemble_id, range(50)) == 0
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), executor:
        executor.run(ensemble_id, list(range(50)), lambda done, detail="": None, published())
    stored = count_results(store, ensemble_id, range(50))
    assert stored >= 3
    assert stored == fitted_in_logs(executor)  # every fit finished before the stop was written


def fitted_in_logs(executor: LocalProcessExecutor) -> int:
    """Fits the executor's workers have logged (``replicate N: fitted``)."""
    assert executor._log_dir is not None
    return sum(log.read_text().count(": fitted (") for log in executor._log_dir.glob("worker-*.log"))
