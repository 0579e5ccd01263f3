from pathlib import Path

import pytest

from runtime.errors import StanFleetError
from runtime.model.conform import load_base_data


def test_no_file_means_no_base_data() -> None:
    assert load_base_data(None) == {}


def test_reads_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"N": 3, "x": [1.5, 2]}')
    assert load_base_data(path) == {"N": 3, "x": [1.5, 2]}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StanFleetError, match="--data file not found"):
        load_base_data(tmp_path / "nope.json")


def test_invalid_json_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"N": 3,\n "y": }')
    with pytest.raises(StanFleetError, match="is not valid JSON: Expecting value at line 2 column 7"):
        load_base_data(path)


def test_json_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text("[1, 2]")
    with pytest.raises(StanFleetError, match=r"must hold a JSON object .* got list"):
        load_base_data(path)


def test_unreadable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StanFleetError, match="--data file"):
        load_base_data(path)
