"""The run record: its round trip, and its one-line errors when corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.run_record import (
    RUN_FIELDS,
    RunRecord,
    RunRecordError,
    load_run_record,
    save_run_record,
)
from runtime.errors import StanFleetError
from runtime.store.keys import run_key
from runtime.store.local import LocalDirectoryStore

ENSEMBLE = "0123456789abcdef0123"
RECORD = RunRecord(
    model="examples/poisson/fit_data.stan",
    model_name="fit_data",
    generator="examples/poisson/generative_ensemble.stan",
    engine="cmdstanpy",
    backend="aws",
    seed=7,
    settings=SamplerSettings(chains=2).to_dict(),
    pricing=(2.0, 0.02),
)
LOCAL = RunRecord(**{**RECORD.run, "backend": "local"})
POSTERIOR = RunRecord(
    **{**RECORD.run, "generator": "posterior SBC, conditional on observed.json"},
    posterior={
        "observed": "observed.json",
        "predictive": {"y_rep": "y"},
        "augment": None,
        "reference_fit": {},
    },
)


@pytest.mark.parametrize("record", [RECORD, LOCAL, POSTERIOR], ids=["aws", "local", "posterior"])
def test_round_trip(record: RunRecord) -> None:
    assert RunRecord.from_json(record.to_json()) == record


def test_the_run_section_is_the_run_fields_in_order() -> None:
    assert list(RECORD.run) == list(RUN_FIELDS)
    assert RECORD.run["backend"] == "aws"
    assert json.loads(RECORD.to_json())["pricing"] == {"vcpus_per_job": 2.0, "usd_per_vcpu_hour": 0.02}
    assert "pricing" not in json.loads(LOCAL.to_json())


def test_store_round_trip_and_absence(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    assert load_run_record(store, ENSEMBLE) is None
    save_run_record(store, ENSEMBLE, RECORD)
    assert store.exists(run_key(ENSEMBLE))
    assert load_run_record(store, ENSEMBLE) == RECORD


def edited(**changes: object) -> bytes:
    raw = json.loads(RECORD.to_json())
    raw.update(changes)
    return json.dumps({name: value for name, value in raw.items() if value is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", r"^not valid JSON: "),
        (b"\xff", r"^not valid JSON: "),
        (b"[1, 2]", r"^must be a JSON object, got list$"),
        (edited(backend=None), r"^must have the fields .*, got .*$"),
        (edited(extra=1), r"^must have the fields .*, got .*'extra'"),
        (edited(seed="7"), r"^seed must be an integer, got '7'$"),
        (edited(seed=True), r"^seed must be an integer, got True$"),
        (edited(model=3), r"^model must be a string, got 3$"),
        (edited(settings=[]), r"^settings must be a JSON object, got \[\]$"),
        (edited(pricing=[2, 0.02]), r"^pricing must be an object with the fields"),
        (edited(pricing={"vcpus_per_job": 2}), r"^pricing must be an object with the fields"),
        (edited(pricing={"vcpus_per_job": -1, "usd_per_vcpu_hour": 0.02}), r"^pricing.vcpus_per_job must"),
        (edited(pricing={"vcpus_per_job": 2, "usd_per_vcpu_hour": "x"}), r"^pricing.usd_per_vcpu_hour must"),
    ],
)
def test_a_corrupt_payload_names_what_is_wrong(payload: bytes, message: str) -> None:
    with pytest.raises(RunRecordError, match=message):
        RunRecord.from_json(payload)


def test_a_corrupt_record_in_the_store_is_a_one_line_error_naming_the_key(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    store.put(run_key(ENSEMBLE), b"{not json")
    with pytest.raises(StanFleetError) as raised:
        load_run_record(store, ENSEMBLE)
    message = str(raised.value)
    assert message.startswith(f"run record ensembles/{ENSEMBLE}/run.json in {store.uri} is corrupt: ")
    assert "\n" not in message


def test_posterior_sbc_joins_the_run_section_and_must_be_an_object() -> None:
    assert POSTERIOR.run["posterior"]["predictive"] == {"y_rep": "y"}
    assert "posterior" not in RECORD.run
    raw = json.loads(POSTERIOR.to_json())
    with pytest.raises(RunRecordError, match=r"^posterior must be a JSON object, got 'x'$"):
        RunRecord.from_json(json.dumps({**raw, "posterior": "x"}).encode())
