"""``python -m runtime.collect`` on a local directory store: R, the report, and its errors."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from runtime.aws.manifest import Manifest
from runtime.collect import main
from runtime.engines.settings import SamplerSettings
from runtime.ensemble.run_record import RunRecord, save_run_record
from runtime.ensemble.spec import DatasetSpec, EnsembleSpec, GeneratorSource
from runtime.errors import StanFleetError
from runtime.report.stored import requested_replicates
from runtime.store.keys import manifest_key, result_batch_key, result_key, run_key, spec_key
from runtime.store.local import LocalDirectoryStore
from tests.runtime.helpers.sbc_results import ensemble, uniform_rank

ROOT = Path(__file__).resolve().parents[2]
SPEC = EnsembleSpec(
    model_name="poisson",
    model_code=(ROOT / "tests" / "data" / "poisson.stan").read_text(),
    dataset=DatasetSpec(
        GeneratorSource(kind="python", code="def simulate(rng, data): ...", target="gen:simulate"),
        {"N": 3},
        7,
    ),
    base_data={"N": 3},
    settings=SamplerSettings(chains=2, warmup=100, samples=100, thin=2),
    engine="cmdstanpy",
)
ENSEMBLE = SPEC.ensemble_id


@pytest.fixture
def store(tmp_path: Path) -> LocalDirectoryStore:
    store = LocalDirectoryStore(tmp_path / "store")
    store.put(spec_key(ENSEMBLE), SPEC.to_json())
    return store


def add_results(store: LocalDirectoryStore, replicates: list[int], seconds: float = 0.0) -> None:
    results = ensemble(max(replicates) + 1, uniform_rank)
    for replicate in replicates:
        result = dataclasses.replace(results[replicate], total_seconds=seconds)
        store.put(result_key(ENSEMBLE, replicate), result.to_json())


def test_r_comes_from_the_manifest(store: LocalDirectoryStore) -> None:
    store.put(manifest_key(ENSEMBLE), Manifest(ENSEMBLE, 50, 5).to_json())
    add_results(store, [0, 1])
    assert requested_replicates(store, ENSEMBLE) == 50


def test_without_a_manifest_r_is_one_past_the_highest_result(store: LocalDirectoryStore) -> None:
    add_results(store, [0, 1, 6])
    assert requested_replicates(store, ENSEMBLE) == 7
    results = ensemble(10, uniform_rank)
    store.put(result_batch_key(ENSEMBLE, [8, 9], "w"), results[8].to_json() + b"\n" + results[9].to_json())
    assert requested_replicates(store, ENSEMBLE) == 10


def test_a_report_reads_batched_and_single_results_alike(store: LocalDirectoryStore, tmp_path: Path) -> None:
    add_results(store, [0, 1, 2])
    results = ensemble(6, uniform_rank)
    store.put(result_batch_key(ENSEMBLE, [3, 4, 5], "w"), b"\n".join(r.to_json() for r in results[3:]))
    assert collect(store, tmp_path, "--replicates", "6") == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["replicates"]["succeeded"], summary["replicates"]["missing"]) == (6, 0)


def test_without_a_manifest_or_results_r_is_unknown(store: LocalDirectoryStore) -> None:
    with pytest.raises(StanFleetError, match=rf"^ensemble {ENSEMBLE} has no results in .*store yet$"):
        requested_replicates(store, ENSEMBLE)


def collect(store: LocalDirectoryStore, tmp_path: Path, *extra: str) -> int:
    return main([ENSEMBLE, "--store", store.uri, "--out", str(tmp_path / "report"), *extra])


def test_the_report_covers_what_is_finished_of_the_manifests_r(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ensemble without a run record (published before the submitter wrote one): run from the spec."""
    store.put(manifest_key(ENSEMBLE), Manifest(ENSEMBLE, 25, 5).to_json())
    add_results(store, list(range(20)))
    assert collect(store, tmp_path) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["ensemble_id"] == ENSEMBLE
    assert summary["replicates"] == {
        "requested": 25,
        "succeeded": 20,
        "failed": 0,
        "missing": 5,
        "machinery_errors": 0,
        "reused": 0,
        "judged": 20,
    }
    assert summary["run"] == {
        "model_name": "poisson",
        "engine": "cmdstanpy",
        "seed": 7,
        "settings": SPEC.settings.to_dict(),
    }
    output = capsys.readouterr().out
    assert "replicates: 20 succeeded, 0 failed, 0 reused (25 requested)" in output
    assert "5 replicates have no result: rerun the same command to fit them" in output
    assert output.endswith(f"report: {tmp_path / 'report' / 'index.html'}\n")
    assert "estimated cost" not in output


