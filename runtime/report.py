"""The ensemble report: calibration verdict, per-replicate table and plots.

``summarize`` turns the ensemble's replicate results into an :class:`EnsembleSummary` (the verdict);
``write_report`` writes ``summary.json``, ``replicates.csv`` and four PNG plots; ``verdict_table``
renders the verdict for the terminal. This is the only module that imports matplotlib and ArviZ,
lazily, so that ``summarize`` and ``verdict_table`` stay light; figures are rendered with Agg.

The uniformity test of each quantity is the gamma statistic of Säilynoja et al. (2022) on
randomized PIT values ``u = (rank + U(0,1)) / (max_rank + 1)``; the verdicts of all quantities are
Holm-corrected together at a family-wise level (0.01 by default).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.atomic_file import write_atomically
from runtime.results import ReplicateResult, VariableScore
from runtime.stats import contraction, gamma_uniformity_pvalue, holm_calibrated, randomized_pit, z_scores

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

UNIFORMITY_METHOD = (
    "gamma statistic (Säilynoja et al. 2022) on randomized PIT u = (rank + U(0,1)) / (max_rank + 1), "
    "Monte Carlo p-value"
)
CORRECTION = "holm"
EBFMI_THRESHOLD = 0.3
"""A replicate with min E-BFMI below this is flagged (Betancourt 2016)."""
RHAT_THRESHOLD = 1.01
"""A replicate with any R-hat above this is flagged (Vehtari et al. 2021)."""
ESS_THRESHOLD = 400.0
"""A replicate with any bulk or tail ESS below this is flagged (100 per chain for 4 chains)."""
MAX_PANELS = 24
"""At most this many quantities (those with the lowest p-values) get a panel in each plot."""
ECDF_POINTS = 100
"""Evaluation points of the PIT ECDF in the ECDF-difference plot."""
MAX_TABLE_ROWS = 30
"""At most this many quantities (those with the lowest p-values) get a row in the verdict table."""
PARAMETER = "parameter"
TEST_QUANTITY = "test_quantity"
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


@dataclass(frozen=True)
class QuantitySummary:
    """Calibration statistics of one checked quantity over the succeeded replicates.

    Every statistic is None when fewer than two replicates scored the quantity.
    ``prior_variance`` is the variance (ddof=1) of the quantity's true values across the ensemble.
    """

    replicates: int
    calibrated: bool | None
    p_value: float | None
    mean_z_score: float | None
    mean_contraction: float | None
    mean_rank: float | None
    max_rank: int | None
    prior_variance: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "calibrated": self.calibrated,
            "p_value": self.p_value,
            "mean_z_score": self.mean_z_score,
            "mean_contraction": self.mean_contraction,
            "mean_rank": self.mean_rank,
            "max_rank": self.max_rank,
            "prior_variance": self.prior_variance,
            "replicates": self.replicates,
        }


@dataclass(frozen=True)
class DiagnosticsSummary:
    """How many succeeded replicates tripped each sampler diagnostic, and the thresholds used."""

    replicates_with_divergences: int
    replicates_with_max_treedepth: int
    replicates_with_low_ebfmi: int
    replicates_with_high_rhat: int
    replicates_with_low_ess: int
    ebfmi_threshold: float = EBFMI_THRESHOLD
    rhat_threshold: float = RHAT_THRESHOLD
    ess_threshold: float = ESS_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Failure:
    """A failed replicate and the first line of its error."""

    replicate: int
    error: str


@dataclass(frozen=True)
class EnsembleSummary:
    """The calibration verdict of one ensemble.

    ``calibrated`` is True when every checked quantity is calibrated, False when any is not, and
    None when the verdict cannot be given (fewer than two succeeded replicates, nothing checked).
    """

    ensemble_id: str
    calibrated: bool | None
    requested: int
    succeeded: int
    failed: int
    reused: int
    family_level: float
    variables: dict[str, QuantitySummary]
    test_quantities: dict[str, QuantitySummary]
    diagnostics: DiagnosticsSummary
    failures: list[Failure]
    fit_seconds: float = 0.0
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def quantities_checked(self) -> int:
        """Number of quantities in the Holm family (those with a p-value)."""
        return sum(q.p_value is not None for _, _, q in self.quantities())

    def quantities(self) -> list[tuple[str, str, QuantitySummary]]:
        """``(kind, name, summary)`` of every quantity, parameters first."""
        return [(PARAMETER, name, q) for name, q in self.variables.items()] + [
            (TEST_QUANTITY, name, q) for name, q in self.test_quantities.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form written as ``summary.json``; non-finite numbers become None."""
        return _json_safe(
            {
                "ensemble_id": self.ensemble_id,
                "calibrated": self.calibrated,
                "replicates": {
                    "requested": self.requested,
                    "succeeded": self.succeeded,
                    "failed": self.failed,
                    "reused": self.reused,
                },
                "uniformity_test": {
                    "method": UNIFORMITY_METHOD,
                    "family_level": self.family_level,
                    "correction": CORRECTION,
                    "quantities_checked": self.quantities_checked,
                },
                "variables": {name: q.to_dict() for name, q in self.variables.items()},
                "test_quantities": {name: q.to_dict() for name, q in self.test_quantities.items()},
                "diagnostics": self.diagnostics.to_dict(),
                "failures": [{"replicate": f.replicate, "error": f.error} for f in self.failures],
                "fit_seconds_total": self.fit_seconds,
                "run": self.run,
            }
        )


