"""Tests of the report files: summary.json, the replicate table and the plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from runtime.report.figures import FIGURE_NAMES
from runtime.report.files import write_report
from runtime.report.replicates_table import SCHEMA
from runtime.sbc.results import ReplicateResult
from runtime.sbc.verdict import summarize
from tests.runtime.helpers.sbc_results import failed_result, table_of, tiny_ensemble

PNGS = tuple(f"{name}.png" for name in FIGURE_NAMES)


@pytest.mark.parametrize("n_ok", [0, 1])
def test_fewer_than_two_succeeded_still_writes_every_file(tmp_path: Path, n_ok: int) -> None:
    results = tiny_ensemble(n_ok)
    summary = summarize(table_of(results), ensemble_id="ens-tiny", requested=4, reused=0)
    paths = write_report(summary, table_of(results), tmp_path)
    assert len(paths) == 4 + len(FIGURE_NAMES)
    assert all(p.stat().st_size > 0 for p in paths)


def test_write_report_writes_every_file(tmp_path: Path, uniform_results: list[ReplicateResult]) -> None:
    results = [r for r in uniform_results if r.replicate != 7]
    results.append(failed_result(7, "RuntimeError: chain 2 crashed\nmore detail"))
    summary = summarize(table_of(results), ensemble_id="ens-report", requested=100, reused=0)
    out_dir = tmp_path / "report"
    paths = write_report(summary, table_of(results), out_dir)
    names = ["summary.json", "replicates.parquet", "replicates.csv", *PNGS, "index.html"]
    assert paths == [out_dir / name for name in names]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)  # no temporary files left behind

    written = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert written == summary.to_dict()
    assert written["variables"]["lambda"]["calibrated"] is True

    with (out_dir / "replicates.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == SCHEMA.names
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
