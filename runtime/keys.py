"""The stable key layout of an ensemble in the object store.

::

    ensembles/<id>/spec.json                    the ensemble spec (immutable once written)
    ensembles/<id>/inputs/block-<b:05d>.json    true values and simulated data, INPUT_BLOCK_SIZE replicates
    ensembles/<id>/results/<r:06d>.json         one ReplicateResult per replicate, written when done
"""

from __future__ import annotations

INPUT_BLOCK_SIZE = 100
"""Replicates per input block. Fixed, so replicate r's inputs never depend on the ensemble size."""


def ensemble_prefix(ensemble_id: str) -> str:
    """Prefix of every object of one ensemble."""
    return f"ensembles/{ensemble_id}/"


def spec_key(ensemble_id: str) -> str:
    """Key of the ensemble spec."""
    return f"{ensemble_prefix(ensemble_id)}spec.json"


def block_of(replicate: int) -> int:
    """Index of the input block holding ``replicate``."""
    return replicate // INPUT_BLOCK_SIZE


def block_replicates(block: int) -> range:
    """The replicates an input block holds."""
    return range(block * INPUT_BLOCK_SIZE, (block + 1) * INPUT_BLOCK_SIZE)


def inputs_prefix(ensemble_id: str) -> str:
    """Prefix of every input block of one ensemble."""
    return f"{ensemble_prefix(ensemble_id)}inputs/"


def inputs_key(ensemble_id: str, block: int) -> str:
    """Key of one input block."""
    return f"{inputs_prefix(ensemble_id)}block-{block:05d}.json"


def block_of_inputs_key(key: str) -> int:
    """Inverse of :func:`inputs_key` for the block number."""
    return int(key.rsplit("/", 1)[1].removeprefix("block-").removesuffix(".json"))


def results_prefix(ensemble_id: str) -> str:
    """Prefix of every result of one ensemble."""
    return f"{ensemble_prefix(ensemble_id)}results/"


def result_key(ensemble_id: str, replicate: int) -> str:
    """Key of one replicate's result."""
    return f"{results_prefix(ensemble_id)}{replicate:06d}.json"


def replicate_of_result_key(key: str) -> int:
    """Inverse of :func:`result_key` for the replicate number."""
    return int(key.rsplit("/", 1)[1].removesuffix(".json"))
