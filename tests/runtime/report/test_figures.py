"""Tests of the report's figures: panel selection, rank-histogram bins, ECDF bands, coverage, recovery."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runtime.errors import StanFleetError
from runtime.report import figures as plots
from runtime.report.figures import FIGURE_NAMES, draw_figures, png_bytes, rank_histogram_bins
from runtime.sbc import uniformity as stats
from runtime.sbc.verdict import PER_ELEMENT, VerdictOptions, summarize
from tests.runtime.helpers.sbc_results import all_quantities, leaning_vector, many_quantities, table_of


def test_plots_cap_the_panels_at_the_lowest_p_values(monkeypatch: pytest.MonkeyPatch) -> None:
    results = many_quantities(10, 60)
    options = VerdictOptions(mode=PER_ELEMENT)
    summary = summarize(table_of(results), ensemble_id="ens-many", requested=60, reused=0, options=options)
    assert summary.calibrated is False
    grids: list[tuple[int, str]] = []
    grid = plots.PanelGrids.grid

    def spy(self: plots.PanelGrids, n: int, title: str) -> Any:
        grids.append((n, title))
        return grid(self, n, title)

    monkeypatch.setattr(plots, "MAX_PANELS", 4)
    monkeypatch.setattr(plots.PanelGrids, "grid", spy)
    assert list(draw_figures(summary, table_of(results))) == list(FIGURE_NAMES)
    assert len(grids) == 5  # every quantity plot; the diagnostics figure has no quantity panels
    for n, title in grids:
        assert n == 4
        assert "4 of 10 quantities" in title and "lowest p-values" in title
    # The two biased quantities have the lowest p-values, so they are among the panels.
    shown, _ = plots._select_panels(summary, table_of(results))
    assert {"theta[5]", "theta[10]"} <= {q.name for q in shown}


@pytest.mark.parametrize(
    ("n", "max_rank", "bins"),
    [
        (10, 99, 5),  # R = 10: five bins, not one
        (10, 3, 4),  # never more bins than distinct ranks
        (200, 99, 20),
        (200, 199, 20),
        (5000, 99, 25),  # at most 40 bins: 25 divides the 100 ranks, 40 does not
        (70, 99, 5),
        (120, 6, 7),  # 7 ranks: a prime above 5 gives 7 bins of one rank
        (10, None, 5),
        (1000, None, 40),
    ],
)
def test_rank_histogram_bins(n: int, max_rank: int | None, bins: int) -> None:
    assert rank_histogram_bins(n, max_rank) == bins
    if max_rank is not None:
        assert (max_rank + 1) % bins == 0


def test_each_ecdf_band_is_the_test_at_level_over_m_so_outside_means_flagged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = many_quantities(10, 60)
    summary = summarize(
        table_of(results),
        ensemble_id="ens-many",
        requested=60,
        reused=0,
        options=VerdictOptions(0.05, mode=PER_ELEMENT),
    )
    quantities = all_quantities(results)
    pits = {q.key: q.pit(summary.ensemble_id) for q in quantities}
    bands: list[tuple[int, float]] = []

    def spy(n: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bands.append((n, level))
        return stats.gamma_band(n, level)

    monkeypatch.setattr(plots, "gamma_band", spy)
    figure = plots._ecdf_difference(summary, quantities, pits, "", plots.PanelGrids(reuse=False))
    assert "level 0.05/10 (a curve outside it is flagged)" in figure.get_suptitle()
    assert bands == [(60, pytest.approx(0.005))] * 10
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    outside_seen = 0
    for quantity, title in zip(quantities, titles, strict=True):
        q = summary.variables[quantity.name]
        assert title.startswith(quantity.name) and f"p = {q.p_value:.3g}" in title
        assert title.endswith(", NOT calibrated" if q.calibrated is False else ", calibrated")
        z, lower, upper = stats.gamma_band(60, summary.band_level)
        ecdf = np.searchsorted(np.sort(pits[quantity.key]), z, side="right") / 60
        if np.any((ecdf < lower) | (ecdf > upper)):
            outside_seen += 1
            assert q.calibrated is False
    assert outside_seen >= 2  # the two biased quantities leave their bands


def test_every_figure_is_drawn_and_an_unknown_one_is_named() -> None:
    results = many_quantities(3, 40)
    summary = summarize(table_of(results), ensemble_id="ens-few", requested=40, reused=0)
    figures = draw_figures(summary, table_of(results))
    assert list(figures) == list(FIGURE_NAMES)
    for name, figure in figures.items():
        panels = [ax for ax in figure.axes if ax.get_visible()]
        # The per-variable ECDF figure has one panel for theta[1..3]; the others one per element.
        assert len(panels) == {"diagnostics": 5, "ecdf_difference": 1}.get(name, 3), name
        assert png_bytes(figure).startswith(b"\x89PNG")
    assert list(draw_figures(summary, table_of(results), ["coverage"])) == ["coverage"]
    with pytest.raises(StanFleetError, match=r"no figure 'funnel'; the figures are rank_histograms, "):
        draw_figures(summary, table_of(results), ["funnel"])


def test_coverage_panels_follow_the_diagonal_for_uniform_ranks_and_not_for_piled_up_ones() -> None:
    results = many_quantities(5, 200)  # theta[5]'s ranks pile up at the top
    summary = summarize(table_of(results), ensemble_id="ens-cov", requested=200, reused=0)
    figure = draw_figures(summary, table_of(results), ["coverage"])["coverage"]
    by_title = {ax.get_title().split("\n")[0]: ax for ax in figure.axes if ax.get_visible()}
    for name, ax in by_title.items():
        widths, coverage = ax.lines[-1].get_data()
        np.testing.assert_array_equal(widths, plots.COVERAGE_WIDTHS)
        gap = float(np.max(np.abs(np.asarray(coverage) - widths)))
        # uniform ranks stay near the diagonal; ranks at the top are outside every central interval
        assert (gap > 0.5) if name == "theta[5]" else (gap < 0.15), (name, gap)


def test_recovery_panels_plot_true_values_against_posterior_medians() -> None:
    results = many_quantities(2, 30)
    summary = summarize(table_of(results), ensemble_id="ens-rec", requested=30, reused=0)
    figure = draw_figures(summary, table_of(results), ["recovery"])["recovery"]
    ax = next(ax for ax in figure.axes if ax.get_title().startswith("theta[1]"))
    true, median = ax.lines[0].get_data()
    expected = all_quantities(results)[0]
    np.testing.assert_array_equal(true, expected.true)
    np.testing.assert_array_equal(median, expected.median)
    intervals = ax.collections[0].get_segments()
    assert len(intervals) == 30
    assert intervals[0][0][1] == expected.q5[0] and intervals[0][1][1] == expected.q95[0]


def test_recovery_panels_draw_evenly_spaced_replicates_above_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "RECOVERY_MAX_REPLICATES", 7)
    results = many_quantities(2, 30)
    summary = summarize(table_of(results), ensemble_id="ens-rec", requested=30, reused=0)
    figure = draw_figures(summary, table_of(results), ["recovery"])["recovery"]
    assert "7 of 30 replicates drawn, evenly spaced" in " ".join(figure.texts[0].get_text().split())
    ax = next(ax for ax in figure.axes if ax.get_title().startswith("theta[1]"))
    true, _ = ax.lines[0].get_data()
    expected = all_quantities(results)[0]
    np.testing.assert_array_equal(true, expected.true[[0, 4, 9, 14, 19, 24, 29]])
    assert len(ax.collections[0].get_segments()) == 7


@pytest.mark.parametrize("order", [FIGURE_NAMES, FIGURE_NAMES[::-1]])
def test_figures_redrawn_on_one_reused_grid_equal_freshly_drawn_ones(order: tuple[str, ...]) -> None:
    results = many_quantities(30, 40)
    table = table_of(results)
    summary = summarize(table, ensemble_id="ens-reuse", requested=40, reused=0)
    fresh = {name: png_bytes(figure) for name, figure in draw_figures(summary, table, order).items()}
    reused = plots.figure_pngs(summary, table, order)
    assert list(reused) == list(order)
    assert reused == fresh  # byte for byte: emptying a panel leaves nothing of the previous figure


@pytest.mark.parametrize(("shift", "flagged"), [(0.0, False), (0.1, True)])
def test_the_per_variable_panel_overlays_the_elements_and_bands_their_pooled_ecdf(
    shift: float, flagged: bool
) -> None:
    from matplotlib.collections import LineCollection

    table = table_of(leaning_vector(40, 100, shift=shift))
    summary = summarize(table, ensemble_id="ens-lean", requested=100, reused=0)
    (test,) = summary.variable_tests
    assert (test.calibrated is False) == flagged
    figure = draw_figures(summary, table, ["ecdf_difference"])["ecdf_difference"]
    (ax,) = [ax for ax in figure.axes if ax.get_visible()]
    assert ax.get_title().startswith("z (40 elements)\np = ")
    assert ax.get_title().endswith(", NOT calibrated" if flagged else ", calibrated")
    title = " ".join(figure.get_suptitle().split())
    assert "per variable" in title and "pooled ECDF's at half that level" in title
    (elements,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(elements.get_segments()) == 40
    # The thick pooled curve and its band at half the band level: outside exactly when the pooled test rejects.
    pooled = test.pooled
    curve = next(line for line in ax.lines if line.get_linewidth() == pytest.approx(1.4))
    np.testing.assert_allclose(curve.get_ydata(), pooled.ecdf - pooled.z)
    lower, upper = pooled.band(summary.band_level / 2)
    outside = bool(np.any((pooled.ecdf < lower) | (pooled.ecdf > upper)))
    assert outside == (pooled.p_value <= summary.band_level / 2) == flagged
