import pytest

from runtime.store.keys import (
    INPUT_BLOCK_SIZE,
    MAX_RUNS_PER_BATCH_KEY,
    block_of,
    block_replicates,
    blocks_of_inputs_pack_key,
    compiled_marker_key,
    dataset_spec_key,
    inputs_pack_key,
    is_result_batch_key,
    replicates_of_result_key,
    result_batch_groups,
    result_batch_key,
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
    assert replicates_of_result_key(result_key("abc", 1234)) == [1234]
    assert not is_result_batch_key(result_key("abc", 1234))


def test_a_batch_key_names_its_replicates_as_ranges_and_round_trips() -> None:
    key = result_batch_key("abc", [41, 20, 21, 22, 39, 38, 7], "w3f9")
    assert key == "ensembles/abc/results/batch.000007_000020-000022_000038-000039_000041.w3f9.jsonl"
    assert is_result_batch_key(key)
    assert replicates_of_result_key(key) == [7, 20, 21, 22, 38, 39, 41]
    assert replicates_of_result_key(result_batch_key("abc", range(1000, 1200), "a")) == list(
        range(1000, 1200)
    )
    for replicates, writer in (([], "a"), ([1], "a.b"), ([1], "")):
        with pytest.raises(ValueError, match="a batch needs replicates and an alphanumeric writer"):
            result_batch_key("abc", replicates, writer)


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


def test_batch_groups_name_at_most_the_maximum_of_runs_each() -> None:
    scattered = [1, 2, 3, *range(5, 40, 2), 40, 41]
    groups = result_batch_groups(scattered)
    assert [r for group in groups for r in group] == scattered
    assert groups[0] == [1, 2, 3, *range(5, 27, 2)]  # 1-3, then 11 single replicates: 12 runs
    for group in groups:
        result_batch_key("abc", group, "w")  # each names few enough runs
    assert result_batch_groups(list(range(500))) == [list(range(500))]  # one run: one group
    assert result_batch_groups([]) == []
    with pytest.raises(ValueError, match=f"at most {MAX_RUNS_PER_BATCH_KEY} runs"):
        result_batch_key("abc", scattered, "w")
