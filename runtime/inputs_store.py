"""Reading and writing input blocks (true values and simulated data) in the object store."""

from __future__ import annotations

import json
from collections.abc import Sequence

from runtime.conform import ReplicateInputs
from runtime.keys import block_of, inputs_key
from runtime.store import ObjectStore


def encode_block(block: int, replicates: Sequence[ReplicateInputs]) -> bytes:
    """Serialise one input block."""
    return json.dumps(
        {"block": block, "replicates": [inputs.to_jsonable() for inputs in replicates]},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


def decode_block(payload: bytes) -> list[ReplicateInputs]:
    """Inverse of :func:`encode_block`."""
    return [ReplicateInputs.from_jsonable(raw) for raw in json.loads(payload)["replicates"]]


class InputBlockReader:
    """Reads replicates' inputs, fetching each block from the store at most once."""

    def __init__(self, store: ObjectStore, ensemble_id: str) -> None:
        self._store = store
        self._ensemble_id = ensemble_id
        self._blocks: dict[int, dict[int, ReplicateInputs]] = {}

    def replicate(self, replicate: int) -> ReplicateInputs:
        """The inputs of one replicate."""
        block = block_of(replicate)
        if block not in self._blocks:
            payload = self._store.get(inputs_key(self._ensemble_id, block))
            self._blocks[block] = {inputs.replicate: inputs for inputs in decode_block(payload)}
        return self._blocks[block][replicate]
