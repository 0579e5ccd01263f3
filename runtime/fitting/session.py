"""The worker's loop: open an ensemble once and fit the replicates it is handed.

Results are written in batches (:mod:`runtime.fitting.result_batches`), and errors of the machinery
are retried.
``python -m runtime.worker`` (:mod:`runtime.worker`) runs the loop in its four forms.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from runtime.engines.base import CompiledModel
from runtime.engines.choice import get_engine
from runtime.ensemble.spec import EnsembleSpec, fit_seed, load_spec
from runtime.errors import StanFleetError
from runtime.fitting.fit_replicate import fit_replicate
from runtime.fitting.result_batches import ResultBatcher, StoredCallback
from runtime.fitting.retries import with_retries
from runtime.fitting.scoring import LOG_LIK_NAME
from runtime.fitting.shared_builds import compile_shared
from runtime.fitting.worker_interface import (
    ARRAY_CHILD_WINDOW,
    LOCAL_WORKER_WINDOW,
    BatchWindow,
    parse_replicates,
)
from runtime.model.conform import conform_replicate
from runtime.model.files import materialize_stan_program
from runtime.model.stan_info import ModelInfo, read_model_info
from runtime.sbc.results import ReplicateResult
from runtime.store.inputs import InputReader
from runtime.store.keys import replicates_of_result_key, results_prefix
from runtime.store.protocol import ObjectStore

MACHINERY_ATTEMPTS = 3
"""Attempts at a replicate whose fit or storing hits an error of the machinery, not of the model."""
RETRY_DELAY_SECONDS = 1.0
"""Pause before the second attempt; it grows linearly with each further attempt."""


def compile_ensemble_model(store: ObjectStore, ensemble_id: str, compiled_marker: str | None = None) -> None:
    """The compile job: build the model once and publish the build for every worker.

    With ``compiled_marker``, that key is written last: the trigger skips the compile job of later
    submissions that find it.
    """
    spec = load_spec(store, ensemble_id)
    program = materialize_stan_program(spec.model_code, spec.model_name)
    compile_shared(get_engine(spec.engine), program, store, publish=True)
    if compiled_marker:
        store.put(compiled_marker, json.dumps({"ensemble_id": ensemble_id, "engine": spec.engine}).encode())


@dataclass
class _EnsembleWork:
    """What a worker keeps between assignments of one ensemble."""

    spec: EnsembleSpec
    model_info: ModelInfo
    model: CompiledModel
    done: set[int]
    datasets: InputReader
    results: ResultBatcher


class WorkerSession:
    """Fits replicates of the store's ensembles and writes their results in batches.

    It keeps the current ensemble's spec, compiled model, input reader and the results not yet written
    between assignments (the local executor hands out a few replicates at a time). ``on_stored`` is
    called, on any thread, with replicates once their results are in the store (error None; replicates
    that had a result already are reported so too), or with the error's line that left them without one:
    a fit whose machinery kept failing, a batch the store kept refusing. Close the session (or use it as
    a context manager) to write the last batch.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        cores: int = 1,
        window: BatchWindow = ARRAY_CHILD_WINDOW,
        on_stored: StoredCallback = lambda replicates, error: None,
    ) -> None:
        self._store = store
        self._cores = cores
        self._window = window
        self._on_stored = on_stored
        self._work: _EnsembleWork | None = None  # one ensemble at a time
        self._window_lock = threading.Lock()  # a spot notice changes the window from another thread

    def __enter__(self) -> WorkerSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Write the results held."""
        if self._work is not None:
            self._work.results.close()

    def seal(self) -> None:
        """Write the results held and take no more (see :meth:`ResultBatcher.seal`): for a stop signal."""
        if self._work is not None:
            self._work.results.seal()

    def write_each_from_now(self) -> None:
        """Write the results held now, and each later one the moment it is fitted (a spot notice)."""
        with self._window_lock:
            self._window = BatchWindow(max_results=1, max_seconds=0.0)
            if self._work is not None:
                self._work.results.write_each_from_now()

    def _ensemble(self, ensemble_id: str) -> _EnsembleWork:
        if self._work is None or self._work.spec.ensemble_id != ensemble_id:
            self.close()
            spec = load_spec(self._store, ensemble_id)
            program = materialize_stan_program(spec.model_code, spec.model_name)
            model = compile_shared(
                get_engine(spec.engine, cores=self._cores), program, self._store, publish=False
            )
            done = {
                replicate
                for key in self._store.list_keys(results_prefix(ensemble_id))
                for replicate in replicates_of_result_key(key)
            }

            def stored(replicates: list[int], error: str | None) -> None:
                if error is None:
                    done.update(replicates)
                self._on_stored(replicates, error)

            model_info, datasets = read_model_info(program), InputReader(self._store, spec.dataset_id)
            with self._window_lock:
                results = ResultBatcher(self._store, ensemble_id, self._window, on_stored=stored)
                self._work = _EnsembleWork(spec, model_info, model, done, datasets, results)
        return self._work

    def fit(
        self,
        ensemble_id: str,
        replicates: Sequence[int],
        on_fitted: Callable[[int], None] = lambda replicate: None,
    ) -> None:
        """Fit and score every listed replicate that had no result when the ensemble was first opened.

        ``on_fitted`` is called with each replicate once the worker is done with it (its result held for
        the next batch, or there already, or given up on); ``on_stored`` says what became of it.
        """
        work = self._ensemble(ensemble_id)
        work.datasets.prefetch([replicate for replicate in replicates if replicate not in work.done])
        for replicate in replicates:
            if replicate in work.done:
                self._on_stored([replicate], None)
            else:
                result, error = self._fit_with_retries(work, replicate)
                if result is not None:
                    work.results.add(result)
                    print(
                        f"replicate {replicate}: fitted ({result.status}, {result.total_seconds:.2f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    self._on_stored([replicate], error)
            on_fitted(replicate)

    def _fit_with_retries(self, work: _EnsembleWork, replicate: int) -> tuple[ReplicateResult | None, str]:
        """Fit one replicate, retrying errors of the machinery: the result, or None and the last error.

        ``_fit_one`` returns the model's failures as results: anything it raises is the machinery's.
        """
        result, error = with_retries(
            lambda: self._fit_one(work, replicate),
            attempts=MACHINERY_ATTEMPTS,
            delay=RETRY_DELAY_SECONDS,
            subject=f"replicate {replicate}",
            failure="hit an error of the machinery, not the model",
        )
        return result, error or ""

    def _fit_one(self, work: _EnsembleWork, replicate: int) -> ReplicateResult:
        spec = work.spec
        seed = fit_seed(spec.ensemble_id, replicate)
        try:  # the dataset set is shared: each model picks and casts its own inputs from it
            inputs = conform_replicate(work.model_info, spec.base_data, work.datasets.replicate(replicate))
        except StanFleetError as exc:
            return ReplicateResult(replicate, seed, "failed", spec.engine, error=f"StanFleetError: {exc}")
        return fit_replicate(
            work.model,
            inputs,
            base_data=spec.base_data,
            settings=spec.settings,
            seed=seed,
            engine=spec.engine,
            score_log_lik=LOG_LIK_NAME in work.model_info.generated_quantities,
            test_quantities=spec.test_quantities,
        )


def run_worker(
    store: ObjectStore,
    ensemble_id: str,
    replicates: Sequence[int],
    *,
    cores: int = 1,
    window: BatchWindow = ARRAY_CHILD_WINDOW,
    on_open: Callable[[WorkerSession], None] = lambda session: None,
) -> None:
    """Fit and score every listed replicate that has no result yet, each fit on ``cores`` cores.

    Results are written in batches (``window``), the last one on the way out. ``on_open`` is given the
    session before the first fit (a stop signal's thread seals it: writes what it holds). Raises StanFleetError, once the others are fitted and stored, if errors of the machinery left
    some without a result.
    """
    unfitted: list[int] = []

    def stored(replicates: list[int], error: str | None) -> None:
        if error is not None:
            unfitted.extend(replicates)

    with WorkerSession(store, cores=cores, window=window, on_stored=stored) as session:
        on_open(session)
        session.fit(ensemble_id, replicates)
    if unfitted:
        unfitted.sort()
        raise StanFleetError(
            f"{len(unfitted)} replicate(s) of ensemble {ensemble_id} hit errors of the machinery "
            f"{MACHINERY_ATTEMPTS} times and have no result (replicates {', '.join(map(str, unfitted[:10]))}"
            f"{', ...' if len(unfitted) > 10 else ''}); a rerun fits them"
        )


def serve_assignments(
    store: ObjectStore,
    assignments: TextIO,
    reports: TextIO,
    *,
    cores: int = 1,
    window: BatchWindow = LOCAL_WORKER_WINDOW,
    on_open: Callable[[WorkerSession], None] = lambda session: None,
) -> None:
    """Fit each ``ENSEMBLE_ID REPLICATES`` line read from ``assignments`` until an empty line or the end.

    Report on ``reports``, one line each: ``fitted R`` once the worker is done with an assigned replicate
    (ready for more work), ``stored R1,R2,...`` once results are in the store (or were already), and
    ``unfitted R ERROR`` for a replicate that errors of the machinery left without a result. The results
    held are written before returning. ``on_open`` is given the session before the first fit, as
    :func:`run_worker` does.

    Reports that find no reader (the dispatcher was killed) are dropped, and so are the later ones: the
    results are in the store all the same, and the work goes on until the input ends or a stop comes.
    """
    lock = threading.Lock()  # batches are written, and reported, from the timer thread too

    def report(line: str) -> None:
        with lock:
            try:
                reports.write(line + "\n")
                reports.flush()
            except BrokenPipeError:
                discard_writes(reports)

    def stored(replicates: list[int], error: str | None) -> None:
        if error is None:
            report("stored " + ",".join(map(str, replicates)))
        else:
            for replicate in replicates:
                report(f"unfitted {replicate} {error}")

    with WorkerSession(store, cores=cores, window=window, on_stored=stored) as session:
        on_open(session)
        for line in iter(assignments.readline, ""):
            if not line.strip():  # the end of the work
                return
            ensemble_id, replicates = line.split()
            session.fit(ensemble_id, parse_replicates(replicates), on_fitted=lambda r: report(f"fitted {r}"))


def discard_writes(channel: TextIO) -> None:
    """Send what is written to ``channel`` from now on, and what its buffer still holds, to the null device."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, channel.fileno())
    os.close(null)


def replicates_of_child(store: ObjectStore, plan_key: str, child: int) -> list[int]:
    """One array child's slice of the plan that the trigger wrote (its claim object)."""
    try:
        plan = json.loads(store.get(plan_key))
    except KeyError:
        raise StanFleetError(f"plan {plan_key} is not in the store {store.uri}") from None
    size = int(plan["replicates_per_child"])
    return [int(r) for r in plan["missing"][child * size : (child + 1) * size]]
