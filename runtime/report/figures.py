"""The report's figures, drawn with matplotlib (Agg, outside pyplot) and ArviZ.

:func:`draw_figures` draws every figure of :data:`FIGURE_NAMES` for an ensemble; each quantity panel
plot shows the same quantities (all, or the :data:`MAX_PANELS` with the lowest p-values). The
comparison figure (:mod:`runtime.report.comparison`) draws its panels with the helpers here.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.errors import StanFleetError
from runtime.sbc.score_table import ScoreTable
from runtime.sbc.uniformity import gamma_band, gamma_points, interval_coverage
from runtime.sbc.verdict import (
    EBFMI_THRESHOLD,
    ESS_THRESHOLD,
    PARAMETER,
    RHAT_THRESHOLD,
    EnsembleSummary,
    QuantityScores,
    QuantitySummary,
    p_value_sort_key,
    quantity_scores,
    variable_columns,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_PANELS = 24
"""At most this many quantities (those with the lowest p-values) get a panel in each plot."""
FIGURE_NAMES = (
    "rank_histograms",
    "ecdf_difference",
    "coverage",
    "recovery",
    "z_score_vs_contraction",
    "diagnostics",
)
"""Every figure of the report, in the order the report shows them; ``<name>.png`` is its file."""
COVERAGE_WIDTHS = np.linspace(0.0, 1.0, 101)
"""Nominal widths of the central posterior intervals in the coverage plot."""
COVERAGE_UNCERTAINTY = 0.95
"""Probability of the coverage plot's uncertainty band (as the R package SBC's ``plot_coverage``)."""


class PanelGrids:
    """Where the panel figures are drawn: a new figure each time, or (``reuse``) one figure per panel count.

    Building two dozen axes and their ticks costs more than drawing in them, and most panel figures of a
    report show the same quantities: with ``reuse`` the axes of the previous figure with as many panels
    are emptied and drawn again, so a figure stays as drawn only until the next one of its size is.
    """

    def __init__(self, *, reuse: bool) -> None:
        self._reuse = reuse
        self._kept: dict[int, tuple[Figure, list[Axes]]] = {}

    def grid(self, n: int, title: str) -> tuple[Figure, list[Axes]]:
        """A figure with ``n`` empty panels under ``title`` (see :func:`panel_grid`)."""
        if n in self._kept:
            figure, axes = self._kept[n]
            for ax in axes:
                _empty_panel(ax)
        else:
            figure, axes = _new_grid(n)
            if self._reuse:
                self._kept[n] = (figure, axes)
        _lay_out(figure, n, title)
        return figure, axes


PanelPlot = Callable[
    [EnsembleSummary, list[QuantityScores], dict[str, np.ndarray], str, PanelGrids], "Figure"
]


def draw_figures(
    summary: EnsembleSummary, table: ScoreTable, names: Sequence[str] = FIGURE_NAMES
) -> dict[str, Figure]:
    """The figures ``names`` (by default all of :data:`FIGURE_NAMES`) of the ensemble ``summary`` judged.

    The quantity plots use the replicates the verdict rests on (see ``--exclude-divergent``);
    the diagnostics figure shows every replicate.
    """
    return dict(_figures(summary, table, names, PanelGrids(reuse=False)))


def figure_pngs(summary: EnsembleSummary, table: ScoreTable, names: Sequence[str]) -> dict[str, bytes]:
    """The figures of :func:`draw_figures` as PNG bytes, drawn one after another on one reused grid."""
    return {
        name: png_bytes(figure) for name, figure in _figures(summary, table, names, PanelGrids(reuse=True))
    }


def _figures(
    summary: EnsembleSummary, table: ScoreTable, names: Sequence[str], grids: PanelGrids
) -> Iterator[tuple[str, Figure]]:
    unknown = [name for name in names if name not in FIGURE_NAMES]
    if unknown:
        raise StanFleetError(f"no figure {unknown[0]!r}; the figures are {', '.join(FIGURE_NAMES)}")
    shown, note = _select_panels(summary, table)
    pits = {q.key: q.pit(summary.ensemble_id) for q in shown}
    panel_plots: dict[str, PanelPlot] = {
        "rank_histograms": _rank_histograms,
        "ecdf_difference": _ecdf_difference,
        "coverage": _coverage,
        "recovery": _recovery,
        "z_score_vs_contraction": _z_score_vs_contraction,
    }
    for name in names:
        if name == "diagnostics":
            yield name, _diagnostics_figure(summary, table)
        elif name == "ecdf_difference" and summary.per_variable:
            yield name, _variable_ecdf_difference(summary, table, grids)
        else:
            yield name, panel_plots[name](summary, shown, pits, note, grids)


def warm_up() -> None:
    """Draw and render one small panel figure: the report's first figures then find fonts and ArviZ loaded.

    So do the processes forked later to draw them. Half a second the first time in a process; the
    submitter does it while the fits run.
    """
    pit = np.linspace(0.05, 0.95, 10)
    figure, (ax,) = panel_grid(1, "warm-up")
    plot_ecdf_difference(ax, pit)
    ecdf_axes(ax, gamma_band(pit.size, 0.01))
    ax.set_title("warm-up\np = 1, calibrated", fontsize=9, y=1.0, pad=4)
    png_bytes(figure)


def png_bytes(figure: Figure) -> bytes:
    """The figure as a PNG (90 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _select_panels(summary: EnsembleSummary, table: ScoreTable) -> tuple[list[QuantityScores], str]:
    """The quantities to plot and a title note.

    They are those with at least two judged replicates: all of them, or the MAX_PANELS with the lowest
    p-values. Only those are read out of the table.
    """
    judged = table.judged(summary.excluded_divergent is not None)
    drawable = [int(column) for column in np.flatnonzero(table.present[judged].sum(axis=0) >= 2)]
    note = ""
    if len(drawable) > MAX_PANELS:
        note = f" ({MAX_PANELS} of {len(drawable)} quantities: those with the lowest p-values)"

        def p_value(column: int) -> float:
            return p_value_sort_key(summary_of(summary, table.kinds[column], table.names[column]))

        drawable = sorted(drawable, key=p_value)[:MAX_PANELS]
    return [quantity_scores(table, judged, column) for column in drawable], note


def summary_of(summary: EnsembleSummary, kind: str, name: str) -> QuantitySummary:
    """The quantity's row of the summary (an empty one where the summary has none)."""
    rows = summary.variables if kind == PARAMETER else summary.test_quantities
    return rows.get(name, QuantitySummary(0, None, None, None, None, None, None, None))


def quantity_summary(summary: EnsembleSummary, quantity: QuantityScores) -> QuantitySummary:
    """The quantity's row of the summary (an empty one where the summary has none)."""
    return summary_of(summary, quantity.kind, quantity.name)


def quantity_label(quantity: QuantityScores) -> str:
    """A panel's name for the quantity: test quantities say so."""
    return quantity.name if quantity.kind == PARAMETER else f"{quantity.name} (test quantity)"


def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas, outside pyplot (no global state, no window, freed with the object)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def panel_grid(n: int, title: str) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels, at most four per row, under ``title`` (wrapped to the figure's width)."""
    figure, axes = _new_grid(n)
    _lay_out(figure, n, title)
    return figure, axes


def _new_grid(n: int) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels, at most four per row (sized and titled by :func:`_lay_out`)."""
    ncols = min(max(n, 1), 4)
    figure = _new_figure(3.3 * ncols, 2.6 * math.ceil(max(n, 1) / ncols))
    axes = list(figure.subplots(math.ceil(max(n, 1) / ncols), ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return figure, axes[:n]


MIN_FIGURE_WIDTH = 6.6
"""Inches: a figure of one panel is as wide as one of two, so its title does not wrap into a column."""


def _lay_out(figure: Figure, n: int, title: str) -> None:
    """Size the figure of ``n`` panels for ``title`` (wrapped to its width), place the panels, set the title."""
    ncols = min(max(n, 1), 4)
    nrows = math.ceil(max(n, 1) / ncols)
    width = max(3.3 * ncols, MIN_FIGURE_WIDTH)
    title = textwrap.fill(title, width=int(width * 10))
    title_height = 0.25 * (title.count("\n") + 1)
    height = 2.6 * nrows + 0.25 + title_height
    figure.set_size_inches(width, height)
    # Fixed margins in inches: constrained layout would cost seconds with two dozen panels.
    figure.subplots_adjust(
        left=0.55 / width,
        right=1 - 0.15 / width,
        bottom=0.45 / height,
        top=1 - (0.55 + title_height) / height,
        wspace=0.3,
        hspace=0.85,
    )
    figure.suptitle(title, y=1 - 0.1 / height, va="top")


def _empty_panel(ax: Axes) -> None:
    """Take out of ``ax`` everything a panel drew, and restore what drawing it changed."""
    for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images]:
        artist.remove()
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    ax.relim()
    ax.set_autoscale_on(True)
    ax.set_prop_cycle(None)
    ax.set_title("")
    ax.set_xlabel("")
    ax.set_ylabel("")


def placeholder_figure(title: str, message: str) -> Figure:
    """A small figure saying why there is nothing to draw."""
    figure = _new_figure(6.0, 2.5)
    figure.suptitle(title)
    ax = figure.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return figure


def _panel_title(ax: Axes, summary: EnsembleSummary, quantity: QuantityScores) -> None:
    q = quantity_summary(summary, quantity)
    _verdict_title(ax, quantity_label(quantity), q.p_value, q.calibrated)


def _verdict_title(ax: Axes, label: str, p_value: float | None, calibrated: bool | None) -> None:
    """``label``, then the p-value and the verdict, in red when not calibrated."""
    p_text = "p = -" if p_value is None else f"p = {p_value:.3g}"
    verdict = {None: "", True: ", calibrated", False: ", NOT calibrated"}[calibrated]
    # An explicit y skips matplotlib's costly automatic title placement.
    ax.set_title(
        f"{label}\n{p_text}{verdict}",
        fontsize=9,
        color="C3" if calibrated is False else "black",
        y=1.0,
        pad=4,
    )


def _few_ticks(ax: Axes) -> None:
    """Four ticks per axis, small labels: tick creation dominates the rendering of many panels."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=7)


MIN_BINS, MAX_BINS = 5, 40
"""Rank-histogram bins: at least 5 (as the R package SBC), at most 40, about ten expected counts each."""


def rank_histogram_bins(n: int, max_rank: int | None) -> int:
    """Bins for ``n`` ranks in ``0..max_rank``: about ``n / 10`` within MIN_BINS..MAX_BINS.

    Never more bins than the ``max_rank + 1`` distinct ranks, and where possible a divisor of that number,
    so that every bin holds as many ranks.

    ``max_rank`` None (replicates kept different numbers of draws) bins the PITs on [0, 1] instead.
    """
    target = min(max(n // 10, MIN_BINS), MAX_BINS)
    if max_rank is None:
        return target
    ranks = max_rank + 1
    divisors = [d for d in range(MIN_BINS, min(ranks, MAX_BINS) + 1) if ranks % d == 0]
    if not divisors:  # fewer than MIN_BINS ranks, or no divisor in range: bins as even as can be
        return min(target, ranks)
    return min(divisors, key=lambda d: (abs(d - target), d))


def _panel_figure(
    summary: EnsembleSummary,
    shown: list[QuantityScores],
    pits: dict[str, np.ndarray],
    title: str,
    draw_panel: Callable[[Axes, QuantityScores, np.ndarray], None],
    grids: PanelGrids,
) -> Figure:
    """One panel per shown quantity, each drawn by ``draw_panel(ax, quantity, pit)``.

    Each panel is titled with the quantity's p-value and verdict; the figure is a placeholder when no
    quantity has two succeeded replicates.
    """
    if not shown:
        return placeholder_figure(title, "fewer than 2 succeeded replicates")
    figure, axes = grids.grid(len(shown), title)
    for ax, quantity in zip(axes, shown, strict=True):
        draw_panel(ax, quantity, pits[quantity.key])
        _few_ticks(ax)
        _panel_title(ax, summary, quantity)
    return figure


def _rank_histograms(
    summary: EnsembleSummary,
    shown: list[QuantityScores],
    pits: dict[str, np.ndarray],
    note: str,
    grids: PanelGrids,
) -> Figure:
    """Rank histograms (from the randomized PITs) with the pointwise binomial 99% band shaded."""
    title = f"Rank histograms, pointwise 99% binomial band shaded{note}"
    return _panel_figure(summary, shown, pits, title, _rank_histogram_panel, grids)


def _rank_histogram_panel(ax: Axes, quantity: QuantityScores, pit: np.ndarray) -> None:
    from scipy.stats import binom

    common = bool(np.all(quantity.max_rank == quantity.max_rank[0]))
    scale = float(quantity.max_rank[0] + 1) if common else 1.0
    bins = rank_histogram_bins(pit.size, int(quantity.max_rank[0]) if common else None)
    edges = np.linspace(0.0, scale, bins + 1)
    counts, _ = np.histogram(pit * scale, edges)
    low, high = binom.ppf([0.005, 0.995], pit.size, 1.0 / bins)
    ax.axhspan(low, high, color="0.85", zorder=0, lw=0)
    ax.axhline(pit.size / bins, color="0.55", lw=0.8, zorder=1)
    # One filled outline and one set of separators: forty bars are forty artists to draw, in each panel.
    ax.stairs(counts, edges, fill=True, color="C0", zorder=2)
    ax.vlines(edges[1:-1], 0, np.minimum(counts[:-1], counts[1:]), color="white", lw=0.5, zorder=2)
    for level in (low, high):
        ax.axhline(level, color="0.45", lw=0.8, ls="--", zorder=3)
    ax.set_xlim(0.0, scale)
    ax.set_ylim(0.0, 1.1 * max(float(counts.max()), float(high)))
    ax.set_xlabel("rank" if common else "rank / (max rank + 1)", fontsize=8)


def _ecdf_difference(
    summary: EnsembleSummary,
    shown: list[QuantityScores],
    pits: dict[str, np.ndarray],
    note: str,
    grids: PanelGrids,
) -> Figure:
    """ArviZ ECDF-difference plots of the randomized PITs, each with the band of the gamma test.

    The per-element verdict's figure. The band is at level ``family_level / m`` for the ``m`` scalar
    quantities (:attr:`EnsembleSummary.element_band_level`): a curve outside it is flagged.
    """
    title = (
        f"PIT ECDF minus uniform CDF; band: the uniformity test at level {summary.family_level:g}/"
        f"{max(summary.quantities_checked, 1)} (a curve outside it is flagged){note}"
    )

    def panel(ax: Axes, quantity: QuantityScores, pit: np.ndarray) -> None:
        plot_ecdf_difference(ax, pit)
        ecdf_axes(ax, gamma_band(pit.size, summary.element_band_level))

    return _panel_figure(summary, shown, pits, title, panel, grids)


def _variable_ecdf_difference(summary: EnsembleSummary, table: ScoreTable, grids: PanelGrids) -> Figure:
    """One ECDF-difference panel per variable, as the R package SBC's ``combine_variables`` overlays them.

    A variable of one element is drawn as in the per-element figure, with the band of its gamma test at
    :attr:`EnsembleSummary.band_level`. A variable of several elements shows every element's curve (thin)
    and their pooled ECDF (thick) with the pooled test's band at half that level: the Bonferroni half the
    pooled test gets in the variable's test. A pooled curve outside its band means the variable is flagged;
    the Cauchy combination of the elements can flag it too (one element far out), band or not.
    """
    judged = table.judged(summary.excluded_divergent is not None)
    tests = sorted((t for t in summary.variable_tests if t.replicates >= 2), key=p_value_sort_key)
    note = ""
    if len(tests) > MAX_PANELS:
        note = f" ({MAX_PANELS} of {len(tests)} variables: those with the lowest p-values)"
        tests = tests[:MAX_PANELS]
    title = (
        f"PIT ECDF minus uniform CDF per variable (thin: each element; thick: their pooled ECDF); band: the "
        f"variable's test at level {summary.family_level:g}/{max(summary.family_size, 1)}, the pooled ECDF's "
        f"at half that level; a curve outside it is flagged{note}"
    )
    if not tests:
        return placeholder_figure(title, "fewer than 2 succeeded replicates")
    columns = variable_columns(table, judged)
    figure, axes = grids.grid(len(tests), title)
    for ax, test in zip(axes, tests, strict=True):
        # One element's PITs at a time: a variable of 1000 elements over 10^4 replicates is 80 MB of them.
        elements = (quantity_scores(table, judged, column) for column in columns[(test.kind, test.name)])
        pits = (q.pit(summary.ensemble_id) for q in elements if q.replicates.size >= 2)
        if test.pooled is None:  # one element (a variable of several with two replicates has its pooled test)
            pit = next(pits)
            plot_ecdf_difference(ax, pit)
            ecdf_axes(ax, gamma_band(pit.size, summary.band_level))
        else:
            _element_curves(ax, pits)
            pooled = test.pooled
            lower, upper = pooled.band(summary.band_level / 2)
            ax.plot(pooled.z, pooled.ecdf - pooled.z, drawstyle="steps-pre", color="black", lw=1.4)
            ecdf_axes(ax, (pooled.z, lower, upper))
            # The band's edges drawn over the elements' curves, which would hide its shading.
            for edge in (lower, upper):
                ax.plot(pooled.z, edge - pooled.z, drawstyle="steps-pre", color="black", lw=0.8, ls="--")
        size = f" ({test.elements} elements)" if test.elements > 1 else ""
        _verdict_title(ax, f"{test.label}{size}", test.p_value, test.calibrated)
    return figure


def _element_curves(ax: Axes, pits: Iterator[np.ndarray]) -> None:
    """Each element's ECDF difference at its gamma test's points, as one collection of thin steps."""
    from matplotlib.collections import LineCollection

    segments = []
    for pit in pits:
        z = gamma_points(pit.size)
        difference = np.searchsorted(np.sort(pit), z, side="right") / pit.size - z
        # steps-pre: the value at z_i is drawn over the step that ends at z_i.
        xs = np.repeat(np.concatenate([[0.0], z]), 2)[1:-1]
        ys = np.repeat(difference, 2)
        segments.append(np.column_stack([xs, ys]))
    alpha = min(0.6, max(0.08, 4.0 / len(segments)))
    ax.add_collection(LineCollection(segments, colors="C0", linewidths=0.7, alpha=alpha))
    ax.autoscale_view()


def plot_ecdf_difference(ax: Axes, pit: np.ndarray, **plot_kwargs: Any) -> None:
    """ArviZ's ECDF-difference curve of ``pit``, at the gamma test's evaluation points."""
    from scipy.stats import uniform

    from runtime.arviz_quiet import arviz as az

    az.plot_ecdf(
        pit,
        cdf=uniform(0, 1).cdf,
        difference=True,
        eval_points=gamma_points(pit.size),
        ax=ax,
        show=False,
        plot_kwargs=plot_kwargs,
    )


def ecdf_axes(ax: Axes, band: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Shade the simultaneous band ``(z, lower, upper)`` of an ECDF-difference panel and label its axes."""
    z, lower, upper = band
    # "pre" as ArviZ's curve: the value at z_i is drawn over the step ending at z_i
    ax.fill_between(z, lower - z, upper - z, step="pre", color="0.6", alpha=0.25, lw=0)
    ax.axhline(0.0, color="0.55", lw=0.8)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("PIT", fontsize=8)
    _few_ticks(ax)


def _coverage(
    summary: EnsembleSummary,
    shown: list[QuantityScores],
    pits: dict[str, np.ndarray],
    note: str,
    grids: PanelGrids,
) -> Figure:
    """Empirical coverage of central posterior intervals against their nominal width (from the ranks).

    It has a Clopper-Pearson uncertainty band, as the R package SBC's ``plot_coverage`` does.
    """
    title = f"Coverage of central posterior intervals, {COVERAGE_UNCERTAINTY:.0%} uncertainty band{note}"
    return _panel_figure(summary, shown, pits, title, _coverage_panel, grids)


def _coverage_panel(ax: Axes, quantity: QuantityScores, pit: np.ndarray) -> None:
    coverage, low, high = interval_coverage(pit, COVERAGE_WIDTHS, COVERAGE_UNCERTAINTY)
    ax.fill_between(COVERAGE_WIDTHS, low, high, color="C0", alpha=0.2, lw=0)
    ax.plot([0.0, 1.0], [0.0, 1.0], color="0.55", lw=0.8)
    ax.plot(COVERAGE_WIDTHS, coverage, color="C0", lw=1.2)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("nominal width", fontsize=8)
    ax.set_ylabel("coverage", fontsize=8)


RECOVERY_MAX_REPLICATES = 10_000
"""The recovery plot draws at most this many replicates per panel (evenly spaced): beyond them the
intervals merge into one band, and drawing a million of them takes half a minute."""


def _recovery(
    summary: EnsembleSummary,
    shown: list[QuantityScores],
    pits: dict[str, np.ndarray],
    note: str,
    grids: PanelGrids,
) -> Figure:
    """True value against the posterior median with the 5-95% posterior interval, one dot per replicate.

    This is the R package SBC's ``plot_sim_estimated``. Above RECOVERY_MAX_REPLICATES replicates, that many
    evenly spaced ones are drawn, and the title says so.
    """
    largest = max((q.replicates.size for q in shown), default=0)
    drawn = ""
    if largest > RECOVERY_MAX_REPLICATES:
        drawn = f"; {RECOVERY_MAX_REPLICATES:,} of {largest:,} replicates drawn, evenly spaced"
    title = f"True value vs posterior median, 5-95% posterior intervals{drawn}{note}"
    return _panel_figure(summary, shown, pits, title, _recovery_panel, grids)


def _recovery_panel(ax: Axes, quantity: QuantityScores, pit: np.ndarray) -> None:
    rows = np.arange(quantity.replicates.size)
    if rows.size > RECOVERY_MAX_REPLICATES:
        rows = np.linspace(0, rows.size - 1, RECOVERY_MAX_REPLICATES).astype(int)
    true, median, q5, q95 = (
        values[rows] for values in (quantity.true, quantity.median, quantity.q5, quantity.q95)
    )
    finite = np.isfinite(true) & np.isfinite(median)
    true, median, q5, q95 = true[finite], median[finite], q5[finite], q95[finite]
    ax.vlines(true, q5, q95, color="C0", alpha=0.35, lw=1)
    ax.plot(true, median, ".", color="C0", ms=4)
    if finite.any():
        values = np.concatenate([true, q5, q95])
        values = values[np.isfinite(values)]
        low, high = float(values.min()), float(values.max())
        ax.plot([low, high], [low, high], color="0.55", lw=0.8)
    ax.set_xlabel("true value", fontsize=8)
    ax.set_ylabel("posterior median", fontsize=8)


def _z_score_vs_contraction(
    summary: EnsembleSummary,
    shown: list[QuantityScores],
    pits: dict[str, np.ndarray],
    note: str,
    grids: PanelGrids,
) -> Figure:
    """Betancourt's eye chart: posterior z-score against posterior contraction, one dot per replicate."""
    return _panel_figure(
        summary, shown, pits, f"Posterior z-score vs contraction{note}", _z_score_panel, grids
    )


def _z_score_panel(ax: Axes, quantity: QuantityScores, pit: np.ndarray) -> None:
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
    if not finite.any():
        ax.text(0.5, 0.5, "undefined (zero prior variance)", ha="center", va="center", fontsize=8)


def _diagnostics_figure(summary: EnsembleSummary, table: ScoreTable) -> Figure:
    """Per-replicate sampler diagnostics with their thresholds; failed replicates marked in red."""
    from matplotlib.ticker import MaxNLocator

    title = (
        f"Sampler diagnostics per replicate ({summary.succeeded} succeeded, "
        f"{summary.failed} failed: red lines)"
    )
    ok = table.ok
    failed = table.failed_replicates.astype(float)
    fits = ok & table.has_diagnostics
    x, x_all = table.replicate[fits].astype(float), table.replicate[ok].astype(float)
    panels: list[tuple[str, np.ndarray, np.ndarray, float | None, bool]] = [
        ("divergences", x, table.divergences[fits].astype(float), None, True),
        ("max treedepth hits", x, table.max_treedepth_hits[fits].astype(float), None, True),
        ("min E-BFMI", x, table.min_ebfmi[fits], EBFMI_THRESHOLD, False),
        ("max R-hat", x_all, table.max_rhat()[ok], RHAT_THRESHOLD, False),
        ("min ESS", x_all, table.min_ess()[ok], ESS_THRESHOLD, False),
    ]
    figure = _new_figure(10.0, 8.0)
    figure.suptitle(title)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.07, top=0.93, hspace=0.15)
    axes = figure.subplots(len(panels), 1, sharex=True)
    for ax, (label, xs, ys, threshold, stems) in zip(axes, panels, strict=True):
        if failed.size:
            ax.vlines(failed, 0, 1, transform=ax.get_xaxis_transform(), color="C3", alpha=0.5, lw=1.2)
        if stems:
            nonzero = ys > 0  # a stem of height 0 draws nothing
            ax.vlines(xs[nonzero], 0, ys[nonzero], color="C0", lw=1)
            ax.set_ylim(0.0, 1.1 * max(1.0, float(np.nanmax(ys, initial=0.0))))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.plot(xs, ys, ".", color="C0", ms=3)
        if threshold is not None:
            ax.axhline(threshold, color="C3", ls="--", lw=0.8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("replicate")
    return figure
