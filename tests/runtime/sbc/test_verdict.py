"""Tests of the calibration verdict: summarize, EnsembleSummary, the Holm step-down, z-scores and
contraction (a few check how the terminal verdict table, report/test_table.py, words a summary)."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import StanFleetError
from runtime.report.table import verdict_table
from runtime.sbc.combination import variable_name
from runtime.sbc.results import FitDiagnostics, ReplicateResult
from runtime.sbc.verdict import (
    PER_ELEMENT,
    PER_VARIABLE,
    EnsembleSummary,
    Failure,
    VerdictOptions,
    contraction,
    holm_calibrated,
    summarize,
    z_scores,
)
from tests.runtime.helpers.sbc_results import (
    MAX_RANK,
    ensemble,
    failed_result,
    high_rank,
    leaning_vector,
    many_quantities,
    ok_result,
    score,
    table_of,
    tiny_ensemble,
    uniform_rank,
)

ROOT = Path(__file__).resolve().parents[3]


def test_uniform_ranks_are_calibrated(uniform_results: list[ReplicateResult]) -> None:
    summary = summarize(table_of(uniform_results), ensemble_id="ens-uniform", requested=100, reused=0)
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
    assert data["uniformity_test"]["family_size"] == 3
    assert "gamma" in data["uniformity_test"]["method"]
    assert data["replicates"] == {
        "requested": 100,
        "succeeded": 100,
        "failed": 0,
        "missing": 0,
        "machinery_errors": 0,
        "reused": 0,
        "judged": 100,
    }
    assert data["uniformity_test"]["ecdf_band_level"] == pytest.approx(0.01 / 3)
    assert data["uniformity_test"]["exclude_divergent"] is False


def test_summary_is_reproducible_and_order_independent(uniform_results: list[ReplicateResult]) -> None:
    first = summarize(table_of(uniform_results), ensemble_id="ens-uniform", requested=100, reused=0)
    again = summarize(table_of(uniform_results[::-1]), ensemble_id="ens-uniform", requested=100, reused=0)
    assert first.to_dict() == again.to_dict()


def test_biased_ranks_are_not_calibrated() -> None:
    results = ensemble(100, high_rank)
    summary = summarize(table_of(results), ensemble_id="ens-biased", requested=100, reused=0)
    assert summary.calibrated is False
    assert summary.to_dict()["calibrated"] is False
    for _, _, q in summary.quantities():
        assert q.calibrated is False
        assert q.p_value is not None and q.p_value < 0.001
        assert q.mean_rank is not None and q.mean_rank > MAX_RANK - 6


def test_one_biased_quantity_makes_the_ensemble_uncalibrated(uniform_results: list[ReplicateResult]) -> None:
    rng = np.random.default_rng(5)
    results = [
        ok_result(
            r.replicate,
            {**r.variables, "sigma": score(float(rng.normal()), high_rank(rng))},
            r.test_quantities,
        )
        for r in uniform_results
    ]
    summary = summarize(table_of(results), ensemble_id="ens-mixed", requested=100, reused=0)
    assert summary.calibrated is False
    assert summary.variables["sigma"].calibrated is False
    assert summary.variables["lambda"].calibrated is True
    assert summary.family_size == 4


def test_failed_replicate_is_counted_and_listed(uniform_results: list[ReplicateResult]) -> None:
    results = [r for r in uniform_results if r.replicate != 7]
    results.append(
        failed_result(7, "RuntimeError: chain 2 crashed\nTraceback (most recent call last):\n  ...")
    )
    summary = summarize(table_of(results), ensemble_id="ens-failed", requested=100, reused=3)
    assert summary.succeeded == 99
    assert summary.failed == 1
    assert summary.failures == [Failure(replicate=7, error="RuntimeError: chain 2 crashed")]
    data = summary.to_dict()
    assert data["failures"] == [{"replicate": 7, "error": "RuntimeError: chain 2 crashed"}]
    assert data["replicates"] == {
        "requested": 100,
        "succeeded": 99,
        "failed": 1,
        "missing": 0,
        "machinery_errors": 0,
        "reused": 3,
        "judged": 99,
    }
    assert summary.variables["lambda"].replicates == 99


def test_reused_count_passes_through(uniform_results: list[ReplicateResult]) -> None:
    summary = summarize(table_of(uniform_results), ensemble_id="ens-uniform", requested=120, reused=40)
    assert summary.reused == 40
    assert summary.to_dict()["replicates"]["reused"] == 40
    assert summary.to_dict()["replicates"]["requested"] == 120
    assert "40 reused" in verdict_table(summary)


def test_contraction_uses_the_ensemble_prior_variance() -> None:
    # true values -2 and +2: prior variance (ddof=1) is 8; posterior sds 1 and 2 give 1 - 1/8 and 1 - 4/8.
    results = [
        ok_result(0, {"mu": score(-2.0, 10, mean=-2.0, sd=1.0)}),
        ok_result(1, {"mu": score(2.0, 80, mean=2.0, sd=2.0)}),
    ]
    summary = summarize(table_of(results), ensemble_id="ens-contraction", requested=2, reused=0)
    mu = summary.variables["mu"]
    assert mu.prior_variance == pytest.approx(8.0)
    assert mu.mean_contraction == pytest.approx((0.875 + 0.5) / 2)
    assert mu.mean_z_score == pytest.approx(0.0)
    assert mu.mean_rank == pytest.approx(45.0)


def test_z_score_is_posterior_error_in_posterior_sds() -> None:
    results = [
        ok_result(0, {"mu": score(0.0, 10, mean=1.0, sd=0.5)}),
        ok_result(1, {"mu": score(1.0, 80, mean=2.0, sd=0.5)}),
    ]
    summary = summarize(table_of(results), ensemble_id="ens-z", requested=2, reused=0)
    assert summary.variables["mu"].mean_z_score == pytest.approx(2.0)


def test_zero_prior_variance_gives_null_contraction() -> None:
    results = [ok_result(r, {"fixed": score(1.0, r * 20, mean=1.0, sd=0.1)}) for r in range(5)]
    summary = summarize(table_of(results), ensemble_id="ens-fixed", requested=5, reused=0)
    data = summary.to_dict()
    assert data["variables"]["fixed"]["mean_contraction"] is None
    json.dumps(data, allow_nan=False)


@pytest.mark.parametrize("n_ok", [0, 1])
def test_fewer_than_two_succeeded_gives_nulls(n_ok: int) -> None:
    results = tiny_ensemble(n_ok)
    summary = summarize(table_of(results), ensemble_id="ens-tiny", requested=4, reused=0)
    assert summary.calibrated is None
    assert summary.succeeded == n_ok and summary.failed == 1
    data = summary.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["calibrated"] is None
    assert data["uniformity_test"]["family_size"] == 0
    for group in ("variables", "test_quantities"):
        for stats in data[group].values():
            assert stats["calibrated"] is None
            assert stats["p_value"] is None
            assert stats["mean_z_score"] is None
            assert stats["mean_contraction"] is None
    assert "UNDETERMINED" in verdict_table(summary)


def test_diagnostics_are_counted() -> None:
    def fit(divergences: int = 0, treedepth: int = 0, ebfmi: float = 1.0) -> FitDiagnostics:
        return FitDiagnostics(
            divergences=divergences, max_treedepth_hits=treedepth, min_ebfmi=ebfmi, num_draws=1000
        )

    results = [
        ok_result(0, {"a": score(0.0, 1)}, diagnostics=fit(divergences=3)),
        ok_result(1, {"a": score(1.0, 2, rhat=1.05)}, diagnostics=fit(treedepth=10, ebfmi=0.1)),
        ok_result(2, {"a": score(2.0, 3, ess=50.0)}, diagnostics=fit(divergences=1, ebfmi=math.nan)),
        ok_result(3, {"a": score(3.0, 4, rhat=math.nan)}),
    ]
    diagnostics = summarize(table_of(results), ensemble_id="ens-diag", requested=4, reused=0).to_dict()[
        "diagnostics"
    ]
    assert diagnostics["replicates_with_divergences"] == 2
    assert diagnostics["replicates_with_max_treedepth"] == 1
    assert diagnostics["replicates_with_low_ebfmi"] == 1
    assert diagnostics["replicates_with_high_rhat"] == 1
    assert diagnostics["replicates_with_low_ess"] == 1
    assert diagnostics["ebfmi_threshold"] == 0.3
    assert diagnostics["rhat_threshold"] == 1.01
    assert diagnostics["ess_threshold"] > 0


def test_run_description_and_fit_time_are_carried_into_the_summary(
    uniform_results: list[ReplicateResult],
) -> None:
    run = {"engine": "pystan", "settings": {"chains": 4}}
    timed = [dataclasses.replace(r, total_seconds=0.5 + r.replicate) for r in uniform_results]
    summary = summarize(table_of(timed), ensemble_id="ens-uniform", requested=100, reused=3, run=run)
    as_dict = summary.to_dict()
    assert as_dict["run"] == run
    assert as_dict["fit_seconds_total"] == pytest.approx(100 * 0.5 + sum(range(100)))
    assert as_dict["replicates"]["reused"] == 3


def test_importing_summary_loads_no_plotting_library() -> None:
    code = "import sys, runtime.sbc.verdict; print(sorted({'matplotlib', 'arviz'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_level_sets_the_family_the_band_and_the_table() -> None:
    results = many_quantities(10, 60)

    def judged(level: float) -> EnsembleSummary:
        options = VerdictOptions(level, mode=PER_ELEMENT)
        return summarize(table_of(results), ensemble_id="ens-many", requested=60, reused=0, options=options)

    loose = judged(0.2)
    strict = judged(min(q.p_value for _, _, q in loose.quantities()) / 2)
    flagged = [sum(q.calibrated is False for _, _, q in s.quantities()) for s in (loose, strict)]
    assert flagged[0] >= 2 and flagged[1] == 0  # the p-values are the same; only the level moved
    assert loose.band_level == pytest.approx(0.2 / 10)
    test = loose.to_dict()["uniformity_test"]
    assert (test["family_level"], test["ecdf_band_level"]) == (0.2, pytest.approx(0.02))
    assert "family-wise level 0.2)" in verdict_table(loose)
    assert f"family-wise level {strict.family_level:g})" in verdict_table(strict)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, math.nan])
def test_a_level_outside_the_unit_interval_is_refused(level: float) -> None:
    with pytest.raises(StanFleetError, match=r"^--level must lie strictly between 0 and 1, got "):
        VerdictOptions(level=level)


def test_exclude_divergent_judges_only_the_fits_without_divergences() -> None:
    uniform, biased = ensemble(90, uniform_rank, seed=1), ensemble(90, high_rank, seed=2)
    diverged = FitDiagnostics(divergences=4, max_treedepth_hits=0, min_ebfmi=1.0, num_draws=100)
    results = [
        dataclasses.replace(biased[r], diagnostics=diverged) if r % 3 == 0 else uniform[r] for r in range(90)
    ]
    results.append(failed_result(90, "RuntimeError: boom"))
    every = summarize(table_of(results), ensemble_id="ens-div", requested=91, reused=0)
    assert every.calibrated is False and every.excluded_divergent is None and every.judged == 90
    assert "--exclude-divergent" not in verdict_table(every)
    judged = summarize(
        table_of(results),
        ensemble_id="ens-div",
        requested=91,
        reused=0,
        options=VerdictOptions(exclude_divergent=True),
    )
    assert judged.calibrated is True
    assert (judged.succeeded, judged.failed, judged.excluded_divergent, judged.judged) == (90, 1, 30, 60)
    assert {q.replicates for _, _, q in judged.quantities()} == {60}
    assert judged.diagnostics.replicates_with_divergences == 30  # diagnostics still cover every fit
    data = judged.to_dict()
    assert data["replicates"]["judged"] == 60
    assert (data["uniformity_test"]["exclude_divergent"], data["uniformity_test"]["excluded_divergent"]) == (
        True,
        30,
    )
    assert (
        "--exclude-divergent: 30 replicates with divergent transitions left out; the verdict rests on 60"
        in verdict_table(judged)
    )


# --- multiplicity ------------------------------------------------------------------------------


def test_holm_steps_down_until_the_first_acceptance() -> None:
    p = {"a": 0.001, "b": 0.01, "c": 0.03, "d": 0.04}
    # Thresholds 0.05/4, 0.05/3, 0.05/2, 0.05/1: a, b rejected; c fails 0.025 and stops, so d
    # stays accepted although 0.04 < 0.05.
    assert holm_calibrated(p, 0.05) == {"a": False, "b": False, "c": True, "d": True}


def test_holm_rejects_everything_below_its_thresholds() -> None:
    p = {"x": 0.04, "y": 0.001, "z": 0.02}
    assert holm_calibrated(p, 0.05) == {"x": False, "y": False, "z": False}
    assert holm_calibrated(p, 0.01) == {"x": True, "y": False, "z": True}


def test_holm_is_stricter_than_unadjusted_testing() -> None:
    p = {f"v{i}": 0.02 for i in range(12)}
    assert all(holm_calibrated(p, 0.05).values())
    assert holm_calibrated({"only": 0.02}, 0.05) == {"only": False}


def test_holm_edge_cases() -> None:
    assert holm_calibrated({}, 0.05) == {}
    assert holm_calibrated({"a": math.nan, "b": 0.001}, 0.05) == {"a": True, "b": False}
    with pytest.raises(ValueError, match="family_level"):
        holm_calibrated({"a": 0.5}, 1.0)


# --- summaries ---------------------------------------------------------------------------------


def test_z_scores() -> None:
    z = z_scores([1.0, 0.0, 2.0], [0.5, 2.0, 0.0], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(z[:2], [2.0, -0.5])
    assert math.isinf(z[2])


def test_contraction() -> None:
    np.testing.assert_allclose(contraction([0.5, 1.0, 2.0], 4.0), [1 - 0.25 / 4, 0.75, 0.0])
    for bad in (0.0, -1.0, math.inf, math.nan):
        assert np.all(np.isnan(contraction([0.5, 1.0], bad)))


def test_per_variable_flags_the_variable_and_names_its_worst_elements() -> None:
    results = many_quantities(10, 60)  # theta[5] and theta[10] pile up at the top
    summary = summarize(table_of(results), ensemble_id="ens-many", requested=60, reused=0)
    assert summary.mode == PER_VARIABLE and summary.calibrated is False
    assert summary.flagged == ["theta"] and summary.family_size == 1
    (test,) = summary.variable_tests
    assert (test.name, test.elements, test.replicates, test.calibrated) == ("theta", 10, 60, False)
    assert {name for name, _ in test.lowest[:2]} == {"theta[5]", "theta[10]"}
    assert test.p_value == pytest.approx(min(1.0, 2 * min(test.cauchy_p_value, test.pooled_p_value)))
    # An element of a larger variable is judged with it: its own p-value stays, its verdict is the variable's.
    assert all(q.calibrated is None and q.p_value is not None for _, _, q in summary.quantities())
    saved = json.loads(json.dumps(summary.to_dict()))
    assert saved["uniformity_test"]["verdict"] == "per-variable"
    assert saved["uniformity_test"]["family"] == "variables"
    assert saved["variable_tests"][0]["lowest_elements"][0]["name"] in {"theta[5]", "theta[10]"}
    assert "theta" in verdict_table(summary) and "NOT CALIBRATED (1 of 1 variables" in verdict_table(summary)


def test_a_small_lean_of_every_element_is_flagged_per_variable_and_missed_per_element() -> None:
    table = table_of(leaning_vector(100, 100, shift=0.1))
    per_variable, per_element = (
        summarize(table, ensemble_id="ens-lean", requested=100, reused=0, options=VerdictOptions(mode=mode))
        for mode in (PER_VARIABLE, PER_ELEMENT)
    )
    assert per_element.calibrated is True and per_element.family_size == 100
    assert per_variable.calibrated is False and per_variable.flagged == ["z"]
    assert per_variable.variable_tests[0].pooled_p_value < 0.001


def test_per_variable_raises_no_alarm_on_uniform_ranks_of_many_elements() -> None:
    table = table_of(leaning_vector(100, 100, shift=0.0))
    summary = summarize(table, ensemble_id="ens-flat", requested=100, reused=0)
    assert summary.calibrated is True
    assert summary.variable_tests[0].p_value > 0.01


def test_a_scalar_is_its_own_variable(uniform_results: list[ReplicateResult]) -> None:
    summary = summarize(table_of(uniform_results), ensemble_id="ens-uniform", requested=100, reused=0)
    tests = {test.key: test for test in summary.variable_tests}
    assert set(tests) == {"parameter:lambda", "parameter:beta", "test_quantity:log_lik"}
    for kind, name, q in summary.quantities():
        test = tests[f"{kind}:{variable_name(name)}"]
        assert (test.elements, test.p_value, test.calibrated) == (1, q.p_value, q.calibrated)
        assert test.cauchy_p_value is None and test.pooled_p_value is None


def test_an_unknown_verdict_mode_is_refused() -> None:
    with pytest.raises(
        StanFleetError, match=r"^--verdict must be one of per-variable, per-element, got 'both'"
    ):
        VerdictOptions(mode="both")
