"""Turn a spec into work: find what is missing, simulate and check its inputs, publish them.

Inputs are simulated in chunks that grow from one input block to MAX_CHUNK_BLOCKS, each checked against
the model before it is published. The submitter publishes the specs and the first chunk only once the
first chunk has passed every check (and one run of the model on it), so bad input leaves the store
untouched; the later chunks are simulated while the first fits run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.engines.base import CompiledModel
from runtime.ensemble.generators import Generator
from runtime.ensemble.spec import EnsembleSpec
from runtime.ensemble.stored_results import batch_payload, result_keys, stored_objects
from runtime.errors import StanFleetError
from runtime.model.conform import ReplicateInputs, SimulatedReplicate, conform_replicate
from runtime.model.stan_info import ModelInfo
from runtime.sbc.results import ReplicateResult
from runtime.store.inputs import InputReader, publish_inputs, published_packs
from runtime.store.keys import (
    INPUT_BLOCK_SIZE,
    block_of,
    dataset_spec_key,
    replicates_of_result_key,
    result_batch_groups,
    result_batch_key,
    results_prefix,
    retried_failure_key,
    spec_key,
)
from runtime.store.protocol import ObjectStore


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


def set_aside_failed_results(store: ObjectStore, ensemble_id: str, requested: int) -> int:
    """Move the failed results of replicates ``0..requested-1`` out of the results; return how many.

    The failed results are kept, with the time, under ``retried-failures/``; their replicates count as
    missing and are fitted again. A batch that holds failed results is written again without them.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = 0
    for key, results in stored_objects(store, result_keys(store, ensemble_id, requested)):
        failed = {
            r for r, line in results if r < requested and ReplicateResult.from_json(line).status != "ok"
        }
        if not failed:
            continue
        for replicate, line in results:  # the copies first: a crash in between leaves both, never neither
            if replicate in failed:
                store.put(retried_failure_key(ensemble_id, replicate, stamp), line)
        kept = sorted((replicate, line) for replicate, line in results if replicate not in failed)
        start = 0
        for group in result_batch_groups([replicate for replicate, _ in kept]):
            lines = [line for _, line in kept[start : start + len(group)]]
            store.put(result_batch_key(ensemble_id, group, f"r{stamp}"), batch_payload(lines))
            start += len(group)
        store.delete(key)
        moved += len(failed)
    return moved


def plan_ensemble(spec: EnsembleSpec, store: ObjectStore, requested: int) -> EnsemblePlan:
    """List the replicates ``0..requested-1`` that have no result in the store."""
    done = {
        r for key in store.list_keys(results_prefix(spec.ensemble_id)) for r in replicates_of_result_key(key)
    }
    return EnsemblePlan(spec, requested, [r for r in range(requested) if r not in done])


FIRST_CHUNK_BLOCKS = 1
"""Input blocks simulated before the first fit starts; each later chunk doubles, up to MAX_CHUNK_BLOCKS."""
MAX_CHUNK_BLOCKS = 20
"""Input blocks per chunk (and so at most per input pack) once the chunks have grown: 2,000 replicates,
about 35 MB in memory for the bundled example (1000 counts each); at R = 10^6, 500 packs."""


@dataclass(frozen=True)
class InputChunk:
    """Consecutive input blocks of the missing replicates.

    It holds the replicates, and the blocks simulated for them now (checked against the model, not yet
    published; the others are in the dataset set).
    """

    replicates: list[int]
    new_blocks: dict[int, list[SimulatedReplicate]]


def chunk_sizes(blocks: int) -> Iterator[int]:
    """Blocks per chunk: FIRST_CHUNK_BLOCKS, doubling up to MAX_CHUNK_BLOCKS, summing to ``blocks``."""
    size, left = FIRST_CHUNK_BLOCKS, blocks
    while left > 0:
        yield min(size, left)
        left -= size
        size = min(2 * size, MAX_CHUNK_BLOCKS)


class EnsembleInputs:
    """The inputs of a plan's missing replicates.

    They are reused from the dataset set where published, else simulated chunk by chunk, so memory stays
    bounded and fits start after the first chunk.
    """

    def __init__(
        self, plan: EnsemblePlan, generator: Generator, model: ModelInfo, store: ObjectStore
    ) -> None:
        self._plan = plan
        self._generator = generator
        self._model = model
        self._store = store
        self._published = set(published_packs(store, plan.spec.dataset_id))  # one listing

    @property
    def simulated(self) -> int:
        """How many of the missing replicates' datasets get simulated (the rest are reused)."""
        return sum(1 for replicate in self._plan.missing if block_of(replicate) not in self._published)

    def chunks(self) -> Iterator[InputChunk]:
        """The missing replicates in chunks of growing size.

        Each chunk's new blocks are simulated and checked (names, shapes, types against the model) when the
        chunk is reached.
        """
        missing = self._plan.missing
        blocks = sorted({block_of(r) for r in missing})
        start = position = 0
        for size in chunk_sizes(len(blocks)):
            chunk_blocks = blocks[start : start + size]
            start += size
            end = position
            while end < len(missing) and block_of(missing[end]) <= chunk_blocks[-1]:
                end += 1
            replicates, position = missing[position:end], end
            yield InputChunk(
                replicates, {b: self._simulate(b) for b in chunk_blocks if b not in self._published}
            )

    def _simulate(self, block: int) -> list[SimulatedReplicate]:
        simulations = self._generator.simulate_block(self._plan.spec.dataset_id, block)
        for simulation in simulations:
            conform_replicate(self._model, self._plan.spec.base_data, simulation)
        return simulations

    def first_inputs(self, chunk: InputChunk) -> ReplicateInputs:
        """The chunk's first replicate's inputs for the model, from its new blocks or the dataset set."""
        first = chunk.replicates[0]
        block = block_of(first)
        if block in chunk.new_blocks:
            simulation = chunk.new_blocks[block][first % INPUT_BLOCK_SIZE]
        else:
            simulation = InputReader(self._store, self._plan.spec.dataset_id).replicate(first)
        return conform_replicate(self._model, self._plan.spec.base_data, simulation)

    def publish(self, chunk: InputChunk) -> None:
        """Write the chunk's new blocks to the dataset set (one pack per run of consecutive blocks)."""
        publish_inputs(self._store, self._plan.spec.dataset_id, chunk.new_blocks)

    def publishing(self, chunks: Iterable[InputChunk]) -> Iterator[list[int]]:
        """Publish each chunk in turn, yielding its replicates once their inputs are in the store."""
        for chunk in chunks:
            self.publish(chunk)
            replicates = chunk.replicates
            del chunk  # the simulations go now, not after the next chunk is simulated
            yield replicates


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


def publish_specs(spec: EnsembleSpec, store: ObjectStore) -> None:
    """Write the dataset spec and the ensemble spec, each unless already there (both are immutable)."""
    for key, payload in (
        (dataset_spec_key(spec.dataset_id), spec.dataset.to_json()),
        (spec_key(spec.ensemble_id), spec.to_json()),
    ):
        if not store.exists(key):
            store.put(key, payload)
