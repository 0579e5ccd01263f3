"""The verdict's command-line flags, shared by ``runtime.submit``, ``runtime.collect`` and ``runtime.compare``."""

from __future__ import annotations

import argparse

from runtime.sbc.verdict import DEFAULT_LEVEL, PER_VARIABLE, VERDICT_MODES, VerdictOptions


def add_verdict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--level``, ``--verdict`` and ``--exclude-divergent``; they change the report, never the fits."""
    group = parser.add_argument_group("verdict (changes the report, not the fits)")
    group.add_argument(
        "--level",
        type=float,
        default=DEFAULT_LEVEL,
        help="family-wise level of the Holm-corrected uniformity tests over every checked variable (or "
        "quantity, with --verdict per-element); each ECDF band is drawn at level/m for m of them, so a curve "
        "outside it is flagged (default: %(default)s)",
    )
    group.add_argument(
        "--verdict",
        choices=VERDICT_MODES,
        default=PER_VARIABLE,
        help="per-variable: one test per variable, its elements (z[1..J]) combined (Cauchy combination of "
        "their p-values and a pooled-ECDF test), Holm across variables; per-element: one test per scalar, "
        "Holm across all of them (weak when a variable has hundreds of elements) (default: %(default)s)",
    )
    group.add_argument(
        "--exclude-divergent",
        action="store_true",
        help="give the verdict on the replicates whose fit had no divergent transitions (says how many "
        "were left out)",
    )


def verdict_options(args: argparse.Namespace) -> VerdictOptions:
    """The parsed flags; StanFleetError when ``--level`` is not in (0, 1)."""
    return VerdictOptions(level=args.level, exclude_divergent=args.exclude_divergent, mode=args.verdict)
