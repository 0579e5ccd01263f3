"""Launch a simulation-based-calibration ensemble: ``python -m runtime.submit MODEL.stan ...``.

Simulates R datasets from the generator, fits MODEL to each (only those without a result yet),
scores every fit against the true values, and writes a report with a calibration verdict.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from runtime.aws.manifest import AUTO, TARGET_CHILD_SECONDS
from runtime.engines.choice import ENGINE_NAMES
from runtime.engines.settings import AUTO_THIN
from runtime.errors import exit_status
from runtime.executors.choice import BACKENDS, TARGET_TASK_SECONDS
from runtime.executors.lifetime import exit_quickly, forked_children_die_with_this_process
from runtime.model.test_quantities import ALL
from runtime.pipeline.request import EnsembleRequest, field_default
from runtime.pipeline.run import Interrupted, aws_command, run_request
from runtime.report.ensemble_report import EnsembleReport, SubmittedEnsemble
from runtime.report.verdict_flags import add_verdict_arguments

EXIT_MISCALIBRATED = 3


def int_or_auto(text: str) -> int | str:
    """``auto`` or an int, validated later with the other flags.

    ``--thin`` and ``--replicates-per-child`` share the keyword ``auto``.
    """
    if text in (AUTO, AUTO_THIN):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m runtime.submit``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.submit", description=__doc__)
    parser.add_argument("model", type=Path, metavar="MODEL.stan", help="the Stan model to check")
    parser.add_argument(
        "--generator",
        metavar="GENERATOR",
        help="prior SBC: a Stan program run with fixed_param whose generated quantities name every model "
        "parameter and every simulated data variable, or package.module:function "
        "called as function(numpy_rng, base_data) -> (true_values, data)",
    )
    posterior = parser.add_argument_group("posterior SBC (instead of --generator)")
    posterior.add_argument(
        "--posterior",
        type=Path,
        metavar="OBSERVED.json",
        help="check the inference conditional on this observed data: MODEL is fitted to it once (the "
        "reference fit), and each replicate refits it augmented with one posterior predictive draw",
    )
    posterior.add_argument(
        "--predictive",
        action="append",
        metavar="QUANTITY=DATA",
        help="a generated quantity of MODEL that simulates a data variable, e.g. y_rep=y; repeat for "
        "several; each draw is appended along the data's first dimension and its size variable grows",
    )
    posterior.add_argument(
        "--augment",
        metavar="package.module:function",
        help="build a replicate's data yourself, as function(observed, simulated) -> data, where the "
        "declarations do not say how to append (simulated maps each --predictive DATA to the draw)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DATA.json",
        help="base data given to both generator and model (e.g. sizes, covariates)",
    )
    parser.add_argument(
        "--replicates",
        "-R",
        type=int,
        required=True,
        metavar="R",
        help="number of simulated datasets to fit; raising it later reuses earlier fits",
    )
    parser.add_argument(
        "--seed", type=int, default=field_default("seed"), help="ensemble seed (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=field_default("workers"),
        help="local worker processes (default: all cores, %(default)s here)",
    )
    parser.add_argument(
        "--engine",
        default=field_default("engine"),
        help=f"Stan engine, one of {', '.join(ENGINE_NAMES)}: auto picks cmdstanpy when CmdStan is "
        "installed, else pystan (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, help="report directory (default: sbc-report/<model>-<ensemble id prefix>)"
    )
    parser.add_argument(
        "--store",
        default=field_default("store"),
        help="object store for specs, inputs and results: a directory "
        "(default: $STANFLEET_STORE or %(default)s)",
    )
    parser.add_argument(
        "--backend",
        default=field_default("backend"),
        help=f"where fits run, one of {', '.join(BACKENDS)}: local runs worker processes on this machine, "
        "aws runs Batch jobs on the deployed stack, dask runs tasks on a Dask cluster (default: %(default)s)",
    )
    parser.add_argument_group("Dask backend").add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="the Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (default: $DASK_SCHEDULER_ADDRESS); "
        "every worker must reach --store (a shared directory or an s3:// URI)",
    )
    aws = parser.add_argument_group("AWS backend")
    aws.add_argument(
        "--stack", default=field_default("stack"), help="deployed stack name (default: %(default)s)"
    )
    aws.add_argument("--region", help="the stack's AWS region (default: the AWS configuration's)")
    aws.add_argument(
        "--replicates-per-child",
        type=int_or_auto,
        default=field_default("replicates_per_child"),
        help="replicates each Batch array child (or Dask task) fits in turn, so children run minutes, not "
        f"seconds; auto times one fit here and packs about {TARGET_CHILD_SECONDS:.0f} s of fits per child "
        f"({TARGET_TASK_SECONDS:.0f} s per Dask task) (default: %(default)s)",
    )
    aws.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=field_default("wait"),
        help="follow the jobs and write the report when done; --no-wait returns after submitting "
        "(collect later with python -m runtime.collect)",
    )
    aws.add_argument(
        "--spot-price",
        type=float,
        default=field_default("spot_price"),
        help="assumed spot price in USD per vCPU-hour for the cost estimate (default: %(default)s)",
    )
    sampler = parser.add_argument_group("sampler settings")
    sampler.add_argument("--chains", type=int, default=field_default("chains"), help="default: %(default)s")
    sampler.add_argument(
        "--warmup",
        type=int,
        default=field_default("warmup"),
        help="warmup iterations per chain (default: %(default)s)",
    )
    sampler.add_argument(
        "--samples",
        type=int,
        default=field_default("samples"),
        help="sampling iterations per chain (default: %(default)s)",
    )
    sampler.add_argument(
        "--adapt-delta", type=float, default=field_default("adapt_delta"), help="default: %(default)s"
    )
    sampler.add_argument(
        "--max-treedepth", type=int, default=field_default("max_treedepth"), help="default: %(default)s"
    )
    sampler.add_argument(
        "--thin",
        type=int_or_auto,
        default=field_default("thin"),
        help="keep every k-th draw per chain for SBC ranks, or 'auto' to thin each fit by "
        "S / min(ESS bulk, ESS tail) (default: %(default)s, as the R package SBC)",
    )
    parser.add_argument(
        "--test-quantities",
        metavar="NAME[,NAME...]",
        help="transformed parameters and generated quantities whose every element is ranked like a "
        f"parameter (its true value: the quantity at the true parameters and simulated data), or {ALL!r}; "
        "the sum of a generated quantity log_lik is always ranked (default: none)",
    )
    parser.add_argument(
        "--fail-on-miscalibration",
        action="store_true",
        help=f"exit {EXIT_MISCALIBRATED} when the verdict is miscalibrated (for CI pipelines)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="refit the replicates whose stored fit failed (for an environment since fixed); the failed "
        "results are kept under the ensemble's retried-failures/",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    add_verdict_arguments(parser)
    return parser


def interrupted_message(request: EnsembleRequest, ensemble_id: str | None = None) -> str:
    """What Ctrl-C leaves behind: once an ensemble is launched on AWS, its Batch jobs keep running."""
    if request.backend != "aws" or ensemble_id is None:
        return "interrupted: finished results are kept; rerun the same command to resume"
    return (
        f"interrupted: the Batch jobs of ensemble {ensemble_id} keep running on AWS (and cost money); "
        "finished results are kept\n"
        f"  report on what has finished: {aws_command(request, 'collect', ensemble_id)}\n"
        f"  stop the jobs: {aws_command(request, 'cancel', ensemble_id)}"
    )


def exit_code(outcome: EnsembleReport | SubmittedEnsemble, fail_on_miscalibration: bool) -> int:
    """0 when the ensemble ran (or was submitted), EXIT_MISCALIBRATED when asked to fail on that verdict."""
    if fail_on_miscalibration and isinstance(outcome, EnsembleReport) and outcome.calibrated is False:
        return EXIT_MISCALIBRATED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors, no traceback, non-zero exit."""
    forked_children_die_with_this_process()  # httpstan's pool, when a PyStan generator runs here
    request = EnsembleRequest(**vars(build_parser().parse_args(argv)))
    try:
        return exit_status(lambda: exit_code(run_request(request), request.fail_on_miscalibration))
    except KeyboardInterrupt as exc:
        launched = exc.ensemble_id if isinstance(exc, Interrupted) else None
        print(interrupted_message(request, launched), file=sys.stderr)
        return 130


if __name__ == "__main__":
    exit_quickly(main())
