"""The executor seam: runs the worker over an ensemble's missing replicates.

``LocalProcessExecutor`` starts plain OS processes (``python -m runtime.worker``), each looping over
a contiguous share of the replicates; the AWS backend submits Batch array jobs instead. Progress is
read from the store (results present), the same way for every executor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from runtime.errors import StanFleetError
from runtime.keys import replicate_of_result_key, results_prefix
from runtime.lifetime import PARENT_PID_VARIABLE
from runtime.store import ObjectStore
from runtime.worker_interface import WORKER_CORES_VARIABLE, format_replicates

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class ProgressCallback(Protocol):
    """Called with the number of the run's replicates that have a result so far, and a status line."""

    def __call__(self, done: int, detail: str = "") -> None: ...


class Executor(Protocol):
    """Runs the fit-and-score worker over replicates of an ensemble already published to the store."""

    def run(self, ensemble_id: str, replicates: Sequence[int], on_progress: ProgressCallback) -> None:
        """Return when every replicate has a result; raise StanFleetError if some never will."""
        ...


def split_evenly(items: Sequence[int], parts: int) -> list[list[int]]:
    """Split into at most ``parts`` contiguous, non-empty shares whose sizes differ by at most one."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    shares, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        shares.append(list(items[start:end]))
        start = end
    return shares


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under ``taskset``), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has exited, without reaping it (its pid and process group stay reserved)."""
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def kill_process_group(group: int) -> None:
    """SIGKILL every process left in a process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def reap_with_group(process: subprocess.Popen[bytes]) -> None:
    """Wait for a process that leads its own group to exit, kill what is left of the group, reap it.

    The group is killed before the leader is reaped, so its id cannot have been reused meanwhile.
    """
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    kill_process_group(process.pid)
    process.wait()


def count_results(store: ObjectStore, ensemble_id: str, replicates: Sequence[int]) -> int:
    """How many of ``replicates`` have a result in the store."""
    wanted = set(replicates)
    return sum(
        1 for key in store.list_keys(results_prefix(ensemble_id)) if replicate_of_result_key(key) in wanted
    )


class LocalProcessExecutor:
    """Runs ``workers`` worker processes on this machine; each logs to a file kept on failure.

    Used as a context manager, it starts the workers on entry, before the work is known, so that their
    start-up (imports, mostly) overlaps the submitter's checks and simulation; each waits for its share
    on stdin, and a worker that gets none is stopped on exit. The machine's cores are shared evenly
    among the workers (each fit may use its share). Each worker leads its own process group, which is
    killed once the worker has exited, so a worker that dies leaves no sampler process behind; and each
    worker dies with this process.
    """

    def __init__(self, store: ObjectStore, workers: int, poll_seconds: float = 0.5) -> None:
        self._store = store
        self._workers = workers
        self._poll_seconds = poll_seconds
        self._log_dir: Path | None = None
        self._idle: list[tuple[subprocess.Popen[bytes], Path]] = []

    def __enter__(self) -> LocalProcessExecutor:
        self.start_workers()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_idle_workers()

    def start_workers(self) -> None:
        """Start the workers (unless started), each waiting for ``ENSEMBLE_ID REPLICATES`` on stdin."""
        if self._idle:
            return
        self._log_dir = Path(tempfile.mkdtemp(prefix="stanfleet-workers-"))
        python_path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        env = {
            **os.environ,
            "PYTHONPATH": python_path,
            PARENT_PID_VARIABLE: str(os.getpid()),
            WORKER_CORES_VARIABLE: str(max(1, usable_cores() // self._workers)),
        }
        command = [
            sys.executable,
            "-m",
            "runtime.worker",
            "--store",
            self._store.uri,
            "--assignment-on-stdin",
        ]
        for index in range(self._workers):
            log_path = self._log_dir / f"worker-{index}.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    process_group=0,
                )
            self._idle.append((process, log_path))

    def stop_idle_workers(self) -> None:
        """Stop the workers that were started but given no work."""
        idle, self._idle = self._idle, []
        for process, _ in idle:
            kill_process_group(process.pid)
            reap_with_group(process)
        if idle and self._log_dir is not None:  # after run(), a failed worker's log must stay
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def run(self, ensemble_id: str, replicates: Sequence[int], on_progress: ProgressCallback) -> None:
        """Hand each worker its share, report progress until they exit, and check that none failed."""
        if not replicates:
            return
        self.start_workers()
        processes, self._idle = self._idle, []
        shares = split_evenly(replicates, len(processes))
        try:
            for index, (process, _) in enumerate(processes):
                assignment = (
                    f"{ensemble_id} {format_replicates(shares[index])}\n" if index < len(shares) else ""
                )
                with contextlib.suppress(BrokenPipeError):  # a worker that died: its exit code tells
                    assert process.stdin is not None
                    process.stdin.write(assignment.encode())
                    process.stdin.close()
            running = [process for process, _ in processes]
            while running:
                on_progress(count_results(self._store, ensemble_id, replicates))
                time.sleep(self._poll_seconds)
                for process in [p for p in running if has_exited(p)]:
                    reap_with_group(process)
                    running.remove(process)
            on_progress(count_results(self._store, ensemble_id, replicates))
        finally:
            for process, _ in processes:
                if process.returncode is None:  # interrupted: stop the worker and its samplers
                    kill_process_group(process.pid)
                    reap_with_group(process)
        failed = [(process.returncode, path) for process, path in processes if process.returncode != 0]
        if not failed:
            if self._log_dir is not None:
                shutil.rmtree(self._log_dir, ignore_errors=True)
            return
        code, failed_log = failed[0]
        tail = " | ".join(failed_log.read_text(errors="replace").strip().splitlines()[-3:])
        raise StanFleetError(
            f"{len(failed)} worker(s) failed (exit code {code}; log {failed_log}: {tail}); "
            "finished results are kept, rerun the same command to resume"
        )
