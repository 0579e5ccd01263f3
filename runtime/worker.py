"""The fit-and-score worker: fits a share of an ensemble's replicates, one result at a time.

Three forms, all with ``--store URI --ensemble-id ID``:

- ``--replicates 0-9,12``: fit these (the local executor).
- ``--plan KEY``: an AWS Batch array child; its replicates are its slice of the plan object at KEY,
  child index = ``STANFLEET_CHILD_OFFSET`` + ``AWS_BATCH_JOB_ARRAY_INDEX`` (both default to 0).
- ``--compile-only [--compiled-marker KEY]``: compile the model and publish the build to the store
  (the compile job), then write KEY for the trigger to find next time.

Replicates that already have a result when the worker starts (one listing) are skipped, and each
result is written the moment it is done, so a killed worker (or a reclaimed spot instance) loses at
most the fit in flight. A fit may use ``STANFLEET_WORKER_CORES`` cores (default 1). Processes the
worker forks (PyStan's sampler pool) die with it; with ``STANFLEET_DIE_WITH_PARENT`` set (the local
executor sets it), the worker dies with its parent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

from runtime.engines import get_engine
from runtime.errors import StanFleetError, exit_status
from runtime.fit_replicate import fit_replicate
from runtime.inputs_store import InputReader
from runtime.keys import replicate_of_result_key, result_key, results_prefix, spec_key
from runtime.lifetime import follow_parent, forked_children_die_with_this_process
from runtime.model_files import materialize_stan_program
from runtime.scoring import LOG_LIK_NAME
from runtime.shared_builds import compile_shared
from runtime.spec import EnsembleSpec, fit_seed
from runtime.stan_info import read_model_info
from runtime.store import ObjectStore, open_store

WORKER_CORES_VARIABLE = "STANFLEET_WORKER_CORES"
"""Cores one fit may use (default 1): the local executor divides the machine's cores among its workers."""


def load_spec(store: ObjectStore, ensemble_id: str) -> EnsembleSpec:
    """The ensemble's spec; StanFleetError if the store does not hold the ensemble."""
    try:
        return EnsembleSpec.from_json(store.get(spec_key(ensemble_id)))
    except KeyError:
        raise StanFleetError(f"ensemble {ensemble_id} is not in the store {store.uri}") from None


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


def run_worker(store: ObjectStore, ensemble_id: str, replicates: Sequence[int], *, cores: int = 1) -> int:
    """Fit and score every listed replicate that has no result yet, each fit on ``cores`` cores.

    Returns how many were fitted.
    """
    spec = load_spec(store, ensemble_id)
    program = materialize_stan_program(spec.model_code, spec.model_name)
    score_log_lik = LOG_LIK_NAME in read_model_info(program).generated_quantities
    model = compile_shared(get_engine(spec.engine, cores=cores), program, store, publish=False)
    done = {replicate_of_result_key(key) for key in store.list_keys(results_prefix(ensemble_id))}
    todo = [replicate for replicate in replicates if replicate not in done]
    inputs = InputReader(store, ensemble_id)
    inputs.prefetch(todo)
    for replicate in todo:
        result = fit_replicate(
            model,
            inputs.replicate(replicate),
            base_data=spec.base_data,
            settings=spec.settings,
            seed=fit_seed(ensemble_id, replicate),
            engine=spec.engine,
            score_log_lik=score_log_lik,
        )
        store.put(result_key(ensemble_id, replicate), result.to_json())
    return len(todo)


def replicates_of_child(store: ObjectStore, plan_key: str, child: int) -> list[int]:
    """One array child's slice of the plan that the trigger wrote (its claim object)."""
    try:
        plan = json.loads(store.get(plan_key))
    except KeyError:
        raise StanFleetError(f"plan {plan_key} is not in the store {store.uri}") from None
    size = int(plan["replicates_per_child"])
    return [int(r) for r in plan["missing"][child * size : (child + 1) * size]]


def worker_cores(environment: Mapping[str, str]) -> int:
    """Cores one fit may use: ``STANFLEET_WORKER_CORES`` (set by the local executor and the Batch job
    definition), else 1."""
    text = environment.get(WORKER_CORES_VARIABLE, "1")
    if not text.isdigit() or int(text) < 1:
        raise StanFleetError(f"{WORKER_CORES_VARIABLE} must be a positive integer, got {text!r}")
    return int(text)


def child_index(environment: Mapping[str, str]) -> int:
    """This array child's index across all array jobs of a submission."""
    return int(environment.get("STANFLEET_CHILD_OFFSET", "0")) + int(
        environment.get("AWS_BATCH_JOB_ARRAY_INDEX", "0")
    )


def parse_replicates(text: str) -> list[int]:
    """Parse a comma-separated list of replicate numbers and ``a-b`` ranges (inclusive)."""
    replicates: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        replicates.extend(range(int(first), int(last or first) + 1))
    return replicates


def format_replicates(replicates: Sequence[int]) -> str:
    """Inverse of :func:`parse_replicates`, compressing consecutive runs into ranges."""
    parts: list[str] = []
    start = previous = None
    for replicate in [*replicates, None]:
        if previous is not None and replicate == previous + 1:
            previous = replicate
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = replicate
    return ",".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runtime.worker``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="object store holding the ensemble")
    parser.add_argument("--ensemble-id", required=True, help="id of the ensemble to work on")
    work = parser.add_mutually_exclusive_group(required=True)
    work.add_argument("--replicates", type=parse_replicates, help="replicates to fit, e.g. 0-99 or 0,2,4")
    work.add_argument("--plan", help="store key of an array plan: fit this Batch array child's slice of it")
    work.add_argument("--compile-only", action="store_true", help="compile the model and publish the build")
    parser.add_argument(
        "--compiled-marker",
        metavar="KEY",
        help="with --compile-only: write this store key once the build is published",
    )
    args = parser.parse_args(argv)
    if args.compiled_marker is not None and not args.compile_only:
        parser.error("--compiled-marker goes with --compile-only")

    def fit_or_compile() -> int:
        follow_parent(os.environ)
        forked_children_die_with_this_process()
        store = open_store(args.store)
        if args.compile_only:
            compile_ensemble_model(store, args.ensemble_id, args.compiled_marker)
        else:
            replicates = args.replicates
            if args.plan is not None:
                replicates = replicates_of_child(store, args.plan, child_index(os.environ))
            run_worker(store, args.ensemble_id, replicates, cores=worker_cores(os.environ))
        return 0

    return exit_status(fit_or_compile)


if __name__ == "__main__":
    sys.exit(main())
