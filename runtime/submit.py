"""Launch a simulation-based-calibration ensemble: ``python -m runtime.submit MODEL.stan ...``.

Simulates R datasets from the generator, fits MODEL to each (only those without a result yet),
scores every fit against the true values, and writes a report with a calibration verdict.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from runtime.aws_stack import DEFAULT_STACK, stack_command
from runtime.backends import BACKENDS, Backend, open_backend
from runtime.base_data import load_base_data
from runtime.collect import build_report, write_ensemble_report
from runtime.conform import ReplicateInputs, conform_base_data
from runtime.cost import ASSUMED_SPOT_PRICE_PER_VCPU_HOUR
from runtime.derived_quantities import ALL, resolve_test_quantities
from runtime.engines import ENGINE_NAMES
from runtime.engines.base import CompiledModel
from runtime.ensemble_lock import fitting_lock
from runtime.ensemble_report import EnsembleReport, SubmittedEnsemble
from runtime.errors import StanFleetError, exit_status
from runtime.executor import Unfitted
from runtime.generators import Generator, open_generator
from runtime.lifetime import exit_quickly, forked_children_die_with_this_process
from runtime.manifest import MAX_REPLICATES, MAX_REPLICATES_PER_CHILD
from runtime.packing import AUTO, TARGET_CHILD_SECONDS, replicates_per_child
from runtime.prepare import (
    EnsembleInputs,
    EnsemblePlan,
    check_against_model,
    plan_ensemble,
    publish_specs,
    set_aside_failed_results,
)
from runtime.progress import progress_reporter
from runtime.report import preload_report
from runtime.run_record import RunRecord, save_run_record
from runtime.settings import AUTO_THIN, SamplerSettings
from runtime.spec import DatasetSpec, EnsembleSpec, fit_seed
from runtime.stan_info import ModelInfo, read_model_info
from runtime.summary import Failure, VerdictOptions
from runtime.verdict_flags import add_verdict_arguments, verdict_options

EXIT_MISCALIBRATED = 3
DEFAULT_REPLICATES_PER_CHILD = 20
DEFAULT_STORE = "~/.cache/stanfleet/store"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C once the ensemble was handed to its executor (still a KeyboardInterrupt: exit 130)."""

    def __init__(self, ensemble_id: str) -> None:
        super().__init__(ensemble_id)
        self.ensemble_id = ensemble_id


def thin_value(text: str) -> int | str:
    """``auto`` or an int (validated later with the other settings)."""
    if text == AUTO_THIN:
        return AUTO_THIN
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}") from None


def per_child_value(text: str) -> int | str:
    """``auto`` or an int (validated later with the other flags)."""
    if text == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got {text!r}") from None


