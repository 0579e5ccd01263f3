"""The fit-and-score worker: fits a share of an ensemble's replicates, one result at a time.

Four forms, all with ``--store URI``:

- ``--ensemble-id ID --replicates 0-9,12``: fit these.
- ``--assignment-on-stdin [--engine NAME]``: start, then fit the replicates of each line ``ID 0-9,12``
  read from stdin, reporting on stdout what became of each (``runtime.fitting.session.serve_assignments``);
  exit at an empty line or the end of input (the local executor starts its workers before it knows their work and
  hands it out a little at a time). ``--engine`` loads that engine while the first line is awaited.
- ``--ensemble-id ID --plan KEY``: an AWS Batch array child; its replicates are its slice of the plan
  object at KEY, child index = ``STANFLEET_CHILD_OFFSET`` + ``AWS_BATCH_JOB_ARRAY_INDEX`` (both default
  to 0).
- ``--ensemble-id ID --compile-only [--compiled-marker KEY]``: compile the model and publish the build
  to the store (the compile job), then write KEY for the trigger to find next time.

Replicates that already have a result when the worker opens the ensemble (one listing) are skipped.
Results are held in memory and written in batches, one object per window (a Batch child: 100 results
or 30 s; a local worker: 100 results or 2 s; ``STANFLEET_BATCH_RESULTS`` and
``STANFLEET_BATCH_SECONDS`` override both), so a worker killed without warning loses at most one
window of fits. SIGTERM or SIGINT (ECS stopping the container, the local executor stopping its worker)
makes the worker write what it holds, then exit with status 128 + the signal's number; in a Batch job,
a spot interruption notice makes it write each result at once from then on. A fit that hits an error
of the machinery rather than the model (a killed sampler process, an I/O or store error:
:class:`~runtime.errors.MachineryError`) is retried up to MACHINERY_ATTEMPTS times in all; if it
persists, the replicate gets no result (a rerun fits it again) and is reported as ``unfitted R ERROR``
on stdout, or, in the other forms, makes the worker exit 1 once the rest are fitted. A fit may use
``STANFLEET_WORKER_CORES`` cores (default 1). Processes the worker forks (PyStan's sampler pool) die
with it; with ``STANFLEET_DIE_WITH_PARENT`` set (the local executor sets it), the worker is sent
SIGTERM when its parent dies.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from runtime.aws.spot_notice import watch_for_interruption
from runtime.engines.choice import get_engine
from runtime.errors import exit_status
from runtime.executors.lifetime import exit_quickly, follow_parent, forked_children_die_with_this_process
from runtime.fitting.session import (
    WorkerSession,
    compile_ensemble_model,
    replicates_of_child,
    run_worker,
    serve_assignments,
)
from runtime.fitting.stop_signals import exit_on_stop_signals
from runtime.fitting.worker_interface import (
    ARRAY_CHILD_WINDOW,
    LOCAL_WORKER_WINDOW,
    batch_window,
    child_index,
    parse_replicates,
    worker_cores,
)
from runtime.store.choice import open_store


def report_channel() -> TextIO:
    """The current process's stdout as the channel for reports.

    Whatever else writes to stdout (a sampler's chatter, in this process or its children) goes to stderr,
    the worker's log, instead.
    """
    reports = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return reports


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
        help="start now, then fit the replicates of each line 'ENSEMBLE_ID REPLICATES' read from stdin, "
        "reporting each finished replicate as a line on stdout (the local executor); end of input: exit",
    )
    parser.add_argument(
        "--engine",
        help="with --assignment-on-stdin: load this engine (cmdstanpy or pystan) before the first assignment",
    )
    parser.add_argument(
        "--compiled-marker",
        metavar="KEY",
        help="with --compile-only: write this store key once the build is published",
    )
    args = parser.parse_args(argv)
    if args.compiled_marker is not None and not args.compile_only:
        parser.error("--compiled-marker goes with --compile-only")
    if args.engine is not None and not args.assignment_on_stdin:
        parser.error("--engine goes with --assignment-on-stdin")
    if (args.ensemble_id is None) != args.assignment_on_stdin:
        parser.error("--ensemble-id is required, except with --assignment-on-stdin (which reads it)")

    sessions: list[WorkerSession] = []  # the session this worker opens, once it is open

    def write_held() -> None:
        for session in sessions:
            session.seal()

    def fit_or_compile() -> int:
        exit_on_stop_signals(write_held)
        follow_parent(os.environ)
        forked_children_die_with_this_process()
        store = open_store(args.store)
        ensemble_id, replicates = args.ensemble_id, args.replicates
        cores = worker_cores(os.environ)
        if args.assignment_on_stdin:
            if args.engine is not None:
                get_engine(args.engine)  # its imports take a third of a second: before the work comes
            window = batch_window(os.environ, LOCAL_WORKER_WINDOW)
            reports = report_channel()
            serve_assignments(store, sys.stdin, reports, cores=cores, window=window, on_open=sessions.append)
            return 0
        if args.compile_only:
            compile_ensemble_model(store, ensemble_id, args.compiled_marker)
            return 0
        if args.plan is not None:
            replicates = replicates_of_child(store, args.plan, child_index(os.environ))

        def on_open(session: WorkerSession) -> None:
            sessions.append(session)
            watch_for_interruption(lambda notice: session.write_each_from_now())  # a spot reclaim

        window = batch_window(os.environ, ARRAY_CHILD_WINDOW)
        run_worker(store, ensemble_id, replicates, cores=cores, window=window, on_open=on_open)
        return 0

    return exit_status(fit_or_compile)


if __name__ == "__main__":
    exit_quickly(main())
