from runtime.keys import (
    INPUT_BLOCK_SIZE,
    block_of,
    block_replicates,
    inputs_key,
    replicate_of_result_key,
    result_key,
    spec_key,
)


def test_layout_is_stable() -> None:
    assert spec_key("abc") == "ensembles/abc/spec.json"
    assert inputs_key("abc", 3) == "ensembles/abc/inputs/block-00003.json"
    assert result_key("abc", 42) == "ensembles/abc/results/000042.json"


def test_result_key_round_trips() -> None:
    assert replicate_of_result_key(result_key("abc", 1234)) == 1234


def test_blocks_partition_replicates() -> None:
    assert block_of(0) == 0
    assert block_of(INPUT_BLOCK_SIZE - 1) == 0
    assert block_of(INPUT_BLOCK_SIZE) == 1
    assert list(block_replicates(1)) == list(range(INPUT_BLOCK_SIZE, 2 * INPUT_BLOCK_SIZE))
