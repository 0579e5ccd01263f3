"""The Dask backend: tasks of replicates on any ``dask.distributed`` cluster.

The cluster is the user's: a scheduler and workers started by hand (``dask scheduler``, ``dask
worker``), by ``dask_jobqueue`` as Slurm/PBS/SGE/LSF jobs, or a ``LocalCluster``. Every worker must
reach the store (a shared directory or an ``s3://`` bucket), which is checked from the workers before
anything is fitted. The model compiles once, as one task; then the replicates go out in tasks of
several each (tens of seconds of fits), at most a few per worker thread in flight, so R = 10^5 never
means 10^5 futures. Progress comes from the batches the tasks write; a task whose worker died is run
again by Dask and skips what it had stored. Ctrl-C asks the tasks to stop after their current fit and
waits for them.
"""

from __future__ import annotations

import contextlib
import math
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from distributed import Client, Event, Future, KilledWorker

from runtime.errors import StanFleetError
from runtime.executors.dask_tasks import (
    compile_task,
    fit_task,
    preload,
    probe_store,
    stanfleet_importable,
)
from runtime.executors.protocol import ProgressCallback, Unfitted, forward_published
from runtime.fitting.replicate_task import TaskOutcome
from runtime.store.protocol import ObjectStore

CONNECT_SECONDS = 20.0
"""How long to try to reach the scheduler before giving up."""
WORKER_WAIT_SECONDS = 300.0
"""How long to wait for a first worker to join (a Slurm job may queue before it starts one)."""
GUIDED_SHARE = 2
"""A task takes at most 1/2 of a worker thread's share of the replicates not yet handed out (guided
self-scheduling): tasks start large (up to ``--replicates-per-child``) and shrink to one replicate at the
end, so the last tasks finish together and the tail is one fit, not one task."""
TASKS_IN_FLIGHT_PER_THREAD = 2
"""Tasks submitted ahead per worker thread: each thread has its next task queued, no more."""
MIN_TASKS_IN_FLIGHT = 4
THREADS_REFRESH_SECONDS = 5.0
"""How often the window follows the cluster's size (an adaptive cluster grows and shrinks)."""
ENVIRONMENT_HINT = "make installs StanFleet into .venv; README: Running on a Dask or Slurm cluster"
STOP_GRACE_SECONDS = 120.0
"""After Ctrl-C, how long the tasks get to finish their current fit and write what they hold."""


def connect(scheduler: str | Client) -> tuple[Client, bool]:
    """The client for ``scheduler`` (an address, or a client already made) and whether we made it."""
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False), True
    except (OSError, TimeoutError, ValueError) as exc:
        raise StanFleetError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


def check_store_from_workers(client: Client, store: ObjectStore) -> int:
    """Refuse a store that a worker cannot read or write; return the number of workers checked.

    Waits for a first worker, has every worker read a probe object written here and write its own, then
    runs one trivial task (the scheduler unpickles tasks, so it must import StanFleet too).
    """
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError:
        raise StanFleetError(
            f"no Dask worker joined the scheduler {client.scheduler.address} within "
            f"{WORKER_WAIT_SECONDS:.0f} s: start workers (README: Running on a Dask or Slurm cluster)"
        ) from None
    key, payload = f"probes/dask-{secrets.token_hex(8)}", secrets.token_bytes(16)
    store.put(key, payload)
    try:
        answers = client.run(probe_store, store.uri, key, payload, on_error="return")
    finally:
        store.delete(key)
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):  # the probe catches the store's errors: this is the worker's
            raise StanFleetError(
                f"the Dask worker {worker} cannot run StanFleet ({type(answer).__name__}: {answer}); start "
                f"workers in the project's environment ({ENVIRONMENT_HINT})"
            )
        if answer is not None:
            raise StanFleetError(
                f"the Dask worker {worker} cannot use the store {store.uri} ({answer}): use a directory "
                "every worker mounts at the same path, or an s3:// store"
            )
    try:  # the scheduler unpickles the tasks: it must import StanFleet as the workers do
        client.submit(stanfleet_importable, pure=False).result()
    except Exception as exc:
        raise StanFleetError(
            f"the Dask scheduler {client.scheduler.address} cannot take StanFleet's tasks "
            f"({first_line(exc)}); start it in the project's environment ({ENVIRONMENT_HINT})"
        ) from None
    return len(answers)


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: Dask's errors run to several lines, ours are one."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def cluster_threads(client: Client) -> int:
    """Worker threads on the cluster now (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def next_task_size(unsubmitted: int, per_task: int, threads: int) -> int:
    """Replicates in the next task: ``per_task``, less as the ensemble's end nears (see GUIDED_SHARE)."""
    return max(1, min(per_task, math.ceil(unsubmitted / (GUIDED_SHARE * threads))))


