"""Input packs: one write per run of consecutive blocks, ranged reads of only the blocks needed."""

from pathlib import Path

import numpy as np
import pytest

import runtime.store.inputs as inputs_store
from runtime.errors import StanFleetError
from runtime.model.conform import SimulatedReplicate
from runtime.store.inputs import (
    InputReader,
    consecutive_runs,
    decode_block,
    encode_pack,
    publish_inputs,
    published_packs,
)
from runtime.store.keys import INPUT_BLOCK_SIZE, block_replicates, inputs_pack_key, inputs_prefix
from runtime.store.local import LocalDirectoryStore

DATASET = "d" * 20


def block_inputs(block: int) -> list[SimulatedReplicate]:
    rng = np.random.default_rng(block)
    return [
        SimulatedReplicate(r, {"lambda": np.array(float(r)), "y": rng.poisson(3.0, size=4)})
        for r in block_replicates(block)
    ]


class CountingStore(LocalDirectoryStore):
    """A local store that records its reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.ranges: list[tuple[str, int, int]] = []
        self.listings = 0

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        self.ranges.append((key, start, stop))
        return super().get_range(key, start, stop)

    def list_keys(self, prefix: str):  # type: ignore[no-untyped-def]
        self.listings += 1
        return super().list_keys(prefix)


def test_consecutive_runs() -> None:
    assert consecutive_runs([]) == []
    assert consecutive_runs([4, 0, 1, 2, 7, 5]) == [range(0, 3), range(4, 6), range(7, 8)]


def test_a_pack_needs_consecutive_blocks() -> None:
    with pytest.raises(ValueError, match="consecutive"):
        encode_pack({0: block_inputs(0), 2: block_inputs(2)})


def test_pack_lines_are_the_blocks_after_a_header_of_offsets() -> None:
    pack = encode_pack({3: block_inputs(3), 4: block_inputs(4)})
    header, *lines = pack.splitlines()
    assert len(lines) == 2
    assert [inputs.replicate for inputs in decode_block(lines[1])] == list(block_replicates(4))
    assert b'"blocks":[3,4]' in header


def test_publish_writes_one_pack_per_run_and_the_reader_gets_every_replicate(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    blocks = {block: block_inputs(block) for block in (0, 1, 2, 5)}
    publish_inputs(store, DATASET, blocks)
    assert sorted(store.list_keys(inputs_prefix(DATASET))) == [
        inputs_pack_key(DATASET, range(0, 3)),
        inputs_pack_key(DATASET, range(5, 6)),
    ]
    assert published_packs(store, DATASET) == {
        0: inputs_pack_key(DATASET, range(0, 3)),
        1: inputs_pack_key(DATASET, range(0, 3)),
        2: inputs_pack_key(DATASET, range(0, 3)),
        5: inputs_pack_key(DATASET, range(5, 6)),
    }
    reader = InputReader(store, DATASET)
    for replicate in (0, 150, 299, 5 * INPUT_BLOCK_SIZE + 7):
        got = reader.replicate(replicate)
        want = blocks[replicate // INPUT_BLOCK_SIZE][replicate % INPUT_BLOCK_SIZE]
        assert got.replicate == replicate
        np.testing.assert_array_equal(got.values["y"], want.values["y"])
        assert got.values["lambda"] == float(replicate)


def test_the_reader_fetches_only_the_byte_range_of_the_blocks_it_needs(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    publish_inputs(store, DATASET, {block: block_inputs(block) for block in range(10)})
    pack_key = inputs_pack_key(DATASET, range(10))
    pack_size = len(store.get(pack_key))

    reader = InputReader(store, DATASET)
    reader.prefetch(range(3 * INPUT_BLOCK_SIZE + 50, 5 * INPUT_BLOCK_SIZE + 10))  # blocks 3..5
    assert store.listings == 1
    header_read, blocks_read = store.ranges
    assert header_read[1] == 0
    assert blocks_read[0] == pack_key
    assert blocks_read[2] - blocks_read[1] < 0.4 * pack_size  # 3 of 10 blocks
    for replicate in (350, 499, 509):
        assert reader.replicate(replicate).replicate == replicate
    assert len(store.ranges) == 2  # everything came from the prefetch


def test_a_header_longer_than_the_first_probe_is_read_in_doublings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs_store, "HEADER_PROBE_BYTES", 8)
    store = CountingStore(tmp_path)
    publish_inputs(store, DATASET, {block: block_inputs(block) for block in range(4)})
    assert (
        InputReader(store, DATASET).replicate(3 * INPUT_BLOCK_SIZE + 1).replicate == 3 * INPUT_BLOCK_SIZE + 1
    )
    probes = [stop for _, start, stop in store.ranges if start == 0]
    assert probes[:3] == [8, 16, 32]


def test_a_replicate_without_published_inputs_is_a_clear_error(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    publish_inputs(store, DATASET, {0: block_inputs(0)})
    store.put(f"{inputs_prefix(DATASET)}notes.txt", b"not a pack")
    with pytest.raises(StanFleetError, match=r"input block 1\) are not in the store"):
        InputReader(store, DATASET).replicate(INPUT_BLOCK_SIZE)