@dataclass(frozen=True)
class _Quantity:
    """One quantity's scores across the succeeded replicates that have it, by replicate."""

    kind: str
    name: str
    replicates: np.ndarray
    true: np.ndarray
    rank: np.ndarray
    max_rank: np.ndarray
    mean: np.ndarray
    sd: np.ndarray

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def prior_variance(self) -> float:
        finite = self.true[np.isfinite(self.true)]
        return float(np.var(finite, ddof=1)) if finite.size >= 2 else math.nan

    def z_scores(self) -> np.ndarray:
        return np.asarray(z_scores(self.mean, self.sd, self.true), dtype=float)

    def contraction(self) -> np.ndarray:
        return np.asarray(contraction(self.sd, self.prior_variance()), dtype=float)

    def pit(self, ensemble_id: str) -> np.ndarray:
        """Randomized PIT values, the jitter seeded by ensemble id and quantity (reproducible)."""
        digest = hashlib.sha256(f"{ensemble_id}\x00{self.kind}\x00{self.name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:16], "little"))
        return np.asarray(randomized_pit(self.rank, self.max_rank, rng), dtype=float)


def summarize(
    results: Sequence[ReplicateResult],
    *,
    ensemble_id: str,
    requested: int,
    reused: int,
    family_level: float = 0.01,
    run: dict[str, Any] | None = None,
) -> EnsembleSummary:
    """Aggregate replicate results into the ensemble's calibration verdict.

    Parameters
    ----------
    results
        Succeeded (``status == "ok"``) and failed replicates, in any order.
    ensemble_id
        Identifies the ensemble; also seeds the PIT randomization, so the verdict is reproducible.
    requested, reused
        Replicates asked for, and how many results were reused from an earlier run.
    family_level
        Family-wise error level of the Holm-corrected uniformity tests over all checked quantities.
    run
        How the ensemble was produced (model, generator, engine, settings), copied into the summary.

    Returns
    -------
    EnsembleSummary
        Per-quantity statistics are None for quantities scored by fewer than two replicates.
    """
    ok = _succeeded(results)
    quantities = _collect(ok)
    p_values: dict[str, float] = {}
    stats: dict[str, dict[str, Any]] = {}
    for quantity in quantities:
        n = quantity.replicates.size
        p_value = None
        if n >= 2:
            # rng=None: the null distribution is simulated once per sample size with a fixed seed.
            p_value = _finite_or_none(gamma_uniformity_pvalue(quantity.pit(ensemble_id)))
        if p_value is not None:
            p_values[quantity.key] = p_value
        stats[quantity.key] = {
            "replicates": n,
            "p_value": p_value,
            "mean_z_score": _finite_mean(quantity.z_scores()) if n >= 2 else None,
            "mean_contraction": _finite_mean(quantity.contraction()) if n >= 2 else None,
            "mean_rank": _finite_mean(quantity.rank.astype(float)) if n >= 2 else None,
            "max_rank": int(quantity.max_rank.max()) if n >= 2 else None,
            "prior_variance": _finite_or_none(quantity.prior_variance()),
        }
    verdicts = holm_calibrated(p_values, family_level) if p_values else {}
    summaries: dict[str, dict[str, QuantitySummary]] = {PARAMETER: {}, TEST_QUANTITY: {}}
    for quantity in quantities:
        verdict = verdicts.get(quantity.key)
        summaries[quantity.kind][quantity.name] = QuantitySummary(
            calibrated=None if verdict is None else bool(verdict), **stats[quantity.key]
        )
    all_verdicts = [q.calibrated for kind in summaries.values() for q in kind.values()]
    overall = None
    if all_verdicts and all(v is not None for v in all_verdicts):
        overall = all(all_verdicts)
    failed = sorted((r for r in results if r.status != "ok"), key=lambda r: r.replicate)
    return EnsembleSummary(
        ensemble_id=ensemble_id,
        calibrated=overall,
        requested=requested,
        succeeded=len(ok),
        failed=len(failed),
        reused=reused,
        family_level=family_level,
        variables=summaries[PARAMETER],
        test_quantities=summaries[TEST_QUANTITY],
        diagnostics=_diagnostics(ok),
        failures=[Failure(r.replicate, _first_line(r.error)) for r in failed],
        fit_seconds=float(sum(r.total_seconds for r in results)),
        run=dict(run or {}),
    )


def write_report(summary: EnsembleSummary, results: Sequence[ReplicateResult], out_dir: Path) -> list[Path]:
    """Write ``summary.json``, ``replicates.csv`` and the four PNG plots into ``out_dir``.

    Every file is written to a temporary file in ``out_dir`` and renamed into place, so a crash
    never leaves a half-written file. Returns the paths written, in that order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    paths = [write_atomically(out_dir / "summary.json", payload.encode())]
    quantities = _collect(_succeeded(results))
    paths.append(write_atomically(out_dir / "replicates.csv", _replicates_csv(results, quantities)))
    plotted = [q for q in quantities if q.replicates.size >= 2]
    pits = {q.key: q.pit(summary.ensemble_id) for q in plotted}
    shown, note = _select_panels(summary, plotted)
    for name, draw in (
        ("rank_histograms.png", _rank_histograms),
        ("ecdf_difference.png", _ecdf_difference),
        ("z_score_vs_contraction.png", _z_score_vs_contraction),
    ):
        paths.append(write_atomically(out_dir / name, _png(draw(summary, shown, pits, note))))
    paths.append(write_atomically(out_dir / "diagnostics.png", _png(_diagnostics_figure(summary, results))))
    return paths


def verdict_table(summary: EnsembleSummary) -> str:
    """A short fixed-width verdict for the terminal: one row per quantity, then totals and verdict."""
    rows = summary.quantities()
    hidden = 0
    if len(rows) > MAX_TABLE_ROWS:
        hidden = len(rows) - MAX_TABLE_ROWS
        rows = sorted(rows, key=lambda row: _p_sort_key(row[2]))[:MAX_TABLE_ROWS]
    labels = [name if kind == PARAMETER else f"{name} (test)" for kind, name, _ in rows]
    width = max([len("quantity"), *map(len, labels)])
    lines = [
        f"{'quantity':<{width}}  {'p-value':>8}  {'calibrated':<10}  {'mean z':>7}  {'mean contraction':>16}"
    ]
    for label, (_, _, q) in zip(labels, rows, strict=True):
        lines.append(
            f"{label:<{width}}  {_fmt_p(q.p_value):>8}  {_yes_no(q.calibrated):<10}  "
            f"{_fmt(q.mean_z_score, '7.2f')}  {_fmt(q.mean_contraction, '16.2f')}"
        )
    if hidden:
        lines.append(f"... {hidden} more quantities with higher p-values not shown (see summary.json)")
    lines.append(
        f"replicates: {summary.succeeded} succeeded, {summary.failed} failed, {summary.reused} reused "
        f"({summary.requested} requested)"
    )
    d = summary.diagnostics
    lines.append(
        f"diagnostics (replicates): {d.replicates_with_divergences} with divergences, "
        f"{d.replicates_with_max_treedepth} hit max treedepth, "
        f"{d.replicates_with_low_ebfmi} E-BFMI < {d.ebfmi_threshold:g}, "
        f"{d.replicates_with_high_rhat} R-hat > {d.rhat_threshold:g}, "
        f"{d.replicates_with_low_ess} ESS < {d.ess_threshold:g}"
    )
    test = f"{CORRECTION.capitalize()}-corrected gamma test, family-wise level {summary.family_level:g}"
    if summary.calibrated is None:
        verdict = "UNDETERMINED (fewer than 2 succeeded replicates per quantity)"
    elif summary.calibrated:
        verdict = f"CALIBRATED ({summary.quantities_checked} quantities, {test})"
    else:
        bad = sum(q.calibrated is False for _, _, q in summary.quantities())
        verdict = f"NOT CALIBRATED ({bad} of {summary.quantities_checked} quantities, {test})"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)


# --- aggregation helpers ---------------------------------------------------------------------


def _succeeded(results: Sequence[ReplicateResult]) -> list[ReplicateResult]:
    return sorted((r for r in results if r.status == "ok"), key=lambda r: r.replicate)


def _collect(ok: Sequence[ReplicateResult]) -> list[_Quantity]:
    """Gather each quantity's scores across ``ok`` (sorted by replicate), in first-seen order."""
    gathered: dict[tuple[str, str], list[tuple[int, VariableScore]]] = {}
    for result in ok:
        for kind, scores in ((PARAMETER, result.variables), (TEST_QUANTITY, result.test_quantities)):
            for name, score in scores.items():
                gathered.setdefault((kind, name), []).append((result.replicate, score))
    ordered = sorted(gathered.items(), key=lambda item: item[0][0] != PARAMETER)
    return [
        _Quantity(
            kind=kind,
            name=name,
            replicates=np.array([r for r, _ in entries], dtype=int),
            true=np.array([s.true_value for _, s in entries], dtype=float),
            rank=np.array([s.rank for _, s in entries], dtype=int),
            max_rank=np.array([s.max_rank for _, s in entries], dtype=int),
            mean=np.array([s.mean for _, s in entries], dtype=float),
            sd=np.array([s.sd for _, s in entries], dtype=float),
        )
        for (kind, name), entries in ordered
    ]


def _all_scores(result: ReplicateResult) -> list[VariableScore]:
    return [*result.variables.values(), *result.test_quantities.values()]


def _max_rhat(result: ReplicateResult) -> float:
    values = [s.rhat for s in _all_scores(result) if math.isfinite(s.rhat)]
    return max(values) if values else math.nan


def _min_ess(result: ReplicateResult) -> float:
    values = [e for s in _all_scores(result) for e in (s.ess_bulk, s.ess_tail) if math.isfinite(e)]
    return min(values) if values else math.nan


def _diagnostics(ok: Sequence[ReplicateResult]) -> DiagnosticsSummary:
    fits = [r.diagnostics for r in ok if r.diagnostics is not None]
    return DiagnosticsSummary(
        replicates_with_divergences=sum(d.divergences > 0 for d in fits),
        replicates_with_max_treedepth=sum(d.max_treedepth_hits > 0 for d in fits),
        replicates_with_low_ebfmi=sum(d.min_ebfmi < EBFMI_THRESHOLD for d in fits),
        replicates_with_high_rhat=sum(_max_rhat(r) > RHAT_THRESHOLD for r in ok),
        replicates_with_low_ess=sum(_min_ess(r) < ESS_THRESHOLD for r in ok),
    )


def _first_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    return lines[0].strip() if lines else "unknown error"


def _finite_or_none(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _finite_mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(value)
    return value


def _p_sort_key(q: QuantitySummary) -> float:
    return q.p_value if q.p_value is not None else math.inf


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if value is None else format(value, spec)


def _fmt_p(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    return f"{p_value:.3f}" if p_value >= 0.001 else f"{p_value:.0e}"


def _yes_no(calibrated: bool | None) -> str:
    return "-" if calibrated is None else ("yes" if calibrated else "NO")


# --- files -----------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return "" if value is None else value


def _replicates_csv(results: Sequence[ReplicateResult], quantities: Sequence[_Quantity]) -> bytes:
    """One row per succeeded replicate and quantity, one row per failed replicate."""
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


# --- plots -----------------------------------------------------------------------------------


def _select_panels(summary: EnsembleSummary, quantities: Sequence[_Quantity]) -> tuple[list[_Quantity], str]:
    """The quantities to plot (all, or the MAX_PANELS with the lowest p-values) and a title note."""
    if len(quantities) <= MAX_PANELS:
        return list(quantities), ""
    shown = sorted(quantities, key=lambda q: _p_sort_key(_lookup(summary, q)))[:MAX_PANELS]
    return shown, f" ({MAX_PANELS} of {len(quantities)} quantities: those with the lowest p-values)"


def _lookup(summary: EnsembleSummary, quantity: _Quantity) -> QuantitySummary:
    table = summary.variables if quantity.kind == PARAMETER else summary.test_quantities
    missing = QuantitySummary(0, None, None, None, None, None, None, None)
    return table.get(quantity.name, missing)


def _label(quantity: _Quantity) -> str:
    return quantity.name if quantity.kind == PARAMETER else f"{quantity.name} (test quantity)"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas, outside pyplot (no global state, no window, freed with the object)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _panel_grid(n: int, title: str) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels, at most four per row."""
    ncols = min(max(n, 1), 4)
    nrows = math.ceil(max(n, 1) / ncols)
    width, height = 3.3 * ncols, 2.6 * nrows + 0.5
    figure = _new_figure(width, height)
    # Fixed margins in inches: constrained layout would cost seconds with two dozen panels.
    figure.subplots_adjust(
        left=0.55 / width,
        right=1 - 0.15 / width,
        bottom=0.45 / height,
        top=1 - 0.8 / height,
        wspace=0.3,
        hspace=0.85,
    )
    axes = list(figure.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    figure.suptitle(title, y=1 - 0.1 / height, va="top")
    return figure, axes[:n]


def _placeholder(title: str, message: str) -> Figure:
    figure = _new_figure(6.0, 2.5)
    figure.suptitle(title)
    ax = figure.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return figure


def _panel_title(ax: Axes, summary: EnsembleSummary, quantity: _Quantity) -> None:
    q = _lookup(summary, quantity)
    p_value = "p = -" if q.p_value is None else f"p = {q.p_value:.3g}"
    verdict = {None: "", True: "", False: "  NOT calibrated"}[q.calibrated]
    # An explicit y skips matplotlib's costly automatic title placement.
    ax.set_title(
        f"{_label(quantity)}\n{p_value}{verdict}",
        fontsize=9,
        color="C3" if verdict else "black",
        y=1.0,
        pad=4,
    )


def _few_ticks(ax: Axes) -> None:
    """Four ticks per axis, small labels: tick creation dominates the rendering of many panels."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=7)


def _n_bins(n: int, max_rank: int | None) -> int:
    """Histogram bins with about ten expected counts each, never finer than the ranks themselves."""
    bins = min(max(n // 10, 1), 40)
    return min(bins, max_rank + 1) if max_rank is not None else bins


def _rank_histograms(
    summary: EnsembleSummary, shown: list[_Quantity], pits: dict[str, np.ndarray], note: str
) -> Figure:
    """Rank histograms (from the randomized PITs) with the pointwise binomial 99% band shaded."""
    from scipy.stats import binom

    title = f"Rank histograms, 99% binomial band shaded{note}"
    if not shown:
        return _placeholder(title, "fewer than 2 succeeded replicates")
    figure, axes = _panel_grid(len(shown), title)
    for ax, quantity in zip(axes, shown, strict=True):
        pit = pits[quantity.key]
        common = bool(np.all(quantity.max_rank == quantity.max_rank[0]))
        scale = float(quantity.max_rank[0] + 1) if common else 1.0
        bins = _n_bins(pit.size, int(quantity.max_rank[0]) if common else None)
        edges = np.linspace(0.0, scale, bins + 1)
        counts, _ = np.histogram(pit * scale, edges)
        low, high = binom.ppf([0.005, 0.995], pit.size, 1.0 / bins)
        ax.axhspan(low, high, color="0.85", zorder=0, lw=0)
        ax.axhline(pit.size / bins, color="0.55", lw=0.8, zorder=1)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", edgecolor="white", lw=0.5)
        for level in (low, high):
            ax.axhline(level, color="0.45", lw=0.8, ls="--", zorder=3)
        ax.set_xlim(0.0, scale)
        ax.set_ylim(0.0, 1.1 * max(float(counts.max()), float(high)))
        ax.set_xlabel("rank" if common else "rank / (max rank + 1)", fontsize=8)
        _few_ticks(ax)
        _panel_title(ax, summary, quantity)
    return figure


def _ecdf_difference(
    summary: EnsembleSummary, shown: list[_Quantity], pits: dict[str, np.ndarray], note: str
) -> Figure:
    """ArviZ ECDF-difference plots of the randomized PITs with simultaneous 99% bands.

    The band depends only on the number of replicates, so it is computed once per sample size
    with ArviZ's own band routine (the one ``az.plot_ecdf`` calls) instead of once per panel.
    """
    from scipy.stats import uniform

    from runtime.arviz_quiet import arviz as az

    ecdf_confidence_band = az.stats.ecdf_utils.ecdf_confidence_band

    title = f"PIT ECDF minus uniform CDF, simultaneous 99% band{note}"
    if not shown:
        return _placeholder(title, "fewer than 2 succeeded replicates")
    figure, axes = _panel_grid(len(shown), title)
    standard_uniform = uniform(0, 1)
    eval_points = np.linspace(1 / ECDF_POINTS, 1.0, ECDF_POINTS)
    bands: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for ax, quantity in zip(axes, shown, strict=True):
        pit = pits[quantity.key]
        if pit.size not in bands:
            lower, upper = ecdf_confidence_band(
                pit.size,
                eval_points,
                eval_points,
                prob=0.99,
                # ArviZ's "auto" choice; the simulated band's draws are continuous, so no warning.
                method="optimized" if pit.size < 200 else "simulated",
                rvs=standard_uniform.rvs,
                num_trials=500,
                random_state=np.random.default_rng(0),
            )
            bands[pit.size] = (lower - eval_points, upper - eval_points)
        az.plot_ecdf(
            pit,
            cdf=standard_uniform.cdf,
            difference=True,
            eval_points=eval_points,
            ax=ax,
            show=False,
        )
        ax.fill_between(eval_points, *bands[pit.size], step="post", color="C0", alpha=0.2, lw=0)
        ax.axhline(0.0, color="0.55", lw=0.8)
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("PIT", fontsize=8)
        _few_ticks(ax)
        _panel_title(ax, summary, quantity)
    return figure


def _z_score_vs_contraction(
    summary: EnsembleSummary, shown: list[_Quantity], pits: dict[str, np.ndarray], note: str
) -> Figure:
    """Betancourt's eye chart: posterior z-score against posterior contraction, one dot per replicate."""
    title = f"Posterior z-score vs contraction{note}"
    if not shown:
        return _placeholder(title, "fewer than 2 succeeded replicates")
    figure, axes = _panel_grid(len(shown), title)
    for ax, quantity in zip(axes, shown, strict=True):
        z, c = quantity.z_scores(), quantity.contraction()
        finite = np.isfinite(z) & np.isfinite(c)
        for level in (-2.0, 2.0):
            ax.axhline(level, color="0.6", lw=0.8, ls="--")
        ax.axhline(0.0, color="0.8", lw=0.8)
        ax.scatter(c[finite], z[finite], s=9, alpha=0.6, color="C0", lw=0)
        limit = max(4.0, float(np.abs(z[finite]).max()) * 1.05) if finite.any() else 4.0
        ax.set_ylim(-limit, limit)
        ax.set_xlim(min(0.0, float(c[finite].min()) - 0.02) if finite.any() else 0.0, 1.0)
        ax.set_xlabel("contraction", fontsize=8)
        ax.set_ylabel("z-score", fontsize=8)
        _few_ticks(ax)
        if not finite.any():
            ax.text(0.5, 0.5, "undefined (zero prior variance)", ha="center", va="center", fontsize=8)
        _panel_title(ax, summary, quantity)
    return figure


def _diagnostics_figure(summary: EnsembleSummary, results: Sequence[ReplicateResult]) -> Figure:
    """Per-replicate sampler diagnostics with their thresholds; failed replicates marked in red."""
    from matplotlib.ticker import MaxNLocator

    title = (
        f"Sampler diagnostics per replicate ({summary.succeeded} succeeded, "
        f"{summary.failed} failed: red lines)"
    )
    ok = _succeeded(results)
    failed = np.array(sorted(r.replicate for r in results if r.status != "ok"), dtype=float)
    fits = [(r.replicate, r.diagnostics) for r in ok if r.diagnostics is not None]
    x = np.array([replicate for replicate, _ in fits], dtype=float)
    x_all = np.array([r.replicate for r in ok], dtype=float)
    panels: list[tuple[str, np.ndarray, np.ndarray, float | None, bool]] = [
        ("divergences", x, np.array([d.divergences for _, d in fits], dtype=float), None, True),
        ("max treedepth hits", x, np.array([d.max_treedepth_hits for _, d in fits], dtype=float), None, True),
        ("min E-BFMI", x, np.array([d.min_ebfmi for _, d in fits], dtype=float), EBFMI_THRESHOLD, False),
        ("max R-hat", x_all, np.array([_max_rhat(r) for r in ok], dtype=float), RHAT_THRESHOLD, False),
        ("min ESS", x_all, np.array([_min_ess(r) for r in ok], dtype=float), ESS_THRESHOLD, False),
    ]
    figure = _new_figure(10.0, 8.0)
    figure.suptitle(title)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.07, top=0.93, hspace=0.15)
    axes = figure.subplots(len(panels), 1, sharex=True)
    for ax, (label, xs, ys, threshold, stems) in zip(axes, panels, strict=True):
        if failed.size:
            ax.vlines(failed, 0, 1, transform=ax.get_xaxis_transform(), color="C3", alpha=0.5, lw=1.2)
        if stems:
            ax.vlines(xs, 0, ys, color="C0", lw=1)
            ax.set_ylim(0.0, 1.1 * max(1.0, float(np.nanmax(ys, initial=0.0))))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.plot(xs, ys, ".", color="C0", ms=3)
        if threshold is not None:
            ax.axhline(threshold, color="C3", ls="--", lw=0.8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("replicate")
    return figure