class DaskExecutor:
    """Runs an ensemble's replicates as Dask tasks of ``replicates_per_task`` (at most) each.

    Used as a context manager, it closes on exit the client it made (not one it was given).
    """

    def __init__(
        self, client: Client, store: ObjectStore, *, replicates_per_task: int, owns_client: bool
    ) -> None:
        self._client = client
        self._store = store
        self._per_task = replicates_per_task
        self._owns_client = owns_client

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._owns_client:
            self._client.close()

    def preload(self, engine: str) -> None:
        """Have every worker import the fitting code and ``engine`` now, while the submitter simulates."""
        self._client.run(preload, engine, wait=False)

    def with_replicates_per_task(self, per_task: int) -> DaskExecutor:
        """The same executor packing ``per_task`` replicates per task at most."""
        return DaskExecutor(
            self._client, self._store, replicates_per_task=per_task, owns_client=self._owns_client
        )

    def run(
        self,
        ensemble_id: str,
        replicates: Sequence[int],
        on_progress: ProgressCallback,
        published: Iterable[Sequence[int]] | None = None,
    ) -> list[Unfitted]:
        """Compile on one worker, then fit the replicates in tasks as their inputs are published.

        Return the replicates errors of the machinery left without a result; raise StanFleetError when a
        task fails outright (finished results are kept).
        """
        if not replicates:
            return []
        on_progress(0, "compiling on a Dask worker")
        self._compile(ensemble_id)
        run = _EnsembleRun(
            self._client, self._store.uri, ensemble_id, set(replicates), self._per_task, on_progress
        )
        return run.run(published or [replicates])

    def _compile(self, ensemble_id: str) -> None:
        future = self._client.submit(
            compile_task, self._store.uri, ensemble_id, key=f"stanfleet-compile-{ensemble_id}", pure=False
        )
        try:
            future.result()
        except Exception as exc:
            raise StanFleetError(f"compiling the model on a Dask worker failed: {first_line(exc)}") from None


_Event = tuple[str, Any]
"""(kind, payload) from Dask's callbacks and the publishing thread to the dispatch loop."""


