"""Compare model versions fitted to the same datasets: ``python -m runtime.compare ID_A ID_B [...]``.

Prints one row per quantity with each ensemble's p-value, verdict, mean z-score and mean contraction,
and writes ``comparison.csv``, ``comparison.json`` and ``ecdf_difference.png`` (every version's PIT
ECDF-difference curve, one panel per quantity) to ``--out``. Ensembles fitted to different dataset
sets are refused: a difference between them could come from the draws rather than the models.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from runtime.aws.stack import DEFAULT_STACK
from runtime.errors import StanFleetError, exit_status
from runtime.executors.lifetime import exit_quickly
from runtime.report.comparison import compare_ensembles, comparison_table, write_comparison
from runtime.report.stored import results_store
from runtime.report.verdict_flags import add_verdict_arguments, verdict_options


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runtime.compare``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.compare", description=__doc__.splitlines()[0])
    parser.add_argument("ensemble_ids", nargs="+", metavar="ENSEMBLE_ID", help="two or more ensemble ids")
    parser.add_argument("--store", help="object store URI (default: the deployed stack's bucket)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help="deployed stack name (default: %(default)s)")
    parser.add_argument("--region", help="AWS region of the stack (default: the AWS configuration's)")
    parser.add_argument("--replicates", type=int, help="compare replicates 0..R-1 (default: the smallest R)")
    parser.add_argument(
        "--out", type=Path, help="output directory (default: sbc-report/compare-<id prefixes>)"
    )
    add_verdict_arguments(parser)
    args = parser.parse_args(argv)
    if len(args.ensemble_ids) < 2:
        parser.error("name at least two ensembles to compare")

    def compare() -> int:
        if args.replicates is not None and args.replicates < 1:
            raise StanFleetError(f"--replicates must be a positive integer, got {args.replicates}")
        options = verdict_options(args)
        store = results_store(args.store, args.stack, args.region)
        compared = compare_ensembles(store, args.ensemble_ids, args.replicates, options)
        out = args.out or Path("sbc-report") / ("compare-" + "-".join(i[:8] for i in args.ensemble_ids))
        write_comparison(compared, out)
        print(comparison_table(compared))
        print(f"comparison: {out}/ (comparison.csv, comparison.json, ecdf_difference.png)")
        return 0

    return exit_status(compare)


if __name__ == "__main__":
    exit_quickly(main())
