"""``python -m runtime.collect`` on a local directory store: R, the report, and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runtime.batch_executor import manifest_key
from runtime.collect import main, requested_replicates
from runtime.errors import StanFleetError
from runtime.keys import result_key, spec_key
from runtime.manifest import Manifest
from runtime.settings import SamplerSettings
from runtime.spec import EnsembleSpec, GeneratorSource
from runtime.store import LocalDirectoryStore
from tests.runtime.sbc_results import ensemble, uniform_rank

ROOT = Path(__file__).resolve().parents[2]
SPEC = EnsembleSpec(
    model_name="poisson",
    model_code=(ROOT / "tests" / "data" / "poisson.stan").read_text(),
    generator=GeneratorSource(kind="python", code="def simulate(rng, data): ...", target="gen:simulate"),
    base_data={"N": 3},
    seed=7,
    settings=SamplerSettings(chains=2, warmup=100, samples=100, thin=2),
    engine="cmdstanpy",
)
ENSEMBLE = SPEC.ensemble_id


@pytest.fixture
def store(tmp_path: Path) -> LocalDirectoryStore:
    store = LocalDirectoryStore(tmp_path / "store")
    store.put(spec_key(ENSEMBLE), SPEC.to_json())
    return store


def add_results(store: LocalDirectoryStore, replicates: list[int]) -> None:
    results = ensemble(max(replicates) + 1, uniform_rank)
    for replicate in replicates:
        store.put(result_key(ENSEMBLE, replicate), results[replicate].to_json())


def test_r_comes_from_the_manifest(store: LocalDirectoryStore) -> None:
    store.put(manifest_key(ENSEMBLE), Manifest(ENSEMBLE, 50, 5).to_json())
    add_results(store, [0, 1])
    assert requested_replicates(store, ENSEMBLE) == 50


def test_without_a_manifest_r_is_one_past_the_highest_result(store: LocalDirectoryStore) -> None:
    add_results(store, [0, 1, 6])
    assert requested_replicates(store, ENSEMBLE) == 7


def test_without_a_manifest_or_results_r_is_unknown(store: LocalDirectoryStore) -> None:
    with pytest.raises(StanFleetError, match=rf"^ensemble {ENSEMBLE} has no results in .*store yet$"):
        requested_replicates(store, ENSEMBLE)


def collect(store: LocalDirectoryStore, tmp_path: Path, *extra: str) -> int:
    return main([ENSEMBLE, "--store", store.uri, "--out", str(tmp_path / "report"), *extra])


def test_the_report_covers_what_is_finished_of_the_manifests_r(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.put(manifest_key(ENSEMBLE), Manifest(ENSEMBLE, 25, 5).to_json())
    add_results(store, list(range(20)))
    assert collect(store, tmp_path) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["ensemble_id"] == ENSEMBLE
    assert summary["replicates"] == {"requested": 25, "succeeded": 20, "failed": 0, "reused": 0}
    assert summary["run"] == {
        "model_name": "poisson",
        "engine": "cmdstanpy",
        "seed": 7,
        "settings": SPEC.settings.to_dict(),
    }
    output = capsys.readouterr().out
    assert "replicates: 20 succeeded, 0 failed, 0 reused (25 requested)" in output
    assert f"report: {tmp_path / 'report'}/" in output


def test_replicates_limits_the_report_to_the_first_r(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_results(store, list(range(12)))
    assert collect(store, tmp_path, "--replicates", "8") == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["replicates"]["requested"] == 8
    assert summary["replicates"]["succeeded"] == 8


@pytest.mark.parametrize(
    ("ensemble_id", "extra", "results", "message"),
    [
        (ENSEMBLE, ["--replicates", "0"], [0], r"--replicates must be a positive integer, got 0"),
        (ENSEMBLE, ["--replicates", "-3"], [0], r"--replicates must be a positive integer, got -3"),
        (ENSEMBLE, [], [], rf"ensemble {ENSEMBLE} has no results in .* yet"),
        ("fedcba9876543210fedc", [], [0], r"ensemble fedcba9876543210fedc is not in the store"),
    ],
)
def test_errors_are_one_line_and_write_no_report(
    store: LocalDirectoryStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ensemble_id: str,
    extra: list[str],
    results: list[int],
    message: str,
) -> None:
    if results:
        add_results(store, results)
    code = main([ensemble_id, "--store", store.uri, "--out", str(tmp_path / "report"), *extra])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert re.search(message, err), err
    assert not (tmp_path / "report").exists()
