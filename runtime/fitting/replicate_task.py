"""One task of replicates: fit them in one worker session and say what became of each.

A task is the unit a cluster scheduler hands out (a Dask task; see
:mod:`runtime.executors.dask_cluster`): tens of seconds of fits, not one fit each. Its results are in
the store when it returns, so a task run again (its worker died) skips the replicates stored so far.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runtime.fitting.result_batches import StoredCallback
from runtime.fitting.session import WorkerSession
from runtime.fitting.worker_interface import BatchWindow
from runtime.store.protocol import ObjectStore


@dataclass(frozen=True)
class TaskOutcome:
    """The task's replicates with a result in the store, and those errors of the machinery left without."""

    stored: list[int]
    unfitted: list[tuple[int, str]]
    stopped: bool = False
    """Whether the task stopped early when asked (its other replicates were not tried)."""


class _StopAsked(Exception):
    """Raised between fits once the task is asked to stop; the session then writes what it holds."""


def fit_replicate_task(
    store: ObjectStore,
    ensemble_id: str,
    replicates: Sequence[int],
    *,
    cores: int,
    window: BatchWindow,
    should_stop: Callable[[], bool] = lambda: False,
    on_stored: StoredCallback = lambda replicates, error: None,
) -> TaskOutcome:
    """Fit every listed replicate without a result, writing results in batches (``window``).

    ``should_stop`` is asked before each fit: once it says yes, the results held are written and the task
    returns. ``on_stored`` hears of each batch as it is written (progress); the outcome repeats it all.
    """
    stored: list[int] = []
    unfitted: list[tuple[int, str]] = []
    lock = threading.Lock()  # batches are written from the session's timer thread too

    def record(batch: list[int], error: str | None) -> None:
        with lock:
            if error is None:
                stored.extend(batch)
            else:
                unfitted.extend((replicate, error) for replicate in batch)
        on_stored(batch, error)

    def stop_between_fits(replicate: int) -> None:
        if should_stop():
            raise _StopAsked

    if should_stop():
        return TaskOutcome([], [], stopped=True)
    stopped = False
    try:
        with WorkerSession(store, cores=cores, window=window, on_stored=record) as session:
            session.fit(ensemble_id, replicates, on_fitted=stop_between_fits)
    except _StopAsked:
        stopped = True
    with lock:
        return TaskOutcome(sorted(stored), sorted(unfitted), stopped=stopped)