def choose_replicates_per_child(
    requested: int | str, model: CompiledModel, first: ReplicateInputs, spec: EnsembleSpec, *, engine: str
) -> int:
    """The flag's value, or for ``auto`` the packing that one timed local fit of the first replicate suggests."""
    if requested != AUTO:
        return int(requested)
    from runtime.fit_replicate import fit_replicate  # ArviZ (scoring): imported only when a fit is timed

    trial = fit_replicate(
        model,
        first,
        base_data=spec.base_data,
        settings=spec.settings,
        seed=fit_seed(spec.ensemble_id, first.replicate),
        engine=engine,
        score_log_lik=False,
    )
    if trial.status != "ok":
        print(
            f"a trial fit of replicate {first.replicate} failed here ({trial.error}); "
            f"packing {DEFAULT_REPLICATES_PER_CHILD} replicates per array child"
        )
        return DEFAULT_REPLICATES_PER_CHILD
    per_child = replicates_per_child(trial.sample_seconds)
    print(
        f"a trial fit took {trial.sample_seconds:.2f} s here: {per_child} replicates per array child "
        f"(about {per_child * trial.sample_seconds / 60:.1f} min each)"
    )
    return per_child


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m runtime.submit``."""
    defaults = SamplerSettings()
    parser = argparse.ArgumentParser(prog="python -m runtime.submit", description=__doc__)
    parser.add_argument("model", type=Path, metavar="MODEL.stan", help="the Stan model to check")
    parser.add_argument(
        "--generator",
        required=True,
        metavar="GENERATOR",
        help="a Stan program run with fixed_param whose generated quantities name every model "
        "parameter and every simulated data variable, or package.module:function "
        "called as function(numpy_rng, base_data) -> (true_values, data)",
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
    parser.add_argument("--seed", type=int, default=1, help="ensemble seed (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local worker processes (default: all cores, %(default)s here)",
    )
    parser.add_argument(
        "--engine",
        default="auto",
        help=f"Stan engine, one of {', '.join(ENGINE_NAMES)}: auto picks cmdstanpy when CmdStan is "
        "installed, else pystan (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, help="report directory (default: sbc-report/<model>-<ensemble id prefix>)"
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("STANFLEET_STORE", DEFAULT_STORE),
        help="object store for specs, inputs and results: a directory "
        "(default: $STANFLEET_STORE or %(default)s)",
    )
    parser.add_argument(
        "--backend",
        default="local",
        help=f"where fits run, one of {', '.join(BACKENDS)}: local runs worker processes on this machine, "
        "aws runs Batch jobs on the deployed stack (default: %(default)s)",
    )
    aws = parser.add_argument_group("AWS backend")
    aws.add_argument("--stack", default=DEFAULT_STACK, help="deployed stack name (default: %(default)s)")
    aws.add_argument("--region", help="the stack's AWS region (default: the AWS configuration's)")
    aws.add_argument(
        "--replicates-per-child",
        type=per_child_value,
        default=AUTO,
        help="replicates each Batch array child fits in turn, so children run minutes, not seconds; "
        f"auto times one fit here and packs about {TARGET_CHILD_SECONDS:.0f} s of fits per child "
        "(default: %(default)s)",
    )
    aws.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow the jobs and write the report when done; --no-wait returns after submitting "
        "(collect later with python -m runtime.collect)",
    )
    aws.add_argument(
        "--spot-price",
        type=float,
        default=ASSUMED_SPOT_PRICE_PER_VCPU_HOUR,
        help="assumed spot price in USD per vCPU-hour for the cost estimate (default: %(default)s)",
    )
    sampler = parser.add_argument_group("sampler settings")
    sampler.add_argument("--chains", type=int, default=defaults.chains, help="default: %(default)s")
    sampler.add_argument(
        "--warmup",
        type=int,
        default=defaults.warmup,
        help="warmup iterations per chain (default: %(default)s)",
    )
    sampler.add_argument(
        "--samples",
        type=int,
        default=defaults.samples,
        help="sampling iterations per chain (default: %(default)s)",
    )
    sampler.add_argument(
        "--adapt-delta", type=float, default=defaults.adapt_delta, help="default: %(default)s"
    )
    sampler.add_argument(
        "--max-treedepth", type=int, default=defaults.max_treedepth, help="default: %(default)s"
    )
    sampler.add_argument(
        "--thin",
        type=thin_value,
        default=defaults.thin,
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


def run(args: argparse.Namespace) -> EnsembleReport | SubmittedEnsemble:
    """Validate, simulate, fit what is missing, and report. Raises StanFleetError on bad input.

    Returns the report, or with ``--no-wait`` (AWS) the submitted ensemble.
    """
    settings = validated_settings(args)
    options = verdict_options(args)
    backend = open_backend(args)
    with backend.warm_up():
        return submit(args, settings, options, backend)


def submit(
    args: argparse.Namespace, settings: SamplerSettings, options: VerdictOptions, backend: Backend
) -> EnsembleReport | SubmittedEnsemble:
    """The body of :func:`run`, once the backend is open."""
    model_info = read_model_info(args.model)
    if not model_info.parameters:
        raise StanFleetError(f"{args.model} declares no parameters: there is nothing to calibrate")
    raw_base_data = load_base_data(args.data)
    base_data = conform_base_data(model_info, raw_base_data)
    generator = open_generator(args.generator, backend.local_engine, model_info, raw_base_data)
    spec = EnsembleSpec(
        model_name=args.model.stem,
        model_code=args.model.read_text(),
        dataset=DatasetSpec(generator=generator.source, base_data=raw_base_data, seed=args.seed),
        base_data=base_data,
        settings=settings,
        engine=backend.fit_engine,
        test_quantities=resolve_test_quantities(args.test_quantities, model_info, args.model.name),
    )
    record = RunRecord(
        model=str(args.model),
        model_name=spec.model_name,
        generator=args.generator,
        engine=spec.engine,
        backend=args.backend,
        seed=spec.dataset.seed,
        settings=settings.to_dict(),
        pricing=None if backend.vcpus_per_job is None else (backend.vcpus_per_job, args.spot_price),
    )
    with fitting_lock(backend.store, spec.ensemble_id):
        retried = (
            set_aside_failed_results(backend.store, spec.ensemble_id, args.replicates)
            if args.retry_failed
            else 0
        )
        plan = plan_ensemble(spec, backend.store, args.replicates)
        print(
            f"ensemble {spec.ensemble_id}: {plan.requested} replicates requested, {plan.reused} reused, "
            + (
                f"{len(plan.missing)} to fit with {spec.engine} {backend.where}"
                if plan.missing
                else "nothing to fit"
            )
            + (f" ({retried} stored failed fits set aside to refit)" if retried else ""),
            flush=True,
        )
        if not plan.missing:
            unfitted: list[Unfitted] = []
        else:
            outcome = fit_missing(args, plan, model_info, generator, record, backend)
            if isinstance(outcome, SubmittedEnsemble):
                return outcome
            unfitted = outcome

    report = build_report(
        backend.store,
        spec.ensemble_id,
        requested=plan.requested,
        reused=plan.reused,
        run=record.run,
        pricing=record.pricing,
        options=options,
        machinery_errors=[Failure(u.replicate, u.error) for u in unfitted],
    )
    written = write_ensemble_report(report, args.out)
    if unfitted:
        first = min(unfitted, key=lambda u: u.replicate)
        raise StanFleetError(
            f"{len(unfitted)} replicate(s) hit errors of the machinery, not the model, and have no result "
            f"(replicate {first.replicate}: {first.error}); the report covers the others; rerun the same "
            "command to fit them"
        )
    return written


def fit_missing(
    args: argparse.Namespace,
    plan: EnsemblePlan,
    model_info: ModelInfo,
    generator: Generator,
    record: RunRecord,
    backend: Backend,
) -> list[Unfitted] | SubmittedEnsemble:
    """Simulate, check and publish the missing replicates' inputs, then fit them; return the replicates
    errors of the machinery left without a result, or with ``--no-wait`` (AWS) the submitted ensemble."""
    spec, ensemble_id = plan.spec, plan.spec.ensemble_id
    inputs = EnsembleInputs(plan, generator, model_info, backend.store)
    print(
        f"datasets {spec.dataset_id}: {len(plan.missing) - inputs.simulated} reused, "
        f"{inputs.simulated} simulated",
        flush=True,
    )
    chunks = inputs.chunks()
    first_chunk = next(chunks)
    model = backend.local_engine.compile(args.model)
    first = inputs.first_inputs(first_chunk)
    check_against_model(model, first, spec.base_data, fit_seed(ensemble_id, first.replicate))
    per_child = 1
    if backend.packs_replicates:
        per_child = choose_replicates_per_child(
            args.replicates_per_child, model, first, spec, engine=backend.local_engine.name
        )
    publish_specs(spec, backend.store)
    inputs.publish(first_chunk)
    save_run_record(backend.store, ensemble_id, record)  # for collect's report after --no-wait
    executor = backend.executor(requested=plan.requested, wait=args.wait, replicates_per_child=per_child)
    show_progress = not args.no_progress and args.wait
    preloading = threading.Thread(
        target=preload_report, args=(plan.requested,), name="preload-report", daemon=True
    )
    if args.wait:
        preloading.start()
    published = itertools.chain([first_chunk.replicates], inputs.publishing(chunks))
    try:
        with progress_reporter(len(plan.missing), enabled=show_progress) as on_progress:
            unfitted = executor.run(ensemble_id, plan.missing, on_progress, published)
    except KeyboardInterrupt:
        raise Interrupted(ensemble_id) from None
    if not args.wait:
        print(f"submitted; collect the report later with: {aws_command(args, 'collect', ensemble_id)}")
        print(f"stop the jobs with: {aws_command(args, 'cancel', ensemble_id)}")
        return SubmittedEnsemble(ensemble_id)
    preloading.join()  # the report forks processes to draw its figures: no thread may be importing
    return unfitted


def aws_command(args: argparse.Namespace, module: str, ensemble_id: str) -> str:
    """The ``python -m runtime.<module> ID`` command for this submission's stack and region."""
    return stack_command(module, ensemble_id, stack=args.stack, region=args.region)


