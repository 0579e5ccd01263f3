"""Write finished results in batches: one object per window of results, not one per result.

A worker holds its finished results in memory and writes them as one batch object
(:func:`runtime.store.keys.result_batch_key`) once it holds ``max_results`` of them or the oldest has
waited ``max_seconds``, whichever comes first (a timer thread keeps the second promise while a long
fit runs), and once more when it closes. A worker killed without warning loses at most the results of
one window; one that is told to stop (SIGTERM) writes what it holds first.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Callable

from runtime.ensemble.stored_results import batch_payload
from runtime.fitting.retries import with_retries
from runtime.fitting.worker_interface import BatchWindow
from runtime.sbc.results import ReplicateResult
from runtime.store.keys import result_batch_groups, result_batch_key
from runtime.store.protocol import ObjectStore

StoredCallback = Callable[[list[int], "str | None"], None]
"""Called with the replicates of each batch once it is written (None), or with the error that kept it
from being written after every attempt."""

WRITE_ATTEMPTS = 3
"""Attempts at writing one batch; an error of the store that persists leaves its replicates unfitted."""
RETRY_DELAY_SECONDS = 1.0
"""Pause before the second attempt at a write; it grows linearly with each further attempt."""


class ResultBatcher:
    """Holds one ensemble's finished results and writes them in batches (see the module docstring).

    Thread-safe: the timer thread writes while the worker fits. Use :meth:`close` (or the context
    manager) to write the last batch and stop the timer.
    """

    def __init__(
        self,
        store: ObjectStore,
        ensemble_id: str,
        window: BatchWindow,
        on_stored: StoredCallback = lambda replicates, error: None,
    ) -> None:
        self._store = store
        self._ensemble_id = ensemble_id
        self._window = window
        self._on_stored = on_stored
        self._writer = f"w{secrets.token_hex(6)}"  # keeps apart two workers' batches of the same replicates
        self._held: list[ReplicateResult] = []
        self._oldest = 0.0  # when the oldest held result was added (time.monotonic)
        self._closed = False
        self._lock = threading.Condition()
        self._timer = threading.Thread(target=self._write_when_due, name="result-batches", daemon=True)
        self._timer.start()

    def __enter__(self) -> ResultBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def held(self) -> int:
        """Results held, not yet written."""
        with self._lock:
            return len(self._held)

    def add(self, result: ReplicateResult) -> None:
        """Hold a finished result; write the batch if this fills the window."""
        with self._lock:
            if not self._held:
                self._oldest = time.monotonic()
                self._lock.notify_all()  # the timer starts counting
            self._held.append(result)
            if len(self._held) >= self._window.max_results:
                self._write_held()

    def write_each_from_now(self) -> None:
        """Write what is held now, and from now on every result the moment it is added.

        For a worker told its instance is about to go (a spot interruption notice).
        """
        with self._lock:
            self._window = BatchWindow(max_results=1, max_seconds=0.0)
            self._write_held()

    def flush(self) -> None:
        """Write the results held now as one batch."""
        with self._lock:
            self._write_held()

    def seal(self) -> None:
        """Write the results held and take no more: the calling thread keeps the lock for good.

        For the thread of a stop signal, which ends the process next: a result added meanwhile (a fit
        that ends during the write) waits until then, unwritten and unreported, instead of being
        reported as fitted and then lost.
        """
        self._lock.acquire()
        self._write_held()

    def close(self) -> None:
        """Write the results held, then stop the timer. Closing twice writes nothing more."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            self._timer.join()

    def _write_when_due(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._held:
                    self._lock.wait()
                    continue
                due = self._oldest + self._window.max_seconds - time.monotonic()
                if due > 0:
                    self._lock.wait(due)
                else:
                    self._write_held()

    def _write_held(self) -> None:
        """Write the held results, retrying errors of the store (the lock is held).

        They make one object, or several when their replicates are too scattered for one key's name.
        """
        batch = sorted(self._held, key=lambda result: result.replicate)
        start = 0
        for group in result_batch_groups([result.replicate for result in batch]):
            self._write_batch(batch[start : start + len(group)])
            start += len(group)
        self._held = []

    def _write_batch(self, batch: list[ReplicateResult]) -> None:
        replicates = [result.replicate for result in batch]
        key = result_batch_key(self._ensemble_id, replicates, self._writer)
        payload = batch_payload([result.to_json() for result in batch])
        _, error = with_retries(
            lambda: self._store.put(key, payload),
            attempts=WRITE_ATTEMPTS,
            delay=RETRY_DELAY_SECONDS,
            subject=f"batch of {len(batch)} results ({key})",
            failure="at writing it failed",
        )
        if error is None:
            print(f"wrote {len(batch)} results: {key}", file=sys.stderr, flush=True)
        self._on_stored(replicates, error)
