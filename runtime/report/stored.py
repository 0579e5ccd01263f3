"""Reports rebuilt from stored results, with nothing refitted.

They are what ``python -m runtime.collect``, the API's ``load_ensemble`` and the submitter write. The
submitter's run fields and cost estimate come from the ensemble's run record
(:mod:`runtime.ensemble.run_record`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.aws.stack import read_stack_outputs
from runtime.ensemble.cost import CostEstimate, estimate_cost
from runtime.ensemble.run_record import load_run_record
from runtime.ensemble.spec import load_spec
from runtime.ensemble.stored_results import load_score_table
from runtime.errors import StanFleetError
from runtime.report.ensemble_report import EnsembleReport
from runtime.report.files import INDEX, keep_nulls_on_disk, write_report
from runtime.report.table import verdict_table
from runtime.sbc.verdict import DEFAULT_VERDICT, Failure, VerdictOptions, summarize
from runtime.store.choice import open_store
from runtime.store.keys import manifest_key, replicates_of_result_key, results_prefix
from runtime.store.protocol import ObjectStore
from runtime.store.s3 import S3Store


def build_report(
    store: ObjectStore,
    ensemble_id: str,
    *,
    requested: int,
    reused: int,
    run: dict[str, Any],
    pricing: tuple[float, float] | None = None,
    options: VerdictOptions = DEFAULT_VERDICT,
    machinery_errors: Sequence[Failure] = (),
) -> EnsembleReport:
    """Summarize results ``0..requested-1`` from the store; nothing is written or printed.

    With ``pricing = (vCPUs per job, USD per vCPU-hour)`` a cost estimate joins the summary's ``run``;
    ``machinery_errors`` are the replicates the run that just ended left without a result.
    """
    keep_nulls_on_disk()
    table = load_score_table(store, ensemble_id, requested)
    if pricing is not None:
        cost = estimate_cost(float(table.total_seconds.sum()), *pricing)
        run = {**run, "cost_estimate": cost.to_dict()}
    summary = summarize(
        table,
        ensemble_id=ensemble_id,
        requested=requested,
        reused=reused,
        options=options,
        run=run,
        machinery_errors=machinery_errors,
    )
    return EnsembleReport(summary, table)


def write_ensemble_report(report: EnsembleReport, out_dir: Path | None) -> EnsembleReport:
    """Write the report files and print the cost estimate, the verdict table and the report's path.

    The files go to ``out_dir``, by default ``sbc-report/<model>-<id prefix>``; the path of ``index.html``
    is printed last.
    """
    summary = report.verdict
    out = (
        out_dir or Path("sbc-report") / f"{summary.run.get('model_name', 'model')}-{summary.ensemble_id[:8]}"
    )
    if "cost_estimate" in summary.run:
        print(CostEstimate(**summary.run["cost_estimate"]).describe())
    write_report(summary, report.scores, out)
    print(verdict_table(summary))
    print(f"report: {out / INDEX}")
    return replace(report, out_dir=out)


def results_store(uri: str | None, stack: str, region: str | None) -> ObjectStore:
    """The store at ``uri``, else the deployed stack's bucket."""
    if uri:
        return open_store(uri)
    return S3Store(read_stack_outputs(stack, region).bucket, region=region)


def requested_replicates(store: ObjectStore, ensemble_id: str) -> int:
    """R from the ensemble's manifest, else one past the highest replicate with a result."""
    try:
        return int(json.loads(store.get(manifest_key(ensemble_id)))["replicates"])
    except KeyError:
        done = [max(replicates_of_result_key(key)) for key in store.list_keys(results_prefix(ensemble_id))]
        if not done:
            raise StanFleetError(f"ensemble {ensemble_id} has no results in {store.uri} yet") from None
        return max(done) + 1


def stored_report(
    ensemble_id: str, *, store: ObjectStore, replicates: int | None, options: VerdictOptions
) -> EnsembleReport:
    """The report of results ``0..R-1`` in the store; nothing is refitted.

    R is ``replicates``, else the manifest's. The report carries the submitter's run record (or, for
    ensembles without one, what the spec says).
    """
    if replicates is not None and replicates < 1:
        raise StanFleetError(f"--replicates must be a positive integer, got {replicates}")
    spec = load_spec(store, ensemble_id)
    requested = replicates or requested_replicates(store, ensemble_id)
    record = load_run_record(store, ensemble_id)
    if record is None:  # published before submitters wrote a run record: what the spec says
        run: dict[str, Any] = {
            "model_name": spec.model_name,
            "engine": spec.engine,
            "seed": spec.dataset.seed,
            "settings": spec.settings.to_dict(),
        }
        pricing = None
    else:
        run, pricing = record.run, record.pricing
    return build_report(
        store, ensemble_id, requested=requested, reused=0, run=run, pricing=pricing, options=options
    )
