"""Comparing model versions on one dataset set, from stored results (no fits here: test_submit.py runs
the comparison on real fits)."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from runtime.compare import main
from runtime.engines.settings import SamplerSettings
from runtime.ensemble.spec import DatasetSpec, EnsembleSpec, GeneratorSource
from runtime.report.comparison import compare_ensembles, comparison_table
from runtime.store.keys import result_key, spec_key
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.sbc_results import ensemble, high_rank, uniform_rank

ROOT = Path(__file__).resolve().parents[2]
DATASET = DatasetSpec(GeneratorSource(kind="python", code="# gen", target="gen:simulate"), {"N": 3}, 7)
GOOD = EnsembleSpec(
    model_name="good",
    model_code="parameters { real lambda; }",
    dataset=DATASET,
    base_data={"N": 3},
    settings=SamplerSettings(),
    engine="pystan",
)
BAD = dataclasses.replace(GOOD, model_name="bad", model_code="parameters { real<lower=0> lambda; }")


def publish(store: LocalDirectoryStore, spec: EnsembleSpec, rank: object, replicates: int = 60) -> str:
    store.put(spec_key(spec.ensemble_id), spec.to_json())
    for result in ensemble(replicates, rank):  # type: ignore[arg-type]
        store.put(result_key(spec.ensemble_id, result.replicate), result.to_json())
    return spec.ensemble_id


@pytest.fixture
def store(tmp_path: Path) -> LocalDirectoryStore:
    return LocalDirectoryStore(tmp_path / "store")


def test_versions_are_summarized_side_by_side(store: LocalDirectoryStore, tmp_path: Path) -> None:
    good, bad = publish(store, GOOD, uniform_rank), publish(store, BAD, high_rank)
    compared = compare_ensembles(store, [good, bad])
    assert [c.summary.calibrated for c in compared] == [True, False]
    table = comparison_table(compared)
    assert table.splitlines()[0].split() == ["good", good[:8], "bad", bad[:8]]
    assert re.search(r"^lambda\s+\S+\s+yes\s+.*\s+NO\s+", table, re.MULTILINE), table
    assert f"bad {bad[:8]}: NOT CALIBRATED (60 succeeded, 0 failed of 60)" in table

    assert main([good, bad, "--store", store.uri, "--out", str(tmp_path / "cmp")]) == 0
    written = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert written["dataset_id"] == DATASET.dataset_id
    assert (written["verdict"], written["family_level"]) == ("per-variable", 0.01)
    rows = {(row["quantity"], row["label"].split()[0]): row for row in written["rows"]}
    assert rows[("lambda", "good")]["calibrated"] is True
    assert rows[("lambda", "bad")]["calibrated"] is False
    assert rows[("lambda", "bad")]["p_value"] < 0.01
    csv_lines = (tmp_path / "cmp" / "comparison.csv").read_text().splitlines()
    assert csv_lines[0] == "quantity,kind,ensemble_id,label,p_value,calibrated,mean_z_score,mean_contraction"
    assert len(csv_lines) == 1 + 2 * len({key[0] for key in rows})
    assert (tmp_path / "cmp" / "ecdf_difference.png").stat().st_size > 5000


def test_ensembles_on_different_datasets_are_refused_in_one_line(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = publish(store, GOOD, uniform_rank)
    elsewhere = publish(
        store, dataclasses.replace(BAD, dataset=dataclasses.replace(DATASET, seed=8)), uniform_rank
    )
    assert main([good, elsewhere, "--store", store.uri, "--out", str(tmp_path / "cmp")]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"error: ensembles {good} and {elsewhere} were fitted to different datasets \([0-9a-f]{{20}} and "
        r"[0-9a-f]{20}\): compare versions run with the same generator, data and seed\n",
        err,
    ), err
    assert not (tmp_path / "cmp").exists()


def test_one_ensemble_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["0123456789abcdef0123"])
    assert exit_info.value.code == 2
    assert "name at least two ensembles" in capsys.readouterr().err


def test_the_smallest_r_is_compared(store: LocalDirectoryStore) -> None:
    good, bad = publish(store, GOOD, uniform_rank, 30), publish(store, BAD, uniform_rank, 20)
    compared = compare_ensembles(store, [good, bad])
    assert [c.summary.requested for c in compared] == [20, 20]
    assert np.all([c.summary.succeeded == 20 for c in compared])


def test_the_verdict_flags_reach_the_comparison(store: LocalDirectoryStore, tmp_path: Path) -> None:
    good, bad = publish(store, GOOD, uniform_rank), publish(store, BAD, high_rank)
    flags = [
        "--store",
        store.uri,
        "--out",
        str(tmp_path / "cmp"),
        "--verdict",
        "per-element",
        "--level",
        "0.05",
    ]
    assert main([good, bad, *flags]) == 0
    written = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert (written["verdict"], written["family_level"]) == ("per-element", 0.05)
