"""What runs on a Dask worker: the store probe, the compile task and the fit task.

The submitter (:mod:`runtime.executors.dask_cluster`) sends these by reference, so every worker must
import this package: it runs in the project's environment (README: Running on a Dask or Slurm cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets

from distributed import Event, get_worker

from runtime.engines.choice import get_engine
from runtime.executors.lifetime import forked_children_die_with_this_process
from runtime.fitting.replicate_task import TaskOutcome, fit_replicate_task
from runtime.fitting.session import compile_ensemble_model
from runtime.fitting.worker_interface import BatchWindow, batch_window, worker_cores
from runtime.store.choice import open_store

DASK_TASK_WINDOW = BatchWindow(max_results=100, max_seconds=10.0)
"""A task writes what it holds every 10 s (and when it ends): the progress bar moves that often, and a
worker killed mid-task loses at most 10 s of its fits."""


def stanfleet_importable() -> bool:
    """True: run where StanFleet imports (sent by reference, it fails to unpickle anywhere else)."""
    return True


def probe_store(store_uri: str, key: str, expected: bytes) -> str | None:
    """Read the submitter's probe object and write one of our own: None, or what went wrong, in a line."""
    store = open_store(store_uri)
    try:
        if store.get(key) != expected:
            return f"the probe object {key} holds other bytes there"
    except KeyError:
        return f"the probe object {key} is not there"
    except Exception as exc:  # any failure to read is the answer, not an error of the probe
        return f"reading the probe object {key} failed: {type(exc).__name__}: {exc}"
    reply = f"{key}.reply-{secrets.token_hex(4)}"
    try:
        store.put(reply, b"ok")
        store.delete(reply)
    except Exception as exc:
        return f"writing {reply} failed: {type(exc).__name__}: {exc}"
    return None


def allow_child_processes() -> None:
    """Let this worker process start processes (PyStan's sampler pool), which die with it.

    A Dask nanny starts its worker as a daemonic process (``distributed.worker.daemon``), and Python
    refuses children to daemonic processes. The nanny kills a worker that does not end in time, so the
    children are tied to the worker's lifetime by the kernel.
    """
    process = multiprocessing.current_process()
    if process.daemon:
        process.daemon = False
    forked_children_die_with_this_process()


async def preload(engine: str) -> None:
    """Import the fitting code and ``engine`` (seconds of imports), so the first task does not wait on them.

    A coroutine, so the submitter need not wait for it (``Client.run(..., wait=False)``); the imports run
    on a thread, off the worker's event loop.
    """
    await asyncio.to_thread(_import_fitting, engine)


def _import_fitting(engine: str) -> None:
    import runtime.fitting.fit_replicate  # noqa: F401 (ArviZ, SciPy: the scoring)

    with contextlib.suppress(Exception):  # a worker without the engine says so in the compile task
        get_engine(engine)


def compile_task(store_uri: str, ensemble_id: str) -> None:
    """Build the ensemble's model once and publish the build for the other workers (the compile job)."""
    allow_child_processes()
    compile_ensemble_model(open_store(store_uri), ensemble_id)


def fit_task(
    store_uri: str, ensemble_id: str, replicates: list[int], stop_event: str, topic: str
) -> TaskOutcome:
    """Fit a task's replicates; stop between fits once the event ``stop_event`` is set.

    Each batch written is logged to the scheduler under ``topic`` (the submitter's progress bar).
    """
    allow_child_processes()
    worker = get_worker()
    stop = Event(stop_event)

    def report(batch: list[int], error: str | None) -> None:
        worker.log_event(topic, {"replicates": batch, "error": error})

    return fit_replicate_task(
        open_store(store_uri),
        ensemble_id,
        replicates,
        cores=worker_cores(os.environ),
        window=batch_window(os.environ, DASK_TASK_WINDOW),
        should_stop=stop.is_set,
        on_stored=report,
    )
