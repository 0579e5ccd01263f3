"""Planning and publishing an ensemble in the store."""

import json
from pathlib import Path

import numpy as np
import pytest

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.generators import Generator, PythonGenerator
from runtime.ensemble.prepare import (
    FIRST_CHUNK_BLOCKS,
    MAX_CHUNK_BLOCKS,
    EnsembleInputs,
    chunk_sizes,
    plan_ensemble,
    publish_specs,
    set_aside_failed_results,
)
from runtime.ensemble.spec import DatasetSpec, EnsembleSpec
from runtime.ensemble.stored_results import load_results
from runtime.errors import StanFleetError
from runtime.model.conform import SimulatedReplicate
from runtime.model.stan_info import read_model_info
from runtime.sbc.results import ReplicateResult
from runtime.store.inputs import InputReader
from runtime.store.keys import (
    INPUT_BLOCK_SIZE,
    dataset_spec_key,
    inputs_pack_key,
    inputs_prefix,
    result_batch_key,
    result_key,
    results_prefix,
    spec_key,
)
from runtime.store.local import LocalDirectoryStore

ROOT = Path(__file__).resolve().parents[3]
MODEL_FILE = ROOT / "examples" / "poisson" / "fit_data.stan"
BASE = {"N": 4}


def make_spec(generator: Generator, model_code: str | None = None) -> EnsembleSpec:
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


def ok_result(replicate: int) -> bytes:
    return ReplicateResult(replicate=replicate, seed=1, status="ok", engine="pystan").to_json()