RECORD = RunRecord(
    model="tests/data/poisson.stan",
    model_name="poisson",
    generator="gen:simulate",
    engine="cmdstanpy",
    backend="aws",
    seed=7,
    settings=SPEC.settings.to_dict(),
    pricing=(2.0, 0.05),
)


def test_the_run_record_gives_the_submitters_run_fields_and_cost_estimate(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_run_record(store, ENSEMBLE, RECORD)
    add_results(store, list(range(10)), seconds=3.0)
    assert collect(store, tmp_path) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    cost = summary["run"].pop("cost_estimate")
    assert summary["run"] == {
        "model": "tests/data/poisson.stan",
        "model_name": "poisson",
        "generator": "gen:simulate",
        "engine": "cmdstanpy",
        "backend": "aws",
        "seed": 7,
        "settings": SPEC.settings.to_dict(),
    }
    assert summary["fit_seconds_total"] == pytest.approx(30.0)
    assert cost["vcpu_seconds"] == pytest.approx(60.0)  # 30 s of fits on 2-vCPU jobs
    assert cost["price_per_vcpu_hour"] == 0.05
    assert cost["usd"] == pytest.approx(60.0 / 3600 * 0.05)
    assert f"estimated cost: ${cost['usd']:.4f}" in capsys.readouterr().out


def test_a_run_record_without_pricing_gives_no_cost_estimate(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_run_record(store, ENSEMBLE, dataclasses.replace(RECORD, backend="local", pricing=None))
    add_results(store, list(range(10)), seconds=3.0)
    assert collect(store, tmp_path) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["run"] == {**RECORD.run, "backend": "local"}
    assert "estimated cost" not in capsys.readouterr().out


def test_a_corrupt_run_record_is_a_one_line_error_naming_its_key(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.put(run_key(ENSEMBLE), b'{"model": "poisson.stan"')
    add_results(store, [0, 1])
    assert collect(store, tmp_path) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: run record ensembles/{ENSEMBLE}/run.json in {store.uri} is corrupt: ")
    assert err.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_replicates_limits_the_report_to_the_first_r(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_results(store, list(range(12)))
    assert collect(store, tmp_path, "--replicates", "8") == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["replicates"]["requested"] == 8
    assert summary["replicates"]["succeeded"] == 8


def test_the_verdict_flag_chooses_the_holm_family(store: LocalDirectoryStore, tmp_path: Path) -> None:
    add_results(store, list(range(12)))
    for verdict in ("per-element", "per-variable"):
        assert collect(store, tmp_path, "--verdict", verdict) == 0
        test = json.loads((tmp_path / "report" / "summary.json").read_text())["uniformity_test"]
        assert test["verdict"] == verdict
    with pytest.raises(SystemExit) as exit_info:
        collect(store, tmp_path, "--verdict", "per-scalar")
    assert exit_info.value.code == 2


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


def test_an_ensemble_of_the_layout_before_shared_datasets_is_named_in_one_line(
    store: LocalDirectoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_id = "0123456789abcdef0123"
    old_spec = {"ensemble_id": old_id, "model_name": "poisson", "model_code": "", "generator": {}, "seed": 1}
    store.put(spec_key(old_id), json.dumps(old_spec).encode())
    store.put(f"ensembles/{old_id}/inputs/blocks-00000-00000.jsonl", b"{}\n")
    assert main([old_id, "--store", store.uri, "--out", str(tmp_path / "report")]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: ensemble {old_id} was written by an earlier StanFleet (before datasets were shared "
        "between models): resubmit it, which gives it a new id\n"
    )
    assert not (tmp_path / "report").exists()
