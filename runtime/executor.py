"""The executor seam: runs the worker over an ensemble's missing replicates.

``LocalProcessExecutor`` starts plain OS processes (``python -m runtime.worker``), each looping over
a contiguous share of the replicates; the AWS backend submits Batch array jobs instead. Progress is
read from the store (results present), the same way for every executor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from runtime.errors import StanFleetError
from runtime.keys import replicate_of_result_key, results_prefix
from runtime.store import ObjectStore
from runtime.worker import format_replicates

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


def count_results(store: ObjectStore, ensemble_id: str, replicates: Sequence[int]) -> int:
    """How many of ``replicates`` have a result in the store."""
    wanted = set(replicates)
    return sum(
        1 for key in store.list_keys(results_prefix(ensemble_id)) if replicate_of_result_key(key) in wanted
    )


class LocalProcessExecutor:
    """Runs ``workers`` worker processes on this machine; each logs to a file kept on failure."""

    def __init__(self, store: ObjectStore, workers: int, poll_seconds: float = 0.5) -> None:
        self._store = store
        self._workers = workers
        self._poll_seconds = poll_seconds

    def run(self, ensemble_id: str, replicates: Sequence[int], on_progress: ProgressCallback) -> None:
        """Start the workers, report progress until they exit, and check that none failed."""
        if not replicates:
            return
        log_dir = Path(tempfile.mkdtemp(prefix="stanfleet-workers-"))
        python_path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": python_path}
        processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            for index, share in enumerate(split_evenly(replicates, self._workers)):
                log_path = log_dir / f"worker-{index}.log"
                command = [
                    sys.executable,
                    "-m",
                    "runtime.worker",
                    "--store",
                    self._store.uri,
                    "--ensemble-id",
                    ensemble_id,
                    "--replicates",
                    format_replicates(share),
                ]
                with log_path.open("wb") as log_file:
                    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
                processes.append((process, log_path))
            while any(process.poll() is None for process, _ in processes):
                on_progress(count_results(self._store, ensemble_id, replicates))
                time.sleep(self._poll_seconds)
            on_progress(count_results(self._store, ensemble_id, replicates))
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait()
        failed = [(process.returncode, path) for process, path in processes if process.returncode != 0]
        if not failed:
            shutil.rmtree(log_dir, ignore_errors=True)
            return
        code, failed_log = failed[0]
        tail = " | ".join(failed_log.read_text(errors="replace").strip().splitlines()[-3:])
        raise StanFleetError(
            f"{len(failed)} worker(s) failed (exit code {code}; log {failed_log}: {tail}); "
            "finished results are kept, rerun the same command to resume"
        )
