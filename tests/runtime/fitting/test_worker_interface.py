"""The worker's replicate-list syntax and the environment it reads."""

import pytest

from runtime.errors import StanFleetError
from runtime.fitting.worker_interface import (
    WORKER_CORES_VARIABLE,
    child_index,
    parse_replicates,
    worker_cores,
)


def test_replicate_lists_take_single_numbers_and_ranges() -> None:
    assert parse_replicates("0-3,7,9-11,20") == [0, 1, 2, 3, 7, 9, 10, 11, 20]
    assert parse_replicates("5") == [5]
    assert parse_replicates("") == []


def test_the_child_index_adds_the_offset_to_the_array_index() -> None:
    assert child_index({"AWS_BATCH_JOB_ARRAY_INDEX": "3"}) == 3
    assert child_index({"AWS_BATCH_JOB_ARRAY_INDEX": "3", "STANFLEET_CHILD_OFFSET": "10"}) == 13
    assert child_index({}) == 0


def test_worker_cores_come_from_the_environment() -> None:
    assert worker_cores({}) == 1
    assert worker_cores({WORKER_CORES_VARIABLE: "4"}) == 4
    with pytest.raises(StanFleetError, match=r"^STANFLEET_WORKER_CORES must be a positive integer, got '0'$"):
        worker_cores({WORKER_CORES_VARIABLE: "0"})
