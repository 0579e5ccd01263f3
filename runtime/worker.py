"""The fit-and-score worker: fits a share of an ensemble's replicates, one result at a time.

Four forms, all with ``--store URI``:

- ``--ensemble-id ID --replicates 0-9,12``: fit these.
- ``--assignment-on-stdin``: start, then read ``ID 0-9,12`` from stdin and fit those (the local
  executor starts its workers before it knows their work; end of input: exit, fitting nothing).
- ``--ensemble-id ID --plan KEY``: an AWS Batch array child; its replicates are its slice of the plan
  object at KEY, child index = ``STANFLEET_CHILD_OFFSET`` + ``AWS_BATCH_JOB_ARRAY_INDEX`` (both default
  to 0).
- ``--ensemble-id ID --compile-only [--compiled-marker KEY]``: compile the model and publish the build
  to the store (the compile job), then write KEY for the trigger to find next time.

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
from collections.abc import Sequence

from runtime.conform import conform_replicate
from runtime.engines import get_engine
from runtime.errors import StanFleetError, exit_status
from runtime.fit_replicate import fit_replicate
from runtime.inputs_store import InputReader
from runtime.keys import replicate_of_result_key, result_key, results_prefix
from runtime.lifetime import follow_parent, forked_children_die_with_this_process
from runtime.model_files import materialize_stan_program
from runtime.results import ReplicateResult
from runtime.scoring import LOG_LIK_NAME
from runtime.shared_builds import compile_shared
from runtime.spec import fit_seed, load_spec
from runtime.stan_info import read_model_info
from runtime.store import ObjectStore, open_store
from runtime.worker_interface import child_index, parse_replicates, worker_cores


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
    model_info = read_model_info(program)
    score_log_lik = LOG_LIK_NAME in model_info.generated_quantities
    model = compile_shared(get_engine(spec.engine, cores=cores), program, store, publish=False)
    done = {replicate_of_result_key(key) for key in store.list_keys(results_prefix(ensemble_id))}
    todo = [replicate for replicate in replicates if replicate not in done]
    datasets = InputReader(store, spec.dataset_id)
    datasets.prefetch(todo)
    for replicate in todo:
        seed = fit_seed(ensemble_id, replicate)
        try:  # the dataset set is shared: each model picks and casts its own inputs from it
            inputs = conform_replicate(model_info, spec.base_data, datasets.replicate(replicate))
        except StanFleetError as exc:
            result = ReplicateResult(replicate, seed, "failed", spec.engine, error=f"StanFleetError: {exc}")
        else:
            result = fit_replicate(
                model,
                inputs,
                base_data=spec.base_data,
                settings=spec.settings,
                seed=seed,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runtime.worker``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="object store holding the ensemble")
    parser.add_argument("--ensemble-id", help="id of the ensemble to work on")
    work = parser.add_mutually_exclusive_group(required=True)
    work.add_argument("--replicates", type=parse_replicates, help="replicates to fit, e.g. 0-99 or 0,2,4")
    work.add_argument("--plan", help="store key of an array plan: fit this Batch array child's slice of it")
    work.add_argument("--compile-only", action="store_true", help="compile the model and publish the build")
    work.add_argument(
        "--assignment-on-stdin",
        action="store_true",
        help="start now, then read one line 'ENSEMBLE_ID REPLICATES' from stdin and fit those "
        "(the local executor); end of input: exit without fitting",
    )
    parser.add_argument(
        "--compiled-marker",
        metavar="KEY",
        help="with --compile-only: write this store key once the build is published",
    )
    args = parser.parse_args(argv)
    if args.compiled_marker is not None and not args.compile_only:
        parser.error("--compiled-marker goes with --compile-only")
    if (args.ensemble_id is None) != args.assignment_on_stdin:
        parser.error("--ensemble-id is required, except with --assignment-on-stdin (which reads it)")

    def fit_or_compile() -> int:
        follow_parent(os.environ)
        forked_children_die_with_this_process()
        store = open_store(args.store)
        ensemble_id, replicates = args.ensemble_id, args.replicates
        if args.assignment_on_stdin:
            assignment = sys.stdin.readline().split()
            if not assignment:
                return 0
            ensemble_id, replicates = assignment[0], parse_replicates(assignment[1])
        if args.compile_only:
            compile_ensemble_model(store, ensemble_id, args.compiled_marker)
            return 0
        if args.plan is not None:
            replicates = replicates_of_child(store, args.plan, child_index(os.environ))
        run_worker(store, ensemble_id, replicates, cores=worker_cores(os.environ))
        return 0

    return exit_status(fit_or_compile)


if __name__ == "__main__":
    sys.exit(main())
