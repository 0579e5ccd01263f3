from runtime.store.keys import (
    INPUT_BLOCK_SIZE,
    block_of,
    block_replicates,
    blocks_of_inputs_pack_key,
    compiled_marker_key,
    dataset_spec_key,
    inputs_pack_key,
    replicate_of_result_key,
    result_key,
    run_key,
    spec_key,
)


def test_layout_is_stable() -> None:
    assert spec_key("abc") == "ensembles/abc/spec.json"
    assert run_key("abc") == "ensembles/abc/run.json"
    assert inputs_pack_key("abc", range(3, 10)) == "datasets/abc/inputs/blocks-00003-00009.jsonl"
    assert dataset_spec_key("abc") == "datasets/abc/spec.json"
    assert result_key("abc", 42) == "ensembles/abc/results/000042.json"


def test_result_key_round_trips() -> None:
    assert replicate_of_result_key(result_key("abc", 1234)) == 1234


def test_blocks_partition_replicates() -> None:
    assert block_of(0) == 0
    assert block_of(INPUT_BLOCK_SIZE - 1) == 0
    assert block_of(INPUT_BLOCK_SIZE) == 1
    assert list(block_replicates(1)) == list(range(INPUT_BLOCK_SIZE, 2 * INPUT_BLOCK_SIZE))


def test_input_pack_key_round_trips_and_ignores_other_keys() -> None:
    assert blocks_of_inputs_pack_key(inputs_pack_key("abc", range(0, 1))) == range(0, 1)
    assert blocks_of_inputs_pack_key(inputs_pack_key("abc", range(12, 20))) == range(12, 20)
    assert blocks_of_inputs_pack_key("datasets/abc/inputs/block-00003.json") is None
    assert blocks_of_inputs_pack_key("datasets/abc/inputs/blocks-x-y.jsonl") is None


def test_compiled_markers_change_with_job_definition_engine_and_model() -> None:
    key = compiled_marker_key("arn:fit:1", "cmdstanpy", "model {}")
    assert key.startswith("models/compiled/") and key.endswith(".json")
    assert key == compiled_marker_key("arn:fit:1", "cmdstanpy", "model {}")
    others = {
        compiled_marker_key("arn:fit:2", "cmdstanpy", "model {}"),
        compiled_marker_key("arn:fit:1", "pystan", "model {}"),
        compiled_marker_key("arn:fit:1", "cmdstanpy", "model { }"),
    }
    assert key not in others and len(others) == 3
