"""Tests of the report files: summary.json, replicates.csv and the plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime import report, stats
from runtime.report import CSV_COLUMNS, rank_histogram_bins, write_report
from runtime.results import ReplicateResult
from runtime.summary import VerdictOptions, collect_quantities, summarize
from tests.runtime.sbc_results import ensemble, failed_result, many_quantities, tiny_ensemble, uniform_rank

PNGS = ("rank_histograms.png", "ecdf_difference.png", "z_score_vs_contraction.png", "diagnostics.png")


@pytest.fixture(scope="module")
def uniform_results() -> list[ReplicateResult]:
    return ensemble(100, uniform_rank)


@pytest.mark.parametrize("n_ok", [0, 1])
def test_fewer_than_two_succeeded_still_writes_every_file(tmp_path: Path, n_ok: int) -> None:
    results = tiny_ensemble(n_ok)
    summary = summarize(results, ensemble_id="ens-tiny", requested=4, reused=0)
    paths = write_report(summary, results, tmp_path)
    assert len(paths) == 6
    assert all(p.stat().st_size > 0 for p in paths)


def test_write_report_writes_every_file(tmp_path: Path, uniform_results: list[ReplicateResult]) -> None:
    results = [r for r in uniform_results if r.replicate != 7]
    results.append(failed_result(7, "RuntimeError: chain 2 crashed\nmore detail"))
    summary = summarize(results, ensemble_id="ens-report", requested=100, reused=0)
    out_dir = tmp_path / "report"
    paths = write_report(summary, results, out_dir)
    names = ["summary.json", "replicates.csv", *PNGS]
    assert paths == [out_dir / name for name in names]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)  # no temporary files left behind

    written = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert written == summary.to_dict()
    assert written["variables"]["lambda"]["calibrated"] is True

    with (out_dir / "replicates.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 99 * 3 + 1
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["replicate"] == "7" and failed[0]["error"].startswith("RuntimeError: chain 2 crashed")
    assert failed[0]["quantity"] == ""
    kinds = {row["quantity"]: row["kind"] for row in rows if row["status"] == "ok"}
    assert kinds == {"lambda": "parameter", "beta[1]": "parameter", "log_lik": "test_quantity"}
    first = next(row for row in rows if row["replicate"] == "0" and row["quantity"] == "lambda")
    score = uniform_results[0].variables["lambda"]
    assert float(first["z_score"]) == pytest.approx((score.mean - score.true_value) / score.sd)
    assert float(first["contraction"]) == pytest.approx(
        1 - score.sd**2 / written["variables"]["lambda"]["prior_variance"]
    )

    for name in PNGS:
        content = (out_dir / name).read_bytes()
        assert content.startswith(b"\x89PNG") and len(content) > 1000


def test_plots_cap_the_panels_at_the_lowest_p_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = many_quantities(10, 60)
    summary = summarize(results, ensemble_id="ens-many", requested=60, reused=0)
    assert summary.calibrated is False
    grids: list[tuple[int, str]] = []
    panel_grid = report._panel_grid

    def spy(n: int, title: str) -> Any:
        grids.append((n, title))
        return panel_grid(n, title)

    monkeypatch.setattr(report, "MAX_PANELS", 4)
    monkeypatch.setattr(report, "_panel_grid", spy)
    paths = write_report(summary, results, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)
    assert len(grids) == 3
    for n, title in grids:
        assert n == 4
        assert "4 of 10 quantities" in title and "lowest p-values" in title
    # The two biased quantities have the lowest p-values, so they are among the panels.
    shown, _ = report._select_panels(summary, collect_quantities(results))
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
    summary = summarize(results, ensemble_id="ens-many", requested=60, reused=0, options=VerdictOptions(0.05))
    quantities = collect_quantities(results)
    pits = {q.key: q.pit(summary.ensemble_id) for q in quantities}
    bands: list[tuple[int, float]] = []

    def spy(n: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bands.append((n, level))
        return stats.gamma_band(n, level)

    monkeypatch.setattr(report, "gamma_band", spy)
    figure = report._ecdf_difference(summary, quantities, pits, "")
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