class _EnsembleRun:
    """One run's dispatch loop: tasks out as inputs are published, a bounded number in flight."""

    def __init__(
        self,
        client: Client,
        store_uri: str,
        ensemble_id: str,
        requested: set[int],
        per_task: int,
        on_progress: ProgressCallback,
    ) -> None:
        self._client = client
        self._store_uri = store_uri
        self._ensemble_id = ensemble_id
        self._requested = requested
        self._per_task = per_task
        self._on_progress = on_progress
        token = secrets.token_hex(6)
        self._topic = f"stanfleet-{ensemble_id}-{token}"
        self._stop = Event(f"stanfleet-stop-{ensemble_id}-{token}", client=client)
        self._events: queue.Queue[_Event] = queue.Queue()
        self._in_flight: dict[Future, list[int]] = {}
        self._stored: set[int] = set()
        self._unfitted: dict[int, Unfitted] = {}
        self._threads = cluster_threads(client)
        self._threads_read = time.monotonic()
        self._unsubmitted = len(requested)

    def run(self, published: Iterable[Sequence[int]]) -> list[Unfitted]:
        """Dispatch until every published replicate's task has ended; stop the tasks on the way out."""
        self._client.subscribe_topic(self._topic, lambda event: self._events.put(("stored", event[1])))
        stop_publishing = threading.Event()
        threading.Thread(
            target=forward_published,
            args=(published, lambda kind, payload: self._events.put((kind, payload)), stop_publishing),
            daemon=True,
        ).start()
        finished = False
        try:
            self._dispatch()
            finished = True
        finally:
            stop_publishing.set()
            if not finished:
                self._stop_tasks()
            with contextlib.suppress(Exception):  # the scheduler may be gone
                self._client.unsubscribe_topic(self._topic)
        left = self._requested - self._stored - set(self._unfitted)
        if left:
            raise StanFleetError(
                f"the Dask tasks ended with {len(left)} replicates neither fitted nor given up on "
                f"(replicate {min(left)}); finished results are kept, rerun the same command to resume"
            )
        return sorted(self._unfitted.values(), key=lambda unfitted: unfitted.replicate)

    def _dispatch(self) -> None:
        pending: deque[int] = deque()
        all_published = False
        self._report()
        while not (all_published and not pending and not self._in_flight):
            while pending and len(self._in_flight) < self._window():
                size = next_task_size(self._unsubmitted, self._per_task, self._threads)
                if len(pending) < size and not all_published:
                    break  # the next inputs are being published
                self._submit([pending.popleft() for _ in range(min(size, len(pending)))])
            kind, payload = self._events.get()
            if kind == "batch":
                pending.extend(payload)
            elif kind == "published":
                all_published = True
            elif kind == "failed":
                raise payload
            elif kind == "stored":
                self._record(payload["replicates"], payload["error"])
            elif kind == "done":
                self._task_ended(payload)
            self._report()

    def _submit(self, replicates: list[int]) -> None:
        future = self._client.submit(
            fit_task,
            self._store_uri,
            self._ensemble_id,
            replicates,
            self._stop.name,
            self._topic,
            key=f"stanfleet-fit-{self._ensemble_id}-{replicates[0]}-{secrets.token_hex(4)}",
            pure=False,
        )
        self._in_flight[future] = replicates
        self._unsubmitted -= len(replicates)
        future.add_done_callback(lambda done: self._events.put(("done", done)))

    def _task_ended(self, future: Future) -> None:
        replicates = self._in_flight.pop(future, None)
        if replicates is None:  # already dealt with
            return
        if future.status == "finished":
            outcome: TaskOutcome = future.result()
            self._record(outcome.stored, None)
            for replicate, error in outcome.unfitted:
                self._record([replicate], error)
            return
        exception = future.exception() if future.status == "error" else None
        if isinstance(exception, KilledWorker):  # Dask gave up: its workers kept dying on this task
            for replicate in replicates:
                self._record([replicate], f"KilledWorker: {exception}")
            return
        what = f"{type(exception).__name__}: {exception}" if exception else f"the task was {future.status}"
        raise StanFleetError(
            f"a Dask task (replicates {replicates[0]}-{replicates[-1]}) failed: {what}; finished results "
            "are kept, rerun the same command to resume"
        )

    def _record(self, replicates: list[int], error: str | None) -> None:
        for replicate in replicates:
            if replicate not in self._requested:
                continue
            if error is None:
                self._stored.add(replicate)
                self._unfitted.pop(replicate, None)
            elif replicate not in self._stored:
                self._unfitted[replicate] = Unfitted(replicate, error)

    def _report(self) -> None:
        self._on_progress(len(self._stored), f"{len(self._in_flight)} tasks on {self._threads} threads")

    def _window(self) -> int:
        if time.monotonic() - self._threads_read > THREADS_REFRESH_SECONDS:
            self._threads, self._threads_read = cluster_threads(self._client), time.monotonic()
        return max(MIN_TASKS_IN_FLIGHT, TASKS_IN_FLIGHT_PER_THREAD * self._threads)

    def _stop_tasks(self) -> None:
        """Ask the tasks to stop after their current fit, wait for them, cancel whatever is left.

        A second Ctrl-C while waiting cancels at once (a running fit then finishes on its own).
        """
        futures = list(self._in_flight)
        try:
            self._stop.set()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while any(not future.done() for future in futures) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):  # the scheduler may be gone
                self._client.cancel(futures, force=True)
