"""Input packs: the generator's output for many input blocks of a dataset set in one stored object.

A submission writes one pack per chunk of new blocks (runtime.ensemble.prepare: up to 20 blocks each), so
publishing inputs costs one request per 2,000 replicates at most. A pack is JSON lines: a header line
``{"blocks": [first, last], "offsets": [...]}`` with each block's byte offset after the header (and the
end), then one line per block. A reader fetches the header and then only the byte range of the blocks
it needs, so an array child reads its few blocks, not the whole ensemble's inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from runtime.errors import StanFleetError
from runtime.model.conform import SimulatedReplicate
from runtime.store.keys import (
    INPUT_BLOCK_SIZE,
    block_of,
    blocks_of_inputs_pack_key,
    inputs_pack_key,
    inputs_prefix,
)
from runtime.store.protocol import ObjectStore

HEADER_PROBE_BYTES = 64 * 1024
"""First read of a pack's header; a longer header (over ~5000 blocks) is read in doublings."""


def encode_block(block: int, replicates: Sequence[SimulatedReplicate]) -> bytes:
    """Serialise one input block as one line of JSON."""
    return json.dumps(
        {"block": block, "replicates": [inputs.to_jsonable() for inputs in replicates]},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


def decode_block(payload: bytes) -> list[SimulatedReplicate]:
    """Inverse of :func:`encode_block`."""
    return [SimulatedReplicate.from_jsonable(raw) for raw in json.loads(payload)["replicates"]]


def encode_pack(blocks: Mapping[int, Sequence[SimulatedReplicate]]) -> bytes:
    """Serialise consecutive input blocks into one pack (header line, then one line per block)."""
    numbers = sorted(blocks)
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise ValueError(f"an input pack holds consecutive blocks, got {numbers}")
    lines = [encode_block(block, blocks[block]) + b"\n" for block in numbers]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    header = json.dumps({"blocks": [numbers[0], numbers[-1]], "offsets": offsets}, separators=(",", ":"))
    return header.encode() + b"\n" + b"".join(lines)


def consecutive_runs(blocks: Iterable[int]) -> list[range]:
    """Split block numbers into maximal runs of consecutive numbers, in order."""
    runs: list[range] = []
    for block in sorted(set(blocks)):
        if runs and runs[-1].stop == block:
            runs[-1] = range(runs[-1].start, block + 1)
        else:
            runs.append(range(block, block + 1))
    return runs


def publish_inputs(
    store: ObjectStore, dataset_id: str, blocks: Mapping[int, Sequence[SimulatedReplicate]]
) -> None:
    """Write the blocks as one pack per run of consecutive blocks (one write per run)."""
    for run in consecutive_runs(blocks):
        store.put(inputs_pack_key(dataset_id, run), encode_pack({block: blocks[block] for block in run}))


def published_packs(store: ObjectStore, dataset_id: str) -> dict[int, str]:
    """Map every published input block to the key of the pack holding it (one listing)."""
    packs: dict[int, str] = {}
    for key in sorted(store.list_keys(inputs_prefix(dataset_id))):
        for block in blocks_of_inputs_pack_key(key) or ():
            packs[block] = key
    return packs


class InputReader:
    """Reads replicates' inputs from input packs.

    One listing (again when a block is not in it: the submitter publishes packs while fits run), then
    ranged reads of only the blocks needed.
    """

    def __init__(self, store: ObjectStore, dataset_id: str) -> None:
        self._store = store
        self._dataset_id = dataset_id
        self._packs: dict[int, str] | None = None
        self._offsets: dict[str, tuple[int, list[int], int]] = {}
        self._blocks: dict[int, list[SimulatedReplicate]] = {}

    def replicate(self, replicate: int) -> SimulatedReplicate:
        """The inputs of one replicate (its block is fetched unless already read)."""
        self._read_missing({block_of(replicate)})
        return self._blocks[block_of(replicate)][replicate % INPUT_BLOCK_SIZE]

    def prefetch(self, replicates: Iterable[int]) -> None:
        """Hold exactly the blocks of ``replicates``.

        Forget the others (a long-lived worker's memory stays bounded), read those not read yet, one ranged
        read per run of consecutive blocks.
        """
        needed = {block_of(r) for r in replicates}
        self._blocks = {block: held for block, held in self._blocks.items() if block in needed}
        self._read_missing(needed)

    def _read_missing(self, needed: set[int]) -> None:
        wanted = needed - set(self._blocks)
        for run in consecutive_runs(wanted):
            for key, blocks in self._split_by_pack(run):
                self._read_blocks(key, blocks)

    def _split_by_pack(self, run: range) -> list[tuple[str, range]]:
        if self._packs is None or any(block not in self._packs for block in run):
            self._packs = published_packs(self._store, self._dataset_id)  # packs published since: list again
        pieces: list[tuple[str, range]] = []
        for block in run:
            key = self._packs.get(block)
            if key is None:
                raise StanFleetError(
                    f"the inputs of replicate {block * INPUT_BLOCK_SIZE} onwards (input block {block}) are "
                    f"not in the store {self._store.uri}: resubmit the ensemble to publish them"
                )
            if pieces and pieces[-1][0] == key:
                pieces[-1] = (key, range(pieces[-1][1].start, block + 1))
            else:
                pieces.append((key, range(block, block + 1)))
        return pieces

    def _read_blocks(self, key: str, blocks: range) -> None:
        first, offsets, body_start = self._header(key)
        start = body_start + offsets[blocks.start - first]
        stop = body_start + offsets[blocks.stop - first]
        payload = self._store.get_range(key, start, stop)
        for block, line in zip(blocks, payload.splitlines(), strict=True):
            self._blocks[block] = decode_block(line)

    def _header(self, key: str) -> tuple[int, list[int], int]:
        """(first block, block offsets, where the blocks start) of one pack, read once."""
        if key not in self._offsets:
            probe = HEADER_PROBE_BYTES
            head = self._store.get_range(key, 0, probe)
            while b"\n" not in head and len(head) == probe:
                probe *= 2
                head = self._store.get_range(key, 0, probe)
            line = head.split(b"\n", 1)[0]
            header = json.loads(line)
            self._offsets[key] = (
                int(header["blocks"][0]),
                [int(o) for o in header["offsets"]],
                len(line) + 1,
            )
        return self._offsets[key]
