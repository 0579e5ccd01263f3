"""The local backend: plain OS processes (``python -m runtime.worker``).

The processes are handed the replicates a few at a time as they finish, with progress read from their
reports.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from runtime.errors import StanFleetError
from runtime.executors.lifetime import PARENT_PID_VARIABLE
from runtime.executors.protocol import ProgressCallback, Unfitted, forward_published
from runtime.fitting.worker_interface import WORKER_CORES_VARIABLE
from runtime.store.protocol import ObjectStore

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has exited, without reaping it (its pid and process group stay reserved)."""
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def kill_process_group(group: int) -> None:
    """SIGKILL every process left in a process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


STOP_GRACE_SECONDS = 10.0
"""How long a worker sent SIGTERM has to write the results it holds before it is killed."""


def stop_within(process: subprocess.Popen[bytes], seconds: float) -> None:
    """Give a process sent SIGTERM up to ``seconds`` to exit, then kill what is left of its group, reap it."""
    deadline = time.monotonic() + seconds
    while not has_exited(process) and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_process_group(process.pid)
    reap_with_group(process)


def reap_with_group(process: subprocess.Popen[bytes]) -> None:
    """Wait for a process that leads its own group to exit, kill what is left of the group, reap it.

    The group is killed before the leader is reaped, so its id cannot have been reused meanwhile.
    """
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    kill_process_group(process.pid)
    process.wait()


class LocalProcessExecutor:
    """Runs ``workers`` worker processes on this machine; each logs to a file kept on failure.

    Used as a context manager, it starts the workers on entry, before the work is known, so that their
    start-up (imports, mostly, those of the fit ``engine`` included) overlaps the submitter's checks and
    simulation; each waits for work on stdin, and a worker that gets none is stopped on exit. The machine's cores are shared evenly
    among the workers (each fit may use its share). Each worker leads its own process group, which is
    killed once the worker has exited, so a worker that dies leaves no sampler process behind; and each
    worker dies with this process.
    """

    def __init__(self, store: ObjectStore, workers: int, engine: str | None = None) -> None:
        self._store = store
        self._workers = workers
        self._engine = engine
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
            *(["--engine", self._engine] if self._engine else []),
        ]
        for index in range(self._workers):
            log_path = self._log_dir / f"worker-{index}.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
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

    def run(
        self,
        ensemble_id: str,
        replicates: Sequence[int],
        on_progress: ProgressCallback,
        published: Iterable[Sequence[int]] | None = None,
    ) -> list[Unfitted]:
        """Hand out the replicates a few at a time as workers finish, report progress, check none failed.

        Return the replicates the workers gave up on (errors of the machinery that persisted).

        ``published`` yields ``replicates`` in batches as their inputs reach the store (default: all at
        once); it is consumed on a thread, so fits start with the first batch.
        """
        if not replicates:
            return []
        self.start_workers()
        idle, self._idle = self._idle, []
        workers = [_Worker(process, log_path) for process, log_path in idle]
        events: queue.Queue[_Event] = queue.Queue()
        for worker in workers:
            threading.Thread(target=_read_reports, args=(worker, events), daemon=True).start()
        stop_publishing = threading.Event()
        threading.Thread(
            target=forward_published,
            args=(
                published or [replicates],
                lambda kind, payload: events.put((kind, None, payload)),
                stop_publishing,
            ),
            daemon=True,
        ).start()
        unfitted: list[Unfitted] = []
        try:
            done = _dispatch(ensemble_id, workers, events, on_progress, unfitted)
        finally:
            stop_publishing.set()
            for worker in workers:  # interrupted: the workers write what they hold, then stop
                if worker.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.send_signal(signal.SIGTERM)
            for worker in workers:
                if worker.process.returncode is None:
                    stop_within(worker.process, STOP_GRACE_SECONDS)
        failed = [worker for worker in workers if worker.process.returncode != 0]
        if not failed and done + len(unfitted) < len(replicates):
            raise StanFleetError(f"the workers exited with {len(replicates) - done} replicates unfitted")
        if not failed:
            if self._log_dir is not None and not unfitted:  # else the logs hold the errors' full text
                shutil.rmtree(self._log_dir, ignore_errors=True)
            return unfitted
        failed_log = failed[0].log_path
        tail = " | ".join(failed_log.read_text(errors="replace").strip().splitlines()[-3:])
        raise StanFleetError(
            f"{len(failed)} worker(s) failed (exit code {failed[0].process.returncode}; log {failed_log}: "
            f"{tail}); finished results are kept, rerun the same command to resume"
        )


def _dispatch(
    ensemble_id: str,
    workers: list[_Worker],
    events: queue.Queue[_Event],
    on_progress: ProgressCallback,
    unfitted: list[Unfitted],
) -> int:
    """Hand out replicates as they are published and workers free up, until every worker has exited.

    Return how many replicates were reported done, and add those given up on to ``unfitted``. A failed
    publication is raised.
    """
    pending: deque[int] = deque()
    all_published, done = False, 0
    on_progress(done)
    while any(worker.running for worker in workers):
        for worker in workers:
            while worker.running and worker.outstanding < ASSIGNED_AHEAD and pending:
                worker.assign(ensemble_id, pending.popleft())
            if all_published and not pending:
                worker.close_assignments()
        kind, source, payload = events.get()
        if kind == "batch":
            pending.extend(payload)
        elif kind == "published":
            all_published = True
        elif kind == "failed":
            raise payload
        elif kind == "fitted" and source is not None:
            source.outstanding -= 1
        elif kind == "stored":
            done += len(payload)
            on_progress(done)
        elif kind == "unfitted" and source is not None:
            replicate, error = payload
            unfitted.append(Unfitted(replicate, error, str(source.log_path)))
        elif kind == "exited" and source is not None:
            reap_with_group(source.process)
    return done


ASSIGNED_AHEAD = 2
"""Replicates a worker holds at once: the one it fits and the next, so it never waits for work, and
the last fits spread over the workers instead of queueing behind one."""

_Event = tuple[str, "_Worker | None", Any]
"""(kind, worker, payload) from the report readers and the batch reader to the dispatch loop."""


class _Worker:
    """One worker process as the dispatch loop sees it."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.outstanding = 0
        self._closed = False

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def assign(self, ensemble_id: str, replicate: int) -> None:
        """Send one replicate (a worker that died meanwhile is noticed when its reports end)."""
        self.outstanding += 1
        with contextlib.suppress(BrokenPipeError):
            assert self.process.stdin is not None
            self.process.stdin.write(f"{ensemble_id} {replicate}\n".encode())
            self.process.stdin.flush()

    def close_assignments(self) -> None:
        """No more work: the worker exits once it has fitted what it holds.

        Said with an empty line, not only by closing the pipe: processes this one forked (httpstan's
        pool) hold copies of the pipe's end, so the worker might never see the end of its input.
        """
        if not self._closed:
            self._closed = True
            with contextlib.suppress(BrokenPipeError):
                assert self.process.stdin is not None
                self.process.stdin.write(b"\n")
                self.process.stdin.close()


def _read_reports(worker: _Worker, events: queue.Queue[_Event]) -> None:
    """Forward a worker's reports until it exits.

    A report is ``fitted R`` (the worker is done with an assigned replicate), ``stored R1,R2,...``
    (results in the store) or ``unfitted R ERROR`` (a replicate given up on).
    """
    assert worker.process.stdout is not None
    for line in worker.process.stdout:
        kind, _, rest = line.decode(errors="replace").rstrip("\n").partition(" ")
        if kind == "fitted":
            events.put(("fitted", worker, int(rest)))
        elif kind == "stored":
            events.put(("stored", worker, [int(replicate) for replicate in rest.split(",")]))
        elif kind == "unfitted":
            replicate, _, error = rest.partition(" ")
            events.put(("unfitted", worker, (int(replicate), error)))
    with contextlib.suppress(ChildProcessError):  # already reaped: the dispatch loop has ended
        os.waitid(os.P_PID, worker.process.pid, os.WEXITED | os.WNOWAIT)
    events.put(("exited", worker, None))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under ``taskset``), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
