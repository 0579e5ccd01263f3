"""The worker's loop: open an ensemble once and fit the replicates it is handed.

Each result is stored the moment it is done, and errors of the machinery are retried.
``python -m runtime.worker`` (:mod:`runtime.worker`) runs the loop in its four forms.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from runtime.engines.base import CompiledModel
from runtime.engines.choice import get_engine
from runtime.ensemble.spec import EnsembleSpec, fit_seed, load_spec
from runtime.errors import StanFleetError
from runtime.fitting.fit_replicate import describe_failure, fit_replicate
from runtime.fitting.scoring import LOG_LIK_NAME
from runtime.fitting.shared_builds import compile_shared
from runtime.fitting.worker_interface import parse_replicates
from runtime.model.conform import conform_replicate
from runtime.model.files import materialize_stan_program
from runtime.model.stan_info import ModelInfo, read_model_info
from runtime.sbc.results import ReplicateResult
from runtime.store.inputs import InputReader
from runtime.store.keys import replicates_of_result_key, result_key, results_prefix
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


class WorkerSession:
    """Fits replicates of the store's ensembles.

    It keeps the current ensemble's spec, compiled model and input reader between assignments (the local
    executor hands out a few replicates at a time).
    """

    def __init__(self, store: ObjectStore, *, cores: int = 1) -> None:
        self._store = store
        self._cores = cores
        self._work: _EnsembleWork | None = None  # one ensemble at a time

    def _ensemble(self, ensemble_id: str) -> _EnsembleWork:
        if self._work is None or self._work.spec.ensemble_id != ensemble_id:
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
            self._work = _EnsembleWork(
                spec, read_model_info(program), model, done, InputReader(self._store, spec.dataset_id)
            )
        return self._work

    def fit(
        self,
        ensemble_id: str,
        replicates: Sequence[int],
        on_result: Callable[[int, str | None], None] = lambda replicate, error: None,
    ) -> list[int]:
        """Fit and score every listed replicate that had no result when the ensemble was first opened.

        ``on_result`` is called with each replicate once its result is stored (or was there already),
        and None; or, for a replicate left without a result by a persistent error of the machinery, with
        that error's line. Returns the replicates left so.
        """
        work = self._ensemble(ensemble_id)
        work.datasets.prefetch([replicate for replicate in replicates if replicate not in work.done])
        unfitted = []
        for replicate in replicates:
            error = None if replicate in work.done else self._fit_and_store(work, replicate)
            if error is None:
                work.done.add(replicate)
            else:
                unfitted.append(replicate)
            on_result(replicate, error)
        return unfitted

    def _fit_and_store(self, work: _EnsembleWork, replicate: int) -> str | None:
        """Fit and store one replicate, retrying errors of the machinery; None, or the last such error."""
        key = result_key(work.spec.ensemble_id, replicate)
        error = ""
        for attempt in range(1, MACHINERY_ATTEMPTS + 1):
            try:
                self._store.put(key, self._fit_one(work, replicate).to_json())
                return None
            except (
                Exception
            ) as exc:  # fit_one returns the model's failures: anything raised is the machinery's
                error, detail = describe_failure(exc)
                print(
                    f"replicate {replicate}: attempt {attempt} of {MACHINERY_ATTEMPTS} hit an error of the "
                    f"machinery, not the model: {error}\n{detail}",
                    file=sys.stderr,
                    flush=True,
                )
                if attempt < MACHINERY_ATTEMPTS:
                    time.sleep(RETRY_DELAY_SECONDS * attempt)
        return error

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


def run_worker(store: ObjectStore, ensemble_id: str, replicates: Sequence[int], *, cores: int = 1) -> None:
    """Fit and score every listed replicate that has no result yet, each fit on ``cores`` cores.

    Raises StanFleetError, once the others are fitted, if errors of the machinery left some without
    a result.
    """
    unfitted = WorkerSession(store, cores=cores).fit(ensemble_id, replicates)
    if unfitted:
        raise StanFleetError(
            f"{len(unfitted)} replicate(s) of ensemble {ensemble_id} hit errors of the machinery "
            f"{MACHINERY_ATTEMPTS} times and have no result (replicates {', '.join(map(str, unfitted[:10]))}"
            f"{', ...' if len(unfitted) > 10 else ''}); a rerun fits them"
        )


def serve_assignments(store: ObjectStore, assignments: TextIO, reports: TextIO, *, cores: int = 1) -> None:
    """Fit each ``ENSEMBLE_ID REPLICATES`` line read from ``assignments`` until an empty line or the end.

    Write each replicate's number as a line to ``reports`` once its result is stored, followed by the
    error's line when errors of the machinery left it without one.
    """

    def report(replicate: int, error: str | None) -> None:
        reports.write(f"{replicate}\n" if error is None else f"{replicate} {error}\n")
        reports.flush()

    session = WorkerSession(store, cores=cores)
    for line in iter(assignments.readline, ""):
        if not line.strip():  # the end of the work
            return
        ensemble_id, replicates = line.split()
        session.fit(ensemble_id, parse_replicates(replicates), on_result=report)


def replicates_of_child(store: ObjectStore, plan_key: str, child: int) -> list[int]:
    """One array child's slice of the plan that the trigger wrote (its claim object)."""
    try:
        plan = json.loads(store.get(plan_key))
    except KeyError:
        raise StanFleetError(f"plan {plan_key} is not in the store {store.uri}") from None
    size = int(plan["replicates_per_child"])
    return [int(r) for r in plan["missing"][child * size : (child + 1) * size]]
