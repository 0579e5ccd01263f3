"""The executor seam: runs the worker over an ensemble's missing replicates.

The local backend (:mod:`runtime.executors.local`) starts worker processes on this machine; the AWS
backend (:mod:`runtime.executors.batch`) submits Batch array jobs. Both take the replicates as the
submitter publishes their inputs, so fitting starts before the whole ensemble is simulated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.store.keys import replicates_of_result_key, results_prefix
from runtime.store.protocol import ObjectStore


class ProgressCallback(Protocol):
    """Called with the number of the run's replicates that have a result so far, and a status line."""

    def __call__(self, done: int, detail: str = "") -> None:
        """Report ``done`` replicates with a result so far, and the status line ``detail``."""
        ...


@dataclass(frozen=True)
class Unfitted:
    """A replicate the run left without a result: an error of the machinery persisted.

    ``error`` is its last line; ``log``, where the full text of every attempt is kept, if anywhere.
    """

    replicate: int
    error: str
    log: str | None = None


class Executor(Protocol):
    """Runs the fit-and-score worker over replicates of an ensemble already published to the store."""

    def run(
        self,
        ensemble_id: str,
        replicates: Sequence[int],
        on_progress: ProgressCallback,
        published: Iterable[Sequence[int]] | None = None,
    ) -> list[Unfitted]:
        """Return when every replicate has a result or was given up on (those are returned).

        Raise StanFleetError if the run cannot go on.

        ``published`` yields the replicates in batches, each once its inputs are in the store (the
        submitter simulates while fits run); None means every input is published already.
        """
        ...


def count_results(store: ObjectStore, ensemble_id: str, replicates: Sequence[int]) -> int:
    """How many of ``replicates`` have a result in the store."""
    stored = {
        r for key in store.list_keys(results_prefix(ensemble_id)) for r in replicates_of_result_key(key)
    }
    return len(stored.intersection(replicates))


def forward_published(
    published: Iterable[Sequence[int]], put: Callable[[str, Any], None], stop: threading.Event
) -> None:
    """Pass on each published batch of replicates (``put("batch", [...])``), then ``("published", None)``.

    The error that ended the publication is passed on as ``("failed", exc)`` for the dispatch loop to
    raise. Runs on a thread; it stops early once ``stop`` is set (the dispatch loop has ended).
    """
    try:
        for batch in published:
            if stop.is_set():
                return
            put("batch", list(batch))
    except BaseException as exc:  # handed to the dispatch loop, which raises it
        put("failed", exc)
    else:
        put("published", None)
