"""Turn a spec into work: find what is missing, simulate and check its inputs, publish them.

Everything here either validates or writes; nothing is written until every check has passed, so bad
input leaves the store untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from runtime.conform import ReplicateInputs, SimulatedReplicate, conform_replicate
from runtime.engines.base import CompiledModel
from runtime.errors import StanFleetError
from runtime.generators import Generator
from runtime.inputs_store import InputReader, publish_inputs, published_packs
from runtime.keys import (
    INPUT_BLOCK_SIZE,
    block_of,
    dataset_spec_key,
    replicate_of_result_key,
    results_prefix,
    spec_key,
)
from runtime.results import ReplicateResult
from runtime.spec import EnsembleSpec
from runtime.stan_info import ModelInfo
from runtime.store import ObjectStore

RESULT_READERS = 10
"""Threads reading results; botocore keeps 10 connections per client by default."""


@dataclass(frozen=True)
class EnsemblePlan:
    """Which of the requested replicates still need a fit."""

    spec: EnsembleSpec
    requested: int
    missing: list[int]

    @property
    def reused(self) -> int:
        """Replicates whose result an earlier run already wrote."""
        return self.requested - len(self.missing)


def plan_ensemble(spec: EnsembleSpec, store: ObjectStore, requested: int) -> EnsemblePlan:
    """List the replicates ``0..requested-1`` that have no result in the store."""
    done = {replicate_of_result_key(key) for key in store.list_keys(results_prefix(spec.ensemble_id))}
    return EnsemblePlan(spec, requested, [r for r in range(requested) if r not in done])


def simulate_missing_blocks(
    plan: EnsemblePlan, generator: Generator, model: ModelInfo, store: ObjectStore
) -> dict[int, list[SimulatedReplicate]]:
    """Simulate every input block the missing replicates need and the dataset set lacks.

    Every new replicate is checked against the model (names, shapes, types) before anything is written.
    """
    dataset_id = plan.spec.dataset_id
    published = set(published_packs(store, dataset_id))
    blocks: dict[int, list[SimulatedReplicate]] = {}
    for block in sorted({block_of(r) for r in plan.missing} - published):
        blocks[block] = generator.simulate_block(dataset_id, block)
        for simulation in blocks[block]:
            conform_replicate(model, plan.spec.base_data, simulation)
    return blocks


def simulated_count(plan: EnsemblePlan, new_blocks: Mapping[int, Sequence[SimulatedReplicate]]) -> int:
    """How many of the missing replicates' datasets were simulated now (the rest were reused)."""
    return sum(1 for replicate in plan.missing if block_of(replicate) in new_blocks)


def check_against_model(
    model: CompiledModel, inputs: ReplicateInputs, base_data: Mapping[str, Any], seed: int
) -> None:
    """Run the model once with the replicate's data, holding parameters at the true values.

    Catches what names and types cannot: wrong sizes, constraint violations, missing base data.
    """
    try:
        model.fixed_param({**base_data, **inputs.data}, 1, seed, inits=inputs.true_values)
    except StanFleetError as exc:
        raise StanFleetError(
            f"the model rejects replicate {inputs.replicate}'s simulated data or true values: {exc}"
        ) from None


def first_missing_inputs(
    plan: EnsemblePlan,
    new_blocks: Mapping[int, Sequence[SimulatedReplicate]],
    store: ObjectStore,
    model: ModelInfo,
) -> ReplicateInputs:
    """The first missing replicate's inputs for the model, from the new blocks or the dataset set."""
    first = plan.missing[0]
    block = block_of(first)
    if block in new_blocks:
        simulation = new_blocks[block][first % INPUT_BLOCK_SIZE]
    else:
        simulation = InputReader(store, plan.spec.dataset_id).replicate(first)
    return conform_replicate(model, plan.spec.base_data, simulation)


def publish(
    spec: EnsembleSpec, new_blocks: Mapping[int, Sequence[SimulatedReplicate]], store: ObjectStore
) -> None:
    """Write the dataset spec and the ensemble spec (once each) and the new input blocks of the dataset
    set (one pack per run of consecutive blocks)."""
    for key, payload in (
        (dataset_spec_key(spec.dataset_id), spec.dataset.to_json()),
        (spec_key(spec.ensemble_id), spec.to_json()),
    ):
        if not store.exists(key):
            store.put(key, payload)
    publish_inputs(store, spec.dataset_id, new_blocks)


def load_results(store: ObjectStore, ensemble_id: str, requested: int) -> list[ReplicateResult]:
    """Every result of replicates ``0..requested-1`` present in the store, in replicate order.

    One listing, then the reads run on ``RESULT_READERS`` threads: a remote store's reads are
    latency-bound, so R = 10,000 results take seconds instead of minutes.
    """
    keys = sorted(
        key
        for key in store.list_keys(results_prefix(ensemble_id))
        if replicate_of_result_key(key) < requested
    )
    with ThreadPoolExecutor(max_workers=RESULT_READERS) as pool:
        return [ReplicateResult.from_json(payload) for payload in pool.map(store.get, keys)]
