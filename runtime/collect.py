"""Write the report of an ensemble from the results it has so far: ``python -m runtime.collect ID``.

For ensembles launched with ``--backend aws --no-wait`` (or still running): reads the results from the
deployed stack's bucket (or any ``--store``) and writes the same report as the submitter, with the
submitter's run fields and cost estimate from the ensemble's run record (:mod:`runtime.ensemble.run_record`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from runtime.aws.stack import DEFAULT_STACK
from runtime.errors import exit_status
from runtime.executors.lifetime import exit_quickly
from runtime.report.stored import results_store, stored_report, write_ensemble_report
from runtime.report.verdict_flags import add_verdict_arguments, verdict_options


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runtime.collect``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.collect", description=__doc__.splitlines()[0])
    parser.add_argument("ensemble_id", help="the id the submitter printed")
    parser.add_argument("--store", help="object store URI (default: the deployed stack's bucket)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help="deployed stack name (default: %(default)s)")
    parser.add_argument("--region", help="AWS region of the stack (default: the AWS configuration's)")
    parser.add_argument("--replicates", type=int, help="R (default: from the ensemble's manifest)")
    parser.add_argument("--out", type=Path, help="report directory (default: sbc-report/<model>-<id prefix>)")
    add_verdict_arguments(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: collect(args))


def collect(args: argparse.Namespace) -> int:
    """Write the report of ``args.ensemble_id`` from the results in its store."""
    report = stored_report(
        args.ensemble_id,
        store=results_store(args.store, args.stack, args.region),
        replicates=args.replicates,
        options=verdict_options(args),
    )
    write_ensemble_report(report, args.out)
    return 0


if __name__ == "__main__":
    exit_quickly(main())
