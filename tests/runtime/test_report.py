"""Tests of the ensemble report: summary, CSV, plots and the terminal verdict."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime import report
from runtime.report import CSV_COLUMNS, Failure, summarize, verdict_table, write_report
from runtime.results import FitDiagnostics, ReplicateResult, VariableScore

MAX_RANK = 99
PNGS = ("rank_histograms.png", "ecdf_difference.png", "z_score_vs_contraction.png", "diagnostics.png")


def _score(
    true: float, rank: int, *, mean: float = 0.0, sd: float = 1.0, rhat: float = 1.0, ess: float = 1000.0
) -> VariableScore:
    return VariableScore(
        true_value=true,
        rank=rank,
        max_rank=MAX_RANK,
        mean=mean,
        sd=sd,
        q5=mean - 1.645 * sd,
        median=mean,
        q95=mean + 1.645 * sd,
        rhat=rhat,
        ess_bulk=ess,
        ess_tail=ess,
    )


def _ok(
    replicate: int,
    variables: dict[str, VariableScore],
    test_quantities: dict[str, VariableScore] | None = None,
    diagnostics: FitDiagnostics | None = None,
) -> ReplicateResult:
    return ReplicateResult(
        replicate=replicate,
        seed=1000 + replicate,
        status="ok",
        engine="cmdstan",
        variables=variables,
        test_quantities=test_quantities or {},
        diagnostics=diagnostics
        or FitDiagnostics(divergences=0, max_treedepth_hits=0, min_ebfmi=1.0, num_draws=100),
    )


def _failed(replicate: int, error: str) -> ReplicateResult:
    return ReplicateResult(
        replicate=replicate, seed=1000 + replicate, status="failed", engine="cmdstan", error=error
    )


def _ensemble(
    replicates: int, rank: Callable[[np.random.Generator], int], seed: int = 0
) -> list[ReplicateResult]:
    """Replicates scoring ``lambda``, ``beta[1]`` and test quantity ``log_lik`` with ranks from ``rank``."""
    rng = np.random.default_rng(seed)
    results = []
    for r in range(replicates):
        true = rng.normal(size=3)
        sd = 0.4
        mean = true + sd * rng.normal(size=3)
        scores = [_score(float(t), rank(rng), mean=float(m), sd=sd) for t, m in zip(true, mean, strict=True)]
        results.append(_ok(r, {"lambda": scores[0], "beta[1]": scores[1]}, {"log_lik": scores[2]}))
    return results


def _uniform_rank(rng: np.random.Generator) -> int:
    return int(rng.integers(0, MAX_RANK + 1))


def _high_rank(rng: np.random.Generator) -> int:
    return int(rng.integers(MAX_RANK - 5, MAX_RANK + 1))


@pytest.fixture(scope="module")
def uniform_results() -> list[ReplicateResult]:
    return _ensemble(100, _uniform_rank)


def test_uniform_ranks_are_calibrated(uniform_results: list[ReplicateResult]) -> None:
    summary = summarize(uniform_results, ensemble_id="ens-uniform", requested=100, reused=0)
    assert summary.calibrated is True
    assert set(summary.variables) == {"lambda", "beta[1]"}
    assert set(summary.test_quantities) == {"log_lik"}
    for _, _, q in summary.quantities():
        assert q.calibrated is True
        assert q.p_value is not None and 0.01 < q.p_value <= 1
        assert q.max_rank == MAX_RANK
        assert q.replicates == 100
        assert q.mean_rank is not None and 40 < q.mean_rank < 60
    data = summary.to_dict()
    assert data["uniformity_test"]["correction"] == "holm"
    assert data["uniformity_test"]["family_level"] == 0.01
    assert data["uniformity_test"]["quantities_checked"] == 3
    assert "gamma" in data["uniformity_test"]["method"]
    assert data["replicates"] == {"requested": 100, "succeeded": 100, "failed": 0, "reused": 0}


def test_summary_is_reproducible_and_order_independent(uniform_results: list[ReplicateResult]) -> None:
    first = summarize(uniform_results, ensemble_id="ens-uniform", requested=100, reused=0)
    again = summarize(uniform_results[::-1], ensemble_id="ens-uniform", requested=100, reused=0)
    assert first.to_dict() == again.to_dict()


def test_biased_ranks_are_not_calibrated() -> None:
    results = _ensemble(100, _high_rank)
    summary = summarize(results, ensemble_id="ens-biased", requested=100, reused=0)
    assert summary.calibrated is False
    assert summary.to_dict()["calibrated"] is False
    for _, _, q in summary.quantities():
        assert q.calibrated is False
        assert q.p_value is not None and q.p_value < 0.001
        assert q.mean_rank is not None and q.mean_rank > MAX_RANK - 6


def test_one_biased_quantity_makes_the_ensemble_uncalibrated(uniform_results: list[ReplicateResult]) -> None:
    rng = np.random.default_rng(5)
    results = [
        _ok(
            r.replicate,
            {**r.variables, "sigma": _score(float(rng.normal()), _high_rank(rng))},
            r.test_quantities,
        )
        for r in uniform_results
    ]
    summary = summarize(results, ensemble_id="ens-mixed", requested=100, reused=0)
    assert summary.calibrated is False
    assert summary.variables["sigma"].calibrated is False
    assert summary.variables["lambda"].calibrated is True
    assert summary.quantities_checked == 4


def test_failed_replicate_is_counted_and_listed(uniform_results: list[ReplicateResult]) -> None:
    results = [r for r in uniform_results if r.replicate != 7]
    results.append(_failed(7, "RuntimeError: chain 2 crashed\nTraceback (most recent call last):\n  ..."))
    summary = summarize(results, ensemble_id="ens-failed", requested=100, reused=3)
    assert summary.succeeded == 99
    assert summary.failed == 1
    assert summary.failures == [Failure(replicate=7, error="RuntimeError: chain 2 crashed")]
    data = summary.to_dict()
    assert data["failures"] == [{"replicate": 7, "error": "RuntimeError: chain 2 crashed"}]
    assert data["replicates"] == {"requested": 100, "succeeded": 99, "failed": 1, "reused": 3}
    assert summary.variables["lambda"].replicates == 99


def test_reused_count_passes_through(uniform_results: list[ReplicateResult]) -> None:
    summary = summarize(uniform_results, ensemble_id="ens-uniform", requested=120, reused=40)
    assert summary.reused == 40
    assert summary.to_dict()["replicates"]["reused"] == 40
    assert summary.to_dict()["replicates"]["requested"] == 120
    assert "40 reused" in verdict_table(summary)


def test_contraction_uses_the_ensemble_prior_variance() -> None:
    # true values -2 and +2: prior variance (ddof=1) is 8; posterior sds 1 and 2 give 1 - 1/8 and 1 - 4/8.
    results = [
        _ok(0, {"mu": _score(-2.0, 10, mean=-2.0, sd=1.0)}),
        _ok(1, {"mu": _score(2.0, 80, mean=2.0, sd=2.0)}),
    ]
    summary = summarize(results, ensemble_id="ens-contraction", requested=2, reused=0)
    mu = summary.variables["mu"]
    assert mu.prior_variance == pytest.approx(8.0)
    assert mu.mean_contraction == pytest.approx((0.875 + 0.5) / 2)
    assert mu.mean_z_score == pytest.approx(0.0)
    assert mu.mean_rank == pytest.approx(45.0)


def test_z_score_is_posterior_error_in_posterior_sds() -> None:
    results = [
        _ok(0, {"mu": _score(0.0, 10, mean=1.0, sd=0.5)}),
        _ok(1, {"mu": _score(1.0, 80, mean=2.0, sd=0.5)}),
    ]
    summary = summarize(results, ensemble_id="ens-z", requested=2, reused=0)
    assert summary.variables["mu"].mean_z_score == pytest.approx(2.0)


def test_zero_prior_variance_gives_null_contraction() -> None:
    results = [_ok(r, {"fixed": _score(1.0, r * 20, mean=1.0, sd=0.1)}) for r in range(5)]
    summary = summarize(results, ensemble_id="ens-fixed", requested=5, reused=0)
    data = summary.to_dict()
    assert data["variables"]["fixed"]["mean_contraction"] is None
    json.dumps(data, allow_nan=False)


@pytest.mark.parametrize("n_ok", [0, 1])
def test_fewer_than_two_succeeded_gives_nulls(tmp_path: Path, n_ok: int) -> None:
    results = [_ok(r, {"lambda": _score(0.5, 3)}, {"log_lik": _score(-10.0, 50)}) for r in range(n_ok)]
    results.append(_failed(5, "ValueError: bad init"))
    summary = summarize(results, ensemble_id="ens-tiny", requested=4, reused=0)
    assert summary.calibrated is None
    assert summary.succeeded == n_ok and summary.failed == 1
    data = summary.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["calibrated"] is None
    assert data["uniformity_test"]["quantities_checked"] == 0
    for group in ("variables", "test_quantities"):
        for stats in data[group].values():
            assert stats["calibrated"] is None
            assert stats["p_value"] is None
            assert stats["mean_z_score"] is None
            assert stats["mean_contraction"] is None
    assert "UNDETERMINED" in verdict_table(summary)
    paths = write_report(summary, results, tmp_path)
    assert len(paths) == 6
    assert all(p.stat().st_size > 0 for p in paths)


def test_diagnostics_are_counted() -> None:
    def fit(divergences: int = 0, treedepth: int = 0, ebfmi: float = 1.0) -> FitDiagnostics:
        return FitDiagnostics(
            divergences=divergences, max_treedepth_hits=treedepth, min_ebfmi=ebfmi, num_draws=1000
        )

    results = [
        _ok(0, {"a": _score(0.0, 1)}, diagnostics=fit(divergences=3)),
        _ok(1, {"a": _score(1.0, 2, rhat=1.05)}, diagnostics=fit(treedepth=10, ebfmi=0.1)),
        _ok(2, {"a": _score(2.0, 3, ess=50.0)}, diagnostics=fit(divergences=1, ebfmi=math.nan)),
        _ok(3, {"a": _score(3.0, 4, rhat=math.nan)}),
    ]
    diagnostics = summarize(results, ensemble_id="ens-diag", requested=4, reused=0).to_dict()["diagnostics"]
    assert diagnostics["replicates_with_divergences"] == 2
    assert diagnostics["replicates_with_max_treedepth"] == 1
    assert diagnostics["replicates_with_low_ebfmi"] == 1
    assert diagnostics["replicates_with_high_rhat"] == 1
    assert diagnostics["replicates_with_low_ess"] == 1
    assert diagnostics["ebfmi_threshold"] == 0.3
    assert diagnostics["rhat_threshold"] == 1.01
    assert diagnostics["ess_threshold"] > 0


def test_write_report_writes_every_file(tmp_path: Path, uniform_results: list[ReplicateResult]) -> None:
    results = [r for r in uniform_results if r.replicate != 7]
    results.append(_failed(7, "RuntimeError: chain 2 crashed\nmore detail"))
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


def _many_quantities(count: int, replicates: int) -> list[ReplicateResult]:
    """``theta[1..count]``; every fifth one has ranks piled up at the top."""
    rng = np.random.default_rng(3)
    return [
        _ok(
            r,
            {
                f"theta[{i}]": _score(
                    float(rng.normal()), _high_rank(rng) if i % 5 == 0 else _uniform_rank(rng)
                )
                for i in range(1, count + 1)
            },
        )
        for r in range(replicates)
    ]


def test_plots_cap_the_panels_at_the_lowest_p_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _many_quantities(10, 60)
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
    shown, _ = report._select_panels(summary, report._collect(results))
    assert {"theta[5]", "theta[10]"} <= {q.name for q in shown}


def test_verdict_table_is_capped_with_many_quantities() -> None:
    summary = summarize(_many_quantities(35, 40), ensemble_id="ens-many", requested=40, reused=0)
    assert summary.quantities_checked == 35
    table = verdict_table(summary)
    assert "5 more quantities" in table
    assert "theta[5] " in table and "theta[35] " in table  # the biased ones are listed first
    assert len(table.splitlines()) == 1 + report.MAX_TABLE_ROWS + 4


def test_verdict_table_mentions_every_quantity_and_the_verdict(
    uniform_results: list[ReplicateResult],
) -> None:
    calibrated = summarize(uniform_results, ensemble_id="ens-uniform", requested=100, reused=0)
    table = verdict_table(calibrated)
    for name in ("lambda", "beta[1]", "log_lik"):
        assert name in table
    assert "verdict: CALIBRATED" in table
    assert "100 succeeded, 0 failed, 0 reused" in table
    assert "divergences" in table

    biased = summarize(_ensemble(100, _high_rank), ensemble_id="ens-biased", requested=100, reused=0)
    table = verdict_table(biased)
    assert "verdict: NOT CALIBRATED" in table
    assert "NO" in table


def test_run_description_and_fit_time_are_carried_into_the_summary(
    uniform_results: list[ReplicateResult],
) -> None:
    run = {"engine": "pystan", "settings": {"chains": 4}}
    summary = summarize(uniform_results, ensemble_id="ens-uniform", requested=100, reused=3, run=run)
    as_dict = summary.to_dict()
    assert as_dict["run"] == run
    assert as_dict["fit_seconds_total"] == pytest.approx(sum(r.total_seconds for r in uniform_results))
    assert as_dict["replicates"]["reused"] == 3
