"""The submission pipeline: from a validated :class:`~runtime.pipeline.request.EnsembleRequest` to the report.

Simulates the missing replicates' inputs chunk by chunk, checks them against the model, publishes them,
fits them with the backend's executor (one fitter per ensemble on a local store), and writes the report.
``run_ensemble`` and ``python -m runtime.submit`` both end here.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from runtime.aws.manifest import AUTO, replicates_per_child
from runtime.aws.stack import stack_command
from runtime.engines.base import CompiledModel
from runtime.ensemble.generators import Generator, open_generator
from runtime.ensemble.lock import fitting_lock
from runtime.ensemble.prepare import (
    EnsembleInputs,
    EnsemblePlan,
    check_against_model,
    plan_ensemble,
    publish_specs,
    set_aside_failed_results,
)
from runtime.ensemble.run_record import RunRecord, save_run_record
from runtime.ensemble.spec import DatasetSpec, EnsembleSpec, fit_seed
from runtime.errors import MachineryError, StanFleetError
from runtime.executors.choice import Backend, Packing, open_backend
from runtime.executors.progress import progress_reporter
from runtime.executors.protocol import Unfitted
from runtime.model.conform import ReplicateInputs, conform_base_data, load_base_data
from runtime.model.stan_info import ModelInfo, read_model_info
from runtime.model.test_quantities import resolve_test_quantities
from runtime.pipeline.posterior import open_posterior
from runtime.pipeline.request import EnsembleRequest
from runtime.report.ensemble_report import EnsembleReport, SubmittedEnsemble
from runtime.report.files import preload_report
from runtime.report.stored import build_report, write_ensemble_report
from runtime.sbc.verdict import Failure

DEFAULT_REPLICATES_PER_CHILD = 20


class Interrupted(KeyboardInterrupt):
    """Ctrl-C once the ensemble was handed to its executor (still a KeyboardInterrupt: exit 130)."""

    def __init__(self, ensemble_id: str) -> None:
        super().__init__(ensemble_id)
        self.ensemble_id = ensemble_id


def choose_replicates_per_child(
    requested: int | str,
    model: CompiledModel,
    first: ReplicateInputs,
    spec: EnsembleSpec,
    *,
    engine: str,
    packing: Packing,
) -> int:
    """The flag's value, or for ``auto`` the packing that one timed local fit of the first replicate suggests."""
    if requested != AUTO:
        return int(requested)
    from runtime.fitting.fit_replicate import (
        fit_replicate,  # ArviZ (scoring): imported only when a fit is timed
    )

    try:
        trial = fit_replicate(
            model,
            first,
            base_data=spec.base_data,
            settings=spec.settings,
            seed=fit_seed(spec.ensemble_id, first.replicate),
            engine=engine,
            score_log_lik=False,
        )
        failure = trial.error if trial.status != "ok" else None
    except MachineryError as exc:  # the machine's trouble here says nothing about the fits elsewhere
        failure = str(exc)
    if failure is not None:
        print(
            f"a trial fit of replicate {first.replicate} failed here ({failure}); "
            f"packing {DEFAULT_REPLICATES_PER_CHILD} replicates per {packing.unit}"
        )
        return DEFAULT_REPLICATES_PER_CHILD
    per_child = replicates_per_child(trial.sample_seconds, packing.target_seconds)
    print(
        f"a trial fit took {trial.sample_seconds:.2f} s here: {per_child} replicates per {packing.unit} "
        f"(about {per_child * trial.sample_seconds / 60:.1f} min each)"
    )
    return per_child


def run_request(request: EnsembleRequest) -> EnsembleReport | SubmittedEnsemble:
    """Validate, simulate, fit what is missing, and report. Raises StanFleetError on bad input.

    Returns the report, or with ``wait=False`` (AWS) the submitted ensemble.
    """
    request.validate()
    backend = open_backend(
        backend=request.backend,
        engine=request.engine,
        store=request.store,
        workers=request.workers,
        wait=request.wait,
        stack=request.stack,
        region=request.region,
        scheduler=request.scheduler,
    )
    with backend.warm_up():
        return _submit(request, backend)