def test_replicates_in_a_batch_count_as_done(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    spec = make_spec(PythonGenerator("examples.poisson.generator:simulate", BASE))
    store.put(result_key(spec.ensemble_id, 0), ok_result(0))
    store.put(result_batch_key(spec.ensemble_id, [2, 3], "w"), ok_result(2) + b"\n" + ok_result(3))
    assert plan_ensemble(spec, store, 6).missing == [1, 4, 5]


def test_failed_results_are_set_aside_from_batches_and_single_objects(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    spec = make_spec(PythonGenerator("examples.poisson.generator:simulate", BASE))
    ensemble_id = spec.ensemble_id
    store.put(result_key(ensemble_id, 0), failed_result(0))
    store.put(result_key(ensemble_id, 1), ok_result(1))
    lines = [failed_result(2), ok_result(3), failed_result(4), failed_result(9)]
    store.put(result_batch_key(ensemble_id, [2, 3, 4, 9], "w"), b"\n".join(lines))
    assert set_aside_failed_results(store, ensemble_id, 9) == 3  # 0, 2 and 4; 9 is not requested
    assert plan_ensemble(spec, store, 10).missing == [0, 2, 4, 5, 6, 7, 8]
    kept = {r.replicate: r.status for r in load_results(store, ensemble_id, 10)}
    assert kept == {1: "ok", 3: "ok", 9: "failed"}
    (batch,) = [key for key in store.list_keys(results_prefix(ensemble_id)) if "batch." in key]
    assert batch.endswith(".jsonl") and "batch.000003_000009." in batch
    aside = sorted(store.list_keys(f"ensembles/{ensemble_id}/retried-failures/"))
    assert [key.rsplit("/", 1)[1][:6] for key in aside] == ["000000", "000002", "000004"]
    assert ReplicateResult.from_json(store.get(aside[1])).replicate == 2


def test_chunks_grow_from_one_block_to_the_largest_and_cover_every_block() -> None:
    assert list(chunk_sizes(1)) == [FIRST_CHUNK_BLOCKS]
    sizes = list(chunk_sizes(1000))
    assert sizes[:3] == [1, 2, 4] and max(sizes) == MAX_CHUNK_BLOCKS and sum(sizes) == 1000
    assert list(chunk_sizes(0)) == []


def test_only_blocks_missing_from_the_store_are_simulated_and_published(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    generator = PythonGenerator("examples.poisson.generator:simulate", BASE)
    spec = make_spec(generator)
    model = read_model_info(MODEL_FILE)
    plan = plan_ensemble(spec, store, INPUT_BLOCK_SIZE + 3)
    inputs = EnsembleInputs(plan, generator, model, store)
    assert inputs.simulated == INPUT_BLOCK_SIZE + 3
    first_chunk, second_chunk = inputs.chunks()
    assert first_chunk.replicates == list(range(INPUT_BLOCK_SIZE))
    assert second_chunk.replicates == [INPUT_BLOCK_SIZE, INPUT_BLOCK_SIZE + 1, INPUT_BLOCK_SIZE + 2]
    assert (sorted(first_chunk.new_blocks), sorted(second_chunk.new_blocks)) == ([0], [1])
    assert second_chunk.new_blocks[1][0].replicate == INPUT_BLOCK_SIZE
    first = inputs.first_inputs(first_chunk)
    assert first.replicate == 0
    assert first.data["y"].dtype.kind == "i"  # conformed to the model

    publish_specs(spec, store)
    assert list(inputs.publishing([first_chunk, second_chunk])) == [
        first_chunk.replicates,
        second_chunk.replicates,
    ]
    assert store.exists(spec_key(spec.ensemble_id))
    assert DatasetSpec.from_dict(json.loads(store.get(dataset_spec_key(spec.dataset_id)))) == spec.dataset
    assert sorted(store.list_keys(inputs_prefix(spec.dataset_id))) == [
        inputs_pack_key(spec.dataset_id, range(1)),
        inputs_pack_key(spec.dataset_id, range(1, 2)),
    ]
    stored = InputReader(store, spec.dataset_id).replicate(INPUT_BLOCK_SIZE + 2)
    np.testing.assert_array_equal(stored.values["y"], second_chunk.new_blocks[1][2].values["y"])

    store.put(result_key(spec.ensemble_id, 0), failed_result(0))
    replan = EnsembleInputs(plan_ensemble(spec, store, 2 * INPUT_BLOCK_SIZE + 1), generator, model, store)
    assert replan.simulated == 1
    reused, extended = replan.chunks()
    assert (reused.replicates[0], reused.new_blocks) == (1, {})
    assert replan.first_inputs(reused).replicate == 1  # read back from the dataset set
    # blocks 1 (published) and 2 (new) make the second chunk
    assert (extended.replicates, sorted(extended.new_blocks)) == (
        list(range(INPUT_BLOCK_SIZE, 2 * INPUT_BLOCK_SIZE + 1)),
        [2],
    )


class BadSecondBlock:
    """A generator whose second input block holds counts that are not integers."""

    def __init__(self, generator: PythonGenerator) -> None:
        self.source = generator.source
        self._generator = generator

    def simulate_block(self, dataset_id: str, block: int) -> list[SimulatedReplicate]:
        simulations = self._generator.simulate_block(dataset_id, block)
        if block == 1:
            bad = simulations[5]
            simulations[5] = SimulatedReplicate(bad.replicate, {**bad.values, "y": np.full(4, 0.5)})
        return simulations


def test_a_chunk_the_model_rejects_stops_the_stream_before_it_is_published(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    generator = BadSecondBlock(PythonGenerator("examples.poisson.generator:simulate", BASE))
    spec = make_spec(generator)
    inputs = EnsembleInputs(
        plan_ensemble(spec, store, 3 * INPUT_BLOCK_SIZE), generator, read_model_info(MODEL_FILE), store
    )
    chunks = inputs.chunks()
    published = inputs.publishing(chunks)
    assert next(published) == list(range(INPUT_BLOCK_SIZE))
    with pytest.raises(StanFleetError, match="y"):
        next(published)
    assert list(store.list_keys(inputs_prefix(spec.dataset_id))) == [
        inputs_pack_key(spec.dataset_id, range(1))
    ]


def test_another_model_version_reuses_the_dataset_set(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    generator = PythonGenerator("examples.poisson.generator:simulate", BASE)
    model = read_model_info(MODEL_FILE)
    first = make_spec(generator)
    plan = plan_ensemble(first, store, 5)
    inputs = EnsembleInputs(plan, generator, model, store)
    publish_specs(first, store)
    (chunk,) = inputs.chunks()
    inputs.publish(chunk)

    second = make_spec(generator, MODEL_FILE.read_text().replace("normal(0, 6.44787)", "normal(0, 5)"))
    assert (second.dataset_id, second.ensemble_id != first.ensemble_id) == (first.dataset_id, True)
    replan = plan_ensemble(second, store, 5)
    assert replan.missing == list(range(5))  # nothing fitted yet for this version...
    reuse = EnsembleInputs(replan, generator, model, store)
    (again,) = reuse.chunks()
    assert (reuse.simulated, again.new_blocks) == (0, {})  # ...and nothing to simulate
    assert reuse.first_inputs(again).true_values == inputs.first_inputs(chunk).true_values
