import dataclasses
import json

import pytest

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.spec import (
    DatasetSpec,
    EnsembleSpec,
    GeneratorSource,
    content_hash,
    fit_seed,
    generator_seed,
    truth_seed,
)
from runtime.errors import StanFleetError

DATASET = DatasetSpec(
    generator=GeneratorSource(kind="stan", code="generated quantities { real mu = 1; }"),
    base_data={"N": 3},
    seed=1,
)


def make_spec(**changes: object) -> EnsembleSpec:
    spec = EnsembleSpec(
        model_name="m",
        model_code="parameters { real mu; }",
        dataset=DATASET,
        base_data={"N": 3},
        settings=SamplerSettings(),
        engine="pystan",
    )
    return dataclasses.replace(spec, **changes)


def test_ids_are_stable_content_hashes() -> None:
    assert make_spec().ensemble_id == make_spec().ensemble_id
    assert len(make_spec().ensemble_id) == len(DATASET.dataset_id) == 20


def test_the_dataset_id_changes_with_generator_base_data_and_seed_only() -> None:
    changed = [
        dataclasses.replace(DATASET, generator=GeneratorSource(kind="python", code="x", target="m:f")),
        dataclasses.replace(DATASET, base_data={"N": 4}),
        dataclasses.replace(DATASET, seed=2),
    ]
    assert len({d.dataset_id for d in changed} | {DATASET.dataset_id}) == len(changed) + 1


def test_model_versions_on_one_dataset_set_share_its_id_and_not_the_ensemble_id() -> None:
    base = make_spec()
    assert make_spec(model_name="other").ensemble_id == base.ensemble_id
    changed = [
        make_spec(model_code="parameters { real nu; }"),
        make_spec(settings=SamplerSettings(adapt_delta=0.9)),
        make_spec(engine="cmdstanpy"),
        make_spec(dataset=dataclasses.replace(DATASET, seed=2)),
        make_spec(test_quantities=("mu_squared",)),
    ]
    assert len({spec.ensemble_id for spec in changed} | {base.ensemble_id}) == len(changed) + 1
    assert {spec.dataset_id for spec in changed[:3]} == {base.dataset_id}


def test_ensembles_without_test_quantities_keep_the_ids_they_had_before_test_quantities_existed() -> None:
    spec = make_spec()
    before = {
        "dataset_id": spec.dataset_id,
        "model_code": spec.model_code,
        "settings": spec.settings.to_dict(),
        "engine": spec.engine,
    }
    assert spec.ensemble_id == content_hash(before)
    stored = json.loads(spec.to_json())
    del stored["test_quantities"]  # a spec written before test quantities existed
    assert EnsembleSpec.from_json(json.dumps(stored).encode()) == spec


def test_json_round_trips() -> None:
    spec = make_spec(settings=SamplerSettings(thin="auto"), test_quantities=("mu_squared", "log_lik"))
    assert EnsembleSpec.from_json(spec.to_json()) == spec
    stored = json.loads(spec.to_json())
    assert (stored["ensemble_id"], stored["dataset_id"]) == (spec.ensemble_id, spec.dataset_id)
    dataset = json.loads(DATASET.to_json())
    assert dataset.pop("dataset_id") == DATASET.dataset_id
    assert DatasetSpec.from_dict(dataset) == DATASET


def test_a_spec_of_the_layout_before_shared_datasets_is_refused_in_one_line() -> None:
    old = {"ensemble_id": "0123456789abcdef0123", "model_name": "m", "model_code": "", "generator": {}}
    with pytest.raises(
        StanFleetError, match=r"^ensemble 0123456789abcdef0123 was written by an earlier StanFleet"
    ):
        EnsembleSpec.from_json(json.dumps(old).encode())


def test_seeds_are_deterministic_distinct_and_in_range() -> None:
    seeds = [fit_seed("abc", r) for r in range(1000)]
    assert seeds == [fit_seed("abc", r) for r in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < 2**31 for s in seeds)
    assert fit_seed("abc", 0) != generator_seed("abc", 0)
    assert fit_seed("abc", 0) != fit_seed("abd", 0)
    truth = [truth_seed(s) for s in seeds]
    assert len(set(truth)) == 1000 and not set(truth) & set(seeds)
    assert all(0 <= s < 2**31 for s in truth)
