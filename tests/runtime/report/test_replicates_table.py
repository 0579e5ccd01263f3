"""Tests of the replicate table: replicates.parquet, replicates.csv while small, the API's DataFrame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas
import pytest

import runtime.report.replicates_table as replicates_table
from runtime.report.replicates_table import (
    CSV,
    PARQUET,
    SCHEMA,
    replicates_frame,
    row_count,
    write_replicate_files,
)
from runtime.sbc.results import ReplicateResult
from tests.runtime.helpers.sbc_results import failed_result, ok_result, score, table_of


def results_with_gaps() -> list[ReplicateResult]:
    """Replicate 1 failed, replicate 3 scored one quantity fewer, replicate 2 has a constant-chain R-hat."""
    results = [
        ok_result(0, {"mu": score(0.5, 10, mean=0.4, sd=0.2), "tau": score(1.0, 20, sd=0.5)}),
        failed_result(1, 'ValueError: "bad", worse\nsecond line'),
        ok_result(2, {"mu": score(-0.5, 30, rhat=math.nan, sd=0.0), "tau": score(2.0, 40)}),
        ok_result(3, {"mu": score(0.1, 50)}, {"log_lik": score(-3.0, 60)}),
    ]
    return results[::-1]  # the table sorts by replicate


def test_the_frame_has_one_row_per_score_and_one_per_failed_replicate_in_replicate_order() -> None:
    frame = replicates_frame(table_of(results_with_gaps()))
    assert list(frame.columns) == SCHEMA.names
    assert list(zip(frame["replicate"], frame["quantity"].astype(object), strict=True)) == [
        (0, "mu"),
        (0, "tau"),
        (1, np.nan),
        (2, "mu"),
        (2, "tau"),
        (3, "mu"),
        (3, "log_lik"),
    ]
    assert list(frame["kind"].astype(object).fillna("-")) == [
        "parameter", "parameter", "-", "parameter", "parameter", "parameter", "test_quantity"
    ]  # fmt: skip
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert failed["error"] == 'ValueError: "bad", worse\nsecond line'
    assert math.isnan(failed["rank"]) and math.isnan(failed["divergences"])
    first = frame.iloc[0]
    assert (first["rank"], first["max_rank"], first["seed"]) == (10, 99, 1000)
    assert first["z_score"] == pytest.approx((0.4 - 0.5) / 0.2)


def test_non_finite_numbers_are_null_and_contraction_uses_the_succeeded_replicates_prior_variance() -> None:
    frame = replicates_frame(table_of(results_with_gaps()))
    constant = frame[(frame["replicate"] == 2) & (frame["quantity"] == "mu")].iloc[0]
    assert math.isnan(constant["rhat"])  # NaN R-hat stored as null
    assert math.isnan(constant["z_score"])  # sd 0: an infinite z-score is null, not inf
    mu_truth = np.array([0.5, -0.5, 0.1])
    expected = 1 - 0.2**2 / np.var(mu_truth, ddof=1)
    assert frame.iloc[0]["contraction"] == pytest.approx(expected)
    log_lik = frame[frame["quantity"] == "log_lik"].iloc[0]
    assert math.isnan(log_lik["contraction"])  # one true value: no prior variance


def test_both_files_hold_the_same_table(tmp_path: Path) -> None:
    table = table_of(results_with_gaps())
    assert write_replicate_files(table, tmp_path) == [tmp_path / PARQUET, tmp_path / CSV]
    parquet = pandas.read_parquet(tmp_path / PARQUET)
    csv = pandas.read_csv(tmp_path / CSV)
    assert row_count(table) == len(parquet) == len(csv) == 7
    assert (tmp_path / CSV).read_text().splitlines()[0] == ",".join(SCHEMA.names)
    for column in SCHEMA.names:
        left, right = parquet[column].astype(object), csv[column].astype(object)
        for a, b in zip(left, right, strict=True):
            if isinstance(a, float) or isinstance(b, float):
                assert (pandas.isna(a) and pandas.isna(b)) or float(a) == float(b), column
            else:
                assert a == b, column
    assert sorted(p.name for p in tmp_path.iterdir()) == [CSV, PARQUET]  # no temporary file left


def test_a_large_table_gets_parquet_only_and_a_stale_csv_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = table_of(results_with_gaps())
    write_replicate_files(table, tmp_path)
    monkeypatch.setattr(replicates_table, "CSV_MAX_ROWS", 6)
    assert write_replicate_files(table, tmp_path) == [tmp_path / PARQUET]
    assert sorted(p.name for p in tmp_path.iterdir()) == [PARQUET]


def test_row_groups_split_replicates_without_changing_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table = table_of(results_with_gaps())
    whole = replicates_frame(table)
    monkeypatch.setattr(replicates_table, "BATCH_CELLS", 2)  # one replicate per batch
    assert len(list(replicates_table.record_batches(table))) == 4
    pandas.testing.assert_frame_equal(replicates_frame(table), whole)


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = table_of(results_with_gaps())
    write_replicate_files(table, tmp_path)
    before = (tmp_path / PARQUET).read_bytes()

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(replicates_table, "record_batches", broken)
    with pytest.raises(OSError, match="disk full"):
        write_replicate_files(table, tmp_path)
    assert (tmp_path / PARQUET).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CSV, PARQUET]
