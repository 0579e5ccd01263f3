"""Tests of the terminal verdict table: what it lists, its verdict line and its row cap."""

from __future__ import annotations

from runtime.report.table import MAX_TABLE_ROWS, verdict_table
from runtime.sbc.results import ReplicateResult
from runtime.sbc.verdict import PER_ELEMENT, VerdictOptions, summarize
from tests.runtime.helpers.sbc_results import ensemble, high_rank, many_quantities, table_of


def test_verdict_table_is_capped_with_many_quantities() -> None:
    summary = summarize(
        table_of(many_quantities(35, 40)),
        ensemble_id="ens-many",
        requested=40,
        reused=0,
        options=VerdictOptions(mode=PER_ELEMENT),
    )
    assert summary.family_size == 35
    table = verdict_table(summary)
    assert "5 more quantities" in table
    assert "theta[5] " in table and "theta[35] " in table  # the biased ones are listed first
    assert len(table.splitlines()) == 1 + MAX_TABLE_ROWS + 4


def test_verdict_table_mentions_every_quantity_and_the_verdict(
    uniform_results: list[ReplicateResult],
) -> None:
    calibrated = summarize(table_of(uniform_results), ensemble_id="ens-uniform", requested=100, reused=0)
    table = verdict_table(calibrated)
    for name in ("lambda", "beta", "log_lik (test)"):  # variables; beta has the one element beta[1]
        assert name in table
    assert "verdict: CALIBRATED" in table
    assert "100 succeeded, 0 failed, 0 reused" in table
    assert "divergences" in table

    biased = summarize(table_of(ensemble(100, high_rank)), ensemble_id="ens-biased", requested=100, reused=0)
    table = verdict_table(biased)
    assert "verdict: NOT CALIBRATED" in table
    assert "NO" in table


def test_the_per_variable_table_has_a_row_per_variable_naming_its_worst_elements() -> None:
    summary = summarize(table_of(many_quantities(35, 40)), ensemble_id="ens-many", requested=40, reused=0)
    lines = verdict_table(summary).splitlines()
    assert lines[0].split()[:3] == ["variable", "elements", "p-value"]
    row = lines[1].split()
    assert row[:2] == ["theta", "35"] and row[3] == "NO"
    assert "theta[5] p = " in lines[1] or "theta[35] p = " in lines[1]
    assert lines[-1].startswith("verdict: NOT CALIBRATED (1 of 1 variables, Holm-corrected per-variable")