def interrupted_message(args: argparse.Namespace, ensemble_id: str | None = None) -> str:
    """What Ctrl-C leaves behind: once an ensemble is launched on AWS, its Batch jobs keep running."""
    if args.backend != "aws" or ensemble_id is None:
        return "interrupted: finished results are kept; rerun the same command to resume"
    return (
        f"interrupted: the Batch jobs of ensemble {ensemble_id} keep running on AWS (and cost money); "
        "finished results are kept\n"
        f"  report on what has finished: {aws_command(args, 'collect', ensemble_id)}\n"
        f"  stop the jobs: {aws_command(args, 'cancel', ensemble_id)}"
    )


def validated_settings(args: argparse.Namespace) -> SamplerSettings:
    """Check the numeric flags and build the sampler settings."""
    if not 1 <= args.replicates <= MAX_REPLICATES:
        raise StanFleetError(
            f"--replicates must be an integer in 1..{MAX_REPLICATES:,}, got {args.replicates:,}"
        )
    if args.workers < 1:
        raise StanFleetError(f"--workers must be a positive integer, got {args.workers}")
    if args.replicates_per_child != AUTO and not 1 <= args.replicates_per_child <= MAX_REPLICATES_PER_CHILD:
        raise StanFleetError(
            f"--replicates-per-child must be 'auto' or an integer in 1..{MAX_REPLICATES_PER_CHILD}, "
            f"got {args.replicates_per_child}"
        )
    settings = SamplerSettings(
        chains=args.chains,
        warmup=args.warmup,
        samples=args.samples,
        adapt_delta=args.adapt_delta,
        max_treedepth=args.max_treedepth,
        thin=args.thin,
    )
    settings.validate()
    return settings


def exit_code(outcome: EnsembleReport | SubmittedEnsemble, fail_on_miscalibration: bool) -> int:
    """0 when the ensemble ran (or was submitted), EXIT_MISCALIBRATED when asked to fail on that verdict."""
    if fail_on_miscalibration and isinstance(outcome, EnsembleReport) and outcome.calibrated is False:
        return EXIT_MISCALIBRATED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors, no traceback, non-zero exit."""
    from runtime.api import run_ensemble  # the command line is a thin layer over the Python API

    forked_children_die_with_this_process()  # httpstan's pool, when a PyStan generator runs here
    args = build_parser().parse_args(argv)
    options = {**vars(args), "fail_on_miscalibration": False}  # here the verdict sets the exit status
    try:
        return exit_status(lambda: exit_code(run_ensemble(**options), args.fail_on_miscalibration))
    except KeyboardInterrupt as exc:
        launched = exc.ensemble_id if isinstance(exc, Interrupted) else None
        print(interrupted_message(args, launched), file=sys.stderr)
        return 130


if __name__ == "__main__":
    exit_quickly(main())
