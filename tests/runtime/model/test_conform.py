from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.errors import StanFleetError
from runtime.model.conform import (
    ReplicateInputs,
    SimulatedReplicate,
    conform_base_data,
    conform_replicate,
    load_base_data,
    simulated_data_names,
)
from runtime.model.stan_info import Declaration, ModelInfo

MODEL = ModelInfo(
    inputs={"N": Declaration("int", 0), "y": Declaration("int", 1), "X": Declaration("real", 2)},
    parameters={"lambda": Declaration("real", 0), "beta": Declaration("real", 1)},
    transformed_parameters={},
    generated_quantities={},
)
BASE = {"N": 3, "X": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}


def simulated(replicate: int, true_values: dict[str, Any], data: dict[str, Any]) -> SimulatedReplicate:
    """A generator's output: true values and data under their names (raw, as a generator gives them)."""
    return SimulatedReplicate(replicate, {**true_values, **data})


def test_simulated_data_are_the_inputs_the_base_data_lacks() -> None:
    assert simulated_data_names(MODEL, BASE) == ["y"]
    assert simulated_data_names(MODEL, {}) == ["N", "y", "X"]


def test_int_data_given_as_floats_are_cast() -> None:
    inputs = conform_replicate(
        MODEL, BASE, simulated(7, {"lambda": 2.0, "beta": [1, 2]}, {"y": np.array([1.0, 0.0, 4.0])})
    )
    assert inputs.replicate == 7
    assert inputs.data["y"].dtype == np.int64
    assert inputs.data["y"].tolist() == [1, 0, 4]
    assert inputs.true_values["beta"].dtype == float


def test_non_integer_int_data_are_rejected() -> None:
    with pytest.raises(
        StanFleetError, match=r"'y' is declared int in the model, got non-integer values \(replicate 0\)"
    ):
        conform_replicate(MODEL, BASE, simulated(0, {"lambda": 2.0, "beta": [1, 2]}, {"y": [1.5, 0, 4]}))


def test_missing_parameter_is_named() -> None:
    with pytest.raises(StanFleetError, match="no true value for parameter 'beta'"):
        conform_replicate(MODEL, BASE, simulated(0, {"lambda": 2.0}, {"y": [1, 0, 4]}))


def test_missing_data_variable_is_named() -> None:
    with pytest.raises(StanFleetError, match="no value for data variable 'y'"):
        conform_replicate(MODEL, BASE, simulated(0, {"lambda": 2.0, "beta": [1, 2]}, {}))


def test_wrong_number_of_dimensions_is_named() -> None:
    with pytest.raises(StanFleetError, match=r"'beta' is declared with 1 dimension\(s\) .* shape \(2, 2\)"):
        conform_replicate(
            MODEL, BASE, simulated(0, {"lambda": 2.0, "beta": [[1, 2], [3, 4]]}, {"y": [1, 0, 4]})
        )


def test_non_numeric_and_non_finite_values_are_rejected() -> None:
    with pytest.raises(StanFleetError, match="'lambda' must be numeric"):
        conform_replicate(MODEL, BASE, simulated(0, {"lambda": "a lot", "beta": [1, 2]}, {"y": [1, 0, 4]}))
    with pytest.raises(StanFleetError, match="'lambda' contains non-finite values"):
        conform_replicate(
            MODEL, BASE, simulated(0, {"lambda": float("nan"), "beta": [1, 2]}, {"y": [1, 0, 4]})
        )


def test_base_data_is_cast_and_extra_names_pass_through() -> None:
    conformed = conform_base_data(MODEL, {"N": 3.0, "prior_scale": 2.5})
    assert conformed == {"N": 3, "prior_scale": 2.5}
    assert isinstance(conformed["N"], int)
    with pytest.raises(StanFleetError, match=r"'N' is declared int .* \(DATA.json\)"):
        conform_base_data(MODEL, {"N": 2.5})


def test_inputs_round_trip_through_json_form() -> None:
    inputs = conform_replicate(MODEL, BASE, simulated(4, {"lambda": 2.0, "beta": [1, 2]}, {"y": [1, 0, 4]}))
    back = ReplicateInputs.from_jsonable(inputs.to_jsonable())
    assert back.replicate == 4
    assert back.data["y"].dtype.kind == "i"
    np.testing.assert_array_equal(back.true_values["beta"], [1.0, 2.0])


def test_a_model_picks_its_own_variables_from_a_shared_simulation() -> None:
    output = simulated(2, {"lambda": 2.0, "beta": [1, 2], "sigma": 0.5}, {"y": [1.0, 0.0, 4.0]})
    inputs = conform_replicate(MODEL, BASE, output)
    assert set(inputs.true_values) == {"lambda", "beta"}  # sigma is another model version's
    assert set(inputs.data) == {"y"}
    back = SimulatedReplicate.from_jsonable(output.to_jsonable())
    assert back.replicate == 2
    np.testing.assert_array_equal(back.values["y"], [1.0, 0.0, 4.0])


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