def _submit(request: EnsembleRequest, backend: Backend) -> EnsembleReport | SubmittedEnsemble:
    """The body of :func:`run_request`, once the backend is open."""
    settings = request.settings
    model_info = read_model_info(request.model)
    if not model_info.parameters:
        raise StanFleetError(f"{request.model} declares no parameters: there is nothing to calibrate")
    generator, dataset, base_data, posterior_record = open_datasets(request, model_info, backend)
    spec = EnsembleSpec(
        model_name=request.model.stem,
        model_code=request.model.read_text(),
        dataset=dataset,
        base_data=base_data,
        settings=settings,
        engine=backend.fit_engine,
        test_quantities=resolve_test_quantities(request.test_quantity_list, model_info, request.model.name),
    )
    record = RunRecord(
        model=str(request.model),
        model_name=spec.model_name,
        generator=request.generator or f"posterior SBC, conditional on {request.posterior}",
        engine=spec.engine,
        backend=request.backend,
        seed=spec.dataset.seed,
        settings=settings.to_dict(),
        pricing=None if backend.vcpus_per_job is None else (backend.vcpus_per_job, request.spot_price),
        posterior=posterior_record,
    )
    with fitting_lock(backend.store, spec.ensemble_id):
        retried = (
            set_aside_failed_results(backend.store, spec.ensemble_id, request.replicates)
            if request.retry_failed
            else 0
        )
        plan = plan_ensemble(spec, backend.store, request.replicates)
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
            outcome = fit_missing(request, plan, model_info, generator, record, backend)
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
        options=request.verdict_options,
        machinery_errors=[Failure(u.replicate, u.error) for u in unfitted],
    )
    written = write_ensemble_report(report, request.out)
    if unfitted:
        first = min(unfitted, key=lambda u: u.replicate)
        raise StanFleetError(
            f"{len(unfitted)} replicate(s) hit errors of the machinery, not the model, and have no result "
            f"(replicate {first.replicate}: {first.error}"
            + (f"; every attempt in {first.log}" if first.log else "")
            + "); the report covers the others; rerun the same command to fit them"
        )
    return written


def open_datasets(
    request: EnsembleRequest, model_info: ModelInfo, backend: Backend
) -> tuple[Generator, DatasetSpec, dict[str, Any], dict[str, Any] | None]:
    """Where the datasets come from.

    Returns the generator, the dataset spec, the fits' base data, and posterior SBC's part of the run
    record (None for prior SBC).
    """
    if request.posterior is not None:
        posterior = open_posterior(request, model_info, backend.local_engine, backend.store)
        base_data = conform_base_data(model_info, posterior.generator.fixed_data)
        return posterior.generator, posterior.dataset, base_data, posterior.record
    assert request.generator is not None  # EnsembleRequest.validate: one or the other
    raw_base_data = load_base_data(request.data)
    base_data = conform_base_data(model_info, raw_base_data)
    generator = open_generator(request.generator, backend.local_engine, model_info, raw_base_data)
    dataset = DatasetSpec(generator=generator.source, base_data=raw_base_data, seed=request.seed)
    return generator, dataset, base_data, None


def fit_missing(
    request: EnsembleRequest,
    plan: EnsemblePlan,
    model_info: ModelInfo,
    generator: Generator,
    record: RunRecord,
    backend: Backend,
) -> list[Unfitted] | SubmittedEnsemble:
    """Simulate, check and publish the missing replicates' inputs, then fit them.

    Return the replicates errors of the machinery left without a result, or with ``--no-wait`` (AWS) the
    submitted ensemble.
    """
    spec, ensemble_id = plan.spec, plan.spec.ensemble_id
    inputs = EnsembleInputs(plan, generator, model_info, backend.store)
    print(
        f"datasets {spec.dataset_id}: {len(plan.missing) - inputs.simulated} reused, "
        f"{inputs.simulated} simulated",
        flush=True,
    )
    chunks = inputs.chunks()
    first_chunk = next(chunks)
    model = backend.local_engine.compile(request.model)
    first = inputs.first_inputs(first_chunk)
    check_against_model(model, first, spec.base_data, fit_seed(ensemble_id, first.replicate))
    per_child = 1
    if backend.packing is not None:
        per_child = choose_replicates_per_child(
            request.replicates_per_child,
            model,
            first,
            spec,
            engine=backend.local_engine.name,
            packing=backend.packing,
        )
    generator.publish_sources(backend.store, spec.dataset_id)
    publish_specs(spec, backend.store)
    inputs.publish(first_chunk)
    save_run_record(backend.store, ensemble_id, record)  # for collect's report after --no-wait
    executor = backend.executor(requested=plan.requested, wait=request.wait, replicates_per_child=per_child)
    show_progress = not request.no_progress and request.wait
    preloading = threading.Thread(
        target=preload_report, args=(plan.requested,), name="preload-report", daemon=True
    )
    if request.wait:
        preloading.start()
    published = itertools.chain([first_chunk.replicates], inputs.publishing(chunks))
    try:
        with progress_reporter(len(plan.missing), enabled=show_progress) as on_progress:
            unfitted = executor.run(ensemble_id, plan.missing, on_progress, published)
    except KeyboardInterrupt:
        raise Interrupted(ensemble_id) from None
    if not request.wait:
        print(f"submitted; collect the report later with: {aws_command(request, 'collect', ensemble_id)}")
        print(f"stop the jobs with: {aws_command(request, 'cancel', ensemble_id)}")
        return SubmittedEnsemble(ensemble_id)
    preloading.join()  # the report forks processes to draw its figures: no thread may be importing
    return unfitted


def aws_command(request: EnsembleRequest, module: str, ensemble_id: str) -> str:
    """The ``python -m runtime.<module> ID`` command for this submission's stack and region."""
    return stack_command(module, ensemble_id, stack=request.stack, region=request.region)
