"""Tests of the score table: results column by column, filled from stored JSON one result at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

import runtime.sbc.score_table as score_table
from runtime.sbc.results import FitDiagnostics, ReplicateResult
from runtime.sbc.score_table import PARAMETER, SCORE_FIELDS, TEST_QUANTITY, ScoreTable, ScoreTableBuilder
from tests.runtime.helpers.sbc_results import failed_result, ok_result, score


def mixed_results() -> list[ReplicateResult]:
    """Out of order; replicate 4 failed; replicate 2 lacks ``tau``; replicate 6 adds ``z[2]``."""
    divergent = FitDiagnostics(divergences=3, max_treedepth_hits=1, min_ebfmi=0.2, num_draws=100)
    return [
        ok_result(
            6, {"mu": score(0.6, 6), "tau": score(1.6, 16), "z[2]": score(2.6, 26)}, {"ll": score(-6, 36)}
        ),
        ok_result(0, {"mu": score(0.0, 0, rhat=1.2), "tau": score(1.0, 10, ess=50.0)}, {"ll": score(-1, 30)}),
        failed_result(4, "Stan: init failed\ntraceback"),
        ok_result(2, {"mu": score(0.2, 2)}, {"ll": score(-2, 32)}, diagnostics=divergent),
    ]


def test_rows_are_sorted_by_replicate_and_columns_put_parameters_first_in_first_seen_order() -> None:
    table = ScoreTable.from_results(mixed_results())
    assert list(table.replicate) == [0, 2, 4, 6]
    assert table.names == ("mu", "tau", "z[2]", "ll")
    assert table.kinds == (PARAMETER, PARAMETER, PARAMETER, TEST_QUANTITY)
    assert table.present.tolist() == [
        [True, True, False, True],
        [True, False, False, True],
        [False, False, False, False],
        [True, True, True, True],
    ]
    assert list(table.ok) == [True, True, False, True]
    assert (len(table), table.succeeded, list(table.failed_replicates)) == (4, 3, [4])
    assert table.errors == {4: "Stan: init failed\ntraceback"}


def test_every_score_lands_in_its_cell_and_absent_cells_hold_no_value() -> None:
    results = mixed_results()
    table = ScoreTable.from_results(results)
    for result in results:
        row = int(np.flatnonzero(table.replicate == result.replicate)[0])
        for scores in (result.variables, result.test_quantities):
            for name, expected in scores.items():
                column = table.names.index(name)
                for field in SCORE_FIELDS:
                    assert table.scores[field][row, column] == getattr(expected, field), (name, field)
    assert table.scores["rank"][1, 1] == -1 and math.isnan(table.scores["mean"][1, 1])
    assert table.scores["rank"].dtype == np.int32


def test_per_replicate_diagnostics_and_the_judged_rows() -> None:
    table = ScoreTable.from_results(mixed_results())
    assert list(table.has_diagnostics) == [True, True, False, True]
    assert list(table.divergences) == [0, 3, 0, 0]
    assert list(table.judged(exclude_divergent=False)) == [True, True, False, True]
    assert list(table.judged(exclude_divergent=True)) == [True, False, False, True]
    np.testing.assert_equal(table.max_rhat(), [1.2, 1.0, math.nan, 1.0])
    np.testing.assert_equal(table.min_ess(), [50.0, 1000.0, math.nan, 1000.0])


def test_non_finite_scores_are_skipped_by_the_per_replicate_extremes() -> None:
    results = [ok_result(0, {"a": score(0.0, 1, rhat=math.nan), "b": score(0.0, 1, rhat=1.05)})]
    assert ScoreTable.from_results(results).max_rhat().tolist() == [1.05]


def test_the_builder_grows_past_its_expected_size_and_flushes_in_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(score_table, "_FLUSH_SCORES", 3)
    results = mixed_results()
    builder = ScoreTableBuilder(expected=1)
    for result in results:
        builder.add(result.to_json())
    grown = builder.build()
    whole = ScoreTable.from_results(results)
    assert grown.names == whole.names
    for field in SCORE_FIELDS:
        np.testing.assert_array_equal(grown.scores[field], whole.scores[field])
    np.testing.assert_array_equal(grown.present, whole.present)


def test_an_empty_table() -> None:
    table = ScoreTableBuilder().build()
    assert (len(table), table.succeeded, table.present.shape) == (0, 0, (0, 0))
