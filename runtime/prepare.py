"""Turn a spec into work: find what is missing, simulate and check its inputs, publish them.

Everything here either validates or writes; nothing is written until every check has passed, so bad
input leaves the store untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from runtime.conform import ReplicateInputs, conform_replicate
from runtime.engines.base import CompiledModel
from runtime.errors import StanFleetError
from runtime.generators import Generator
from runtime.inputs_store import InputReader, publish_inputs, published_packs
from runtime.keys import (
    INPUT_BLOCK_SIZE,
    block_of,
    block_replicates,
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
) -> dict[int, list[ReplicateInputs]]:
    """Simulate and conform every input block the missing replicates need and the store lacks."""
    ensemble_id = plan.spec.ensemble_id
    published = set(published_packs(store, ensemble_id))
    blocks: dict[int, list[ReplicateInputs]] = {}
    for block in sorted({block_of(r) for r in plan.missing} - published):
        simulations = generator.simulate_block(ensemble_id, block)
        blocks[block] = [
            conform_replicate(model, plan.spec.base_data, replicate, truths, data)
            for replicate, (truths, data) in zip(block_replicates(block), simulations, strict=True)
        ]
    return blocks


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
    plan: EnsemblePlan, new_blocks: Mapping[int, list[ReplicateInputs]], store: ObjectStore
) -> ReplicateInputs:
    """The inputs of the first missing replicate, from the new blocks or the store."""
    first = plan.missing[0]
    block = block_of(first)
    if block in new_blocks:
        return new_blocks[block][first % INPUT_BLOCK_SIZE]
    return InputReader(store, plan.spec.ensemble_id).replicate(first)


def publish(spec: EnsembleSpec, new_blocks: Mapping[int, list[ReplicateInputs]], store: ObjectStore) -> None:
    """Write the spec (once) and the new input blocks (one pack per run of consecutive blocks)."""
    ensemble_id = spec.ensemble_id
    if not store.exists(spec_key(ensemble_id)):
        store.put(spec_key(ensemble_id), spec.to_json())
    publish_inputs(store, ensemble_id, new_blocks)


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
