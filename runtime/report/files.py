"""The ensemble report files: ``summary.json``, ``replicates.csv``, a PNG per figure and ``index.html``.

``write_report`` writes an :class:`~runtime.sbc.verdict.EnsembleSummary` (see :mod:`runtime.sbc.verdict`), the
per-replicate scores, the figures of :mod:`runtime.report.figures` and the page of :mod:`runtime.report.html`
into a directory.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.model.files import cache_root
from runtime.report.html import render_index
from runtime.report.pngs import render_pngs
from runtime.sbc.results import ReplicateResult
from runtime.sbc.verdict import (
    PARAMETER,
    TEST_QUANTITY,
    EnsembleSummary,
    collect_quantities,
    succeeded_results,
)
from runtime.store.atomic_file import write_atomically

INDEX = "index.html"
NULLS_DIRECTORY = "gamma-nulls"
"""Under the cache directory (``$STANFLEET_CACHE_DIR``, default ``~/.cache/stanfleet``)."""
"""The report's page: everything on one self-contained page."""
CSV_COLUMNS = (
    "replicate",
    "seed",
    "status",
    "quantity",
    "kind",
    "true_value",
    "rank",
    "max_rank",
    "mean",
    "sd",
    "q5",
    "median",
    "q95",
    "z_score",
    "contraction",
    "rhat",
    "ess_bulk",
    "ess_tail",
    "divergences",
    "max_treedepth_hits",
    "min_ebfmi",
    "error",
)


def preload_report(replicates: int) -> None:
    """Import what the plots need and simulate the uniformity test's null distribution, ahead of time.

    The imports (ArviZ, matplotlib, scipy.stats) take seconds; the null distribution is for ``replicates``
    PIT values.

    The submitter runs this in a thread while the fits run, so the report starts at once.
    """
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401
    import scipy.stats  # noqa: F401

    import runtime.arviz_quiet  # noqa: F401
    from runtime.sbc.uniformity import prepare_gamma_null

    keep_nulls_on_disk()
    prepare_gamma_null(replicates)


def keep_nulls_on_disk() -> None:
    """Keep the uniformity test's simulated null distributions in StanFleet's cache directory.

    A report of the same R in a later run then reads them back instead of simulating them again.
    """
    from runtime.sbc.uniformity import use_gamma_null_cache

    use_gamma_null_cache(cache_root() / NULLS_DIRECTORY)


def write_report(summary: EnsembleSummary, results: Sequence[ReplicateResult], out_dir: Path) -> list[Path]:
    """Write the report's files into ``out_dir``.

    The files are ``summary.json``, ``replicates.csv``, ``<figure>.png`` for every figure of
    :data:`runtime.report.figures.FIGURE_NAMES`, then ``index.html``.

    Every file is written to a temporary file in ``out_dir`` and renamed into place, so a crash
    never leaves a half-written file. Returns the paths written, in that order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    paths = [write_atomically(out_dir / "summary.json", payload.encode())]
    paths.append(write_atomically(out_dir / "replicates.csv", replicates_csv(results)))
    pngs = render_pngs(summary, results)
    paths += [write_atomically(out_dir / f"{name}.png", png) for name, png in pngs.items()]
    paths.append(write_atomically(out_dir / INDEX, render_index(summary, pngs)))
    return paths


# --- files -----------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return "" if value is None else value


def replicates_csv(results: Sequence[ReplicateResult]) -> bytes:
    """``replicates.csv``: one row per succeeded replicate and quantity, one row per failed replicate."""
    quantities = collect_quantities(succeeded_results(results))
    derived: dict[tuple[str, str, int], tuple[float, float]] = {}
    for q in quantities:
        for replicate, z, c in zip(q.replicates, q.z_scores(), q.contraction(), strict=True):
            derived[(q.kind, q.name, int(replicate))] = (float(z), float(c))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in sorted(results, key=lambda r: r.replicate):
        base: dict[str, Any] = {"replicate": result.replicate, "seed": result.seed, "status": result.status}
        if result.diagnostics is not None:
            fit = result.diagnostics
            base |= {
                "divergences": fit.divergences,
                "max_treedepth_hits": fit.max_treedepth_hits,
                "min_ebfmi": fit.min_ebfmi,
            }
        if result.status != "ok":
            base["error"] = result.error or ""
        rows = []
        for kind, scores in ((PARAMETER, result.variables), (TEST_QUANTITY, result.test_quantities)):
            for name, s in scores.items():
                z, c = derived.get((kind, name, result.replicate), (math.nan, math.nan))
                rows.append(
                    base
                    | {
                        "quantity": name,
                        "kind": kind,
                        "true_value": s.true_value,
                        "rank": s.rank,
                        "max_rank": s.max_rank,
                        "mean": s.mean,
                        "sd": s.sd,
                        "q5": s.q5,
                        "median": s.median,
                        "q95": s.q95,
                        "z_score": z,
                        "contraction": c,
                        "rhat": s.rhat,
                        "ess_bulk": s.ess_bulk,
                        "ess_tail": s.ess_tail,
                    }
                )
        for row in rows or [base]:
            writer.writerow([_csv_value(row.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue().encode()
