"""Real Dask clusters for the tests: a ``LocalCluster`` of worker processes, or ``dask scheduler`` and
``dask worker`` started as separate processes, as a user starts them (README: Running on a Dask or
Slurm cluster). Both are torn down on exit, every process they started included."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from distributed import Client, LocalCluster

from runtime.executors.local import kill_process_group

DASK = str(Path(sys.executable).parent / "dask")
"""The ``dask`` command of this environment (``dask scheduler``, ``dask worker``)."""
START_SECONDS = 60.0


@contextlib.contextmanager
def local_cluster(workers: int = 2) -> Iterator[Client]:
    """A LocalCluster of ``workers`` processes of one thread each (behind nannies, as ``dask worker``)."""
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers, timeout=START_SECONDS)
        yield client


@contextlib.contextmanager
def process_cluster(
    directory: Path,
    *,
    workers: int = 2,
    worker_environment: Mapping[str, str] | None = None,
    scheduler_environment: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` as processes; yields the address.

    Both run in ``directory``, this environment's (StanFleet is installed in it), as the README starts
    them; their environments get ``scheduler_environment`` and ``worker_environment`` on top.
    """
    scheduler_file = directory / "scheduler.json"
    logs: list[Path] = []
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str], environment: Mapping[str, str], cwd: Path) -> None:
        log = directory / f"{name}.log"
        logs.append(log)
        with log.open("wb") as output:
            processes.append(
                subprocess.Popen(
                    command,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=dict(environment),
                    cwd=cwd,
                    process_group=0,
                )
            )

    try:
        start(
            "scheduler",
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            {**os.environ, **(scheduler_environment or {})},
            directory,
        )
        address = _wait_for_address(scheduler_file, logs[0])
        start(
            "worker",
            [
                DASK,
                "worker",
                address,
                "--nworkers",
                str(workers),
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(directory / "worker-space"),
            ],
            {**os.environ, **(worker_environment or {})},
            directory,
        )
        with Client(address, timeout=START_SECONDS) as client:
            client.wait_for_workers(workers, timeout=START_SECONDS)
        yield address
    finally:
        for process in reversed(processes):  # workers first: they leave when told, not when orphaned
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
            kill_process_group(process.pid)
            process.wait()


def _wait_for_address(scheduler_file: Path, log: Path) -> str:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            return str(json.loads(scheduler_file.read_text())["address"])
        time.sleep(0.1)
    raise AssertionError(f"the scheduler wrote no {scheduler_file}: {log.read_text()[-2000:]}")
