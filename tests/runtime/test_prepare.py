"""Planning and publishing an ensemble in the store."""

import json
from pathlib import Path

import numpy as np

from runtime.generators import PythonGenerator
from runtime.inputs_store import InputReader
from runtime.keys import (
    INPUT_BLOCK_SIZE,
    dataset_spec_key,
    inputs_pack_key,
    inputs_prefix,
    result_key,
    spec_key,
)
from runtime.prepare import (
    RESULT_READERS,
    first_missing_inputs,
    load_results,
    plan_ensemble,
    publish,
    simulate_missing_blocks,
    simulated_count,
)
from runtime.results import ReplicateResult
from runtime.settings import SamplerSettings
from runtime.spec import DatasetSpec, EnsembleSpec
from runtime.stan_info import read_model_info
from runtime.store import LocalDirectoryStore

ROOT = Path(__file__).resolve().parents[2]
MODEL_FILE = ROOT / "examples" / "poisson" / "fit_data.stan"
BASE = {"N": 4}


def make_spec(generator: PythonGenerator, model_code: str | None = None) -> EnsembleSpec:
    return EnsembleSpec(
        "fit_data",
        model_code or MODEL_FILE.read_text(),
        DatasetSpec(generator.source, BASE, 1),
        BASE,
        SamplerSettings(),
        "pystan",
    )


def failed_result(replicate: int) -> bytes:
    return ReplicateResult(replicate=replicate, seed=1, status="failed", engine="pystan", error="x").to_json()


def test_plan_lists_missing_replicates_and_counts_reuse(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    spec = make_spec(PythonGenerator("examples.poisson.generator:simulate", BASE))
    for replicate in (0, 2, 7):
        store.put(result_key(spec.ensemble_id, replicate), failed_result(replicate))
    plan = plan_ensemble(spec, store, 5)
    assert plan.missing == [1, 3, 4]
    assert plan.reused == 2
    assert [r.replicate for r in load_results(store, spec.ensemble_id, 5)] == [0, 2]


def test_only_blocks_missing_from_the_store_are_simulated_and_published(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    generator = PythonGenerator("examples.poisson.generator:simulate", BASE)
    spec = make_spec(generator)
    model = read_model_info(MODEL_FILE)
    plan = plan_ensemble(spec, store, INPUT_BLOCK_SIZE + 3)
    blocks = simulate_missing_blocks(plan, generator, model, store)
    assert sorted(blocks) == [0, 1]
    assert all(len(block) == INPUT_BLOCK_SIZE for block in blocks.values())
    assert blocks[1][0].replicate == INPUT_BLOCK_SIZE
    assert simulated_count(plan, blocks) == INPUT_BLOCK_SIZE + 3
    first = first_missing_inputs(plan, blocks, store, model)
    assert first.replicate == 0
    assert first.data["y"].dtype.kind == "i"  # conformed to the model

    publish(spec, blocks, store)
    assert store.exists(spec_key(spec.ensemble_id))
    assert DatasetSpec.from_dict(json.loads(store.get(dataset_spec_key(spec.dataset_id)))) == spec.dataset
    assert list(store.list_keys(inputs_prefix(spec.dataset_id))) == [
        inputs_pack_key(spec.dataset_id, range(2))
    ]
    stored = InputReader(store, spec.dataset_id).replicate(INPUT_BLOCK_SIZE + 2)
    np.testing.assert_array_equal(stored.values["y"], blocks[1][2].values["y"])

    store.put(result_key(spec.ensemble_id, 0), failed_result(0))
    replan = plan_ensemble(spec, store, 2 * INPUT_BLOCK_SIZE + 1)
    assert sorted(simulate_missing_blocks(replan, generator, model, store)) == [2]
    assert first_missing_inputs(replan, {}, store, model).replicate == 1

    publish(spec, {2: simulate_missing_blocks(replan, generator, model, store)[2]}, store)
    assert sorted(store.list_keys(inputs_prefix(spec.dataset_id))) == [
        inputs_pack_key(spec.dataset_id, range(2)),
        inputs_pack_key(spec.dataset_id, range(2, 3)),
    ]
    assert simulate_missing_blocks(replan, generator, model, store) == {}
    assert (
        InputReader(store, spec.dataset_id).replicate(2 * INPUT_BLOCK_SIZE).replicate == 2 * INPUT_BLOCK_SIZE
    )


def test_another_model_version_reuses_the_dataset_set(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    generator = PythonGenerator("examples.poisson.generator:simulate", BASE)
    model = read_model_info(MODEL_FILE)
    first = make_spec(generator)
    plan = plan_ensemble(first, store, 5)
    publish(first, simulate_missing_blocks(plan, generator, model, store), store)

    second = make_spec(generator, MODEL_FILE.read_text().replace("normal(0, 6.44787)", "normal(0, 5)"))
    assert (second.dataset_id, second.ensemble_id != first.ensemble_id) == (first.dataset_id, True)
    replan = plan_ensemble(second, store, 5)
    assert replan.missing == list(range(5))  # nothing fitted yet for this version...
    new_blocks = simulate_missing_blocks(replan, generator, model, store)
    assert (new_blocks, simulated_count(replan, new_blocks)) == ({}, 0)  # ...and nothing to simulate
    again = first_missing_inputs(replan, new_blocks, store, model)
    original = first_missing_inputs(plan, {}, store, model)
    assert again.true_values == original.true_values


def test_results_load_in_replicate_order_from_many_reader_threads(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    ensemble_id = "f" * 20
    for replicate in reversed(range(3 * RESULT_READERS)):
        store.put(result_key(ensemble_id, replicate), failed_result(replicate))
    loaded = load_results(store, ensemble_id, 2 * RESULT_READERS + 1)
    assert [r.replicate for r in loaded] == list(range(2 * RESULT_READERS + 1))
