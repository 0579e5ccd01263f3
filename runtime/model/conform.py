"""Match generator output to the model's declarations and cast it to the declared types.

Names and types come from the model itself (``stanc --info``): every parameter of the model needs a
true value, and every data variable the base data does not give needs a simulated value. Int data
often arrives as floats (Stan's fixed_param output, numpy): it is cast when integral, rejected if not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import StanFleetError
from runtime.model.stan_info import Declaration, ModelInfo


@dataclass(frozen=True)
class ReplicateInputs:
    """One replicate's true parameter values and simulated data, conformed to the model."""

    replicate: int
    true_values: dict[str, np.ndarray]
    data: dict[str, np.ndarray]

    def to_jsonable(self) -> dict[str, Any]:
        """Plain-JSON form (nested lists)."""
        return {
            "replicate": self.replicate,
            "true_values": {k: v.tolist() for k, v in self.true_values.items()},
            "data": {k: v.tolist() for k, v in self.data.items()},
        }

    @classmethod
    def from_jsonable(cls, raw: Mapping[str, Any]) -> ReplicateInputs:
        """Inverse of :meth:`to_jsonable`; int data comes back as int arrays."""
        return cls(
            replicate=raw["replicate"],
            true_values={k: np.asarray(v, dtype=float) for k, v in raw["true_values"].items()},
            data={k: np.asarray(v) for k, v in raw["data"].items()},
        )


@dataclass(frozen=True)
class SimulatedReplicate:
    """One replicate as the generator made it: every variable it generated, under its own name.

    Stored as is in a dataset set, so that any model version can pick its parameters and data from it.
    """

    replicate: int
    values: dict[str, np.ndarray]

    def to_jsonable(self) -> dict[str, Any]:
        """Plain-JSON form (nested lists)."""
        return {
            "replicate": self.replicate,
            "values": {k: np.asarray(v).tolist() for k, v in self.values.items()},
        }

    @classmethod
    def from_jsonable(cls, raw: Mapping[str, Any]) -> SimulatedReplicate:
        """Inverse of :meth:`to_jsonable`."""
        return cls(replicate=raw["replicate"], values={k: np.asarray(v) for k, v in raw["values"].items()})


def simulated_data_names(model: ModelInfo, base_data: Mapping[str, Any]) -> list[str]:
    """The model's data variables that the base data does not give: the generator must simulate them."""
    return [name for name in model.inputs if name not in base_data]


def conform_base_data(
    model: ModelInfo, base_data: Mapping[str, Any], where: str = "DATA.json"
) -> dict[str, Any]:
    """Cast base data (DATA.json, or the file ``where`` names) to the model's declared types.

    Names the model does not declare pass through unchanged (a generator may use them).
    """
    conformed = dict(base_data)
    for name, value in base_data.items():
        if name in model.inputs:
            conformed[name] = conform_value(name, value, model.inputs[name], where).tolist()
    return conformed


def conform_replicate(
    model: ModelInfo, base_data: Mapping[str, Any], simulation: SimulatedReplicate
) -> ReplicateInputs:
    """Pick and cast one replicate's true values and data from the generator's output.

    Raise StanFleetError naming any mismatch.
    """
    replicate, values = simulation.replicate, simulation.values
    where = f"replicate {replicate}"
    truths: dict[str, np.ndarray] = {}
    for name, declaration in model.parameters.items():
        if name not in values:
            raise StanFleetError(
                f"the generator gives no true value for parameter {name!r} of the model ({where})"
            )
        truths[name] = conform_value(name, values[name], declaration, where).astype(float)
    data: dict[str, np.ndarray] = {}
    for name in simulated_data_names(model, base_data):
        if name not in values:
            raise StanFleetError(
                f"the generator gives no value for data variable {name!r}, which the model needs "
                f"and the base data does not give ({where})"
            )
        data[name] = conform_value(name, values[name], model.inputs[name], where)
    return ReplicateInputs(replicate=replicate, true_values=truths, data=data)


def conform_value(name: str, value: Any, declaration: Declaration, where: str) -> np.ndarray:
    """Check a value's number of dimensions and finiteness, and cast it to the declared type."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise StanFleetError(f"{name!r} must be numeric ({where}), got {type(value).__name__}") from None
    if array.ndim != declaration.ndims:
        raise StanFleetError(
            f"{name!r} is declared with {declaration.ndims} dimension(s) in the model, "
            f"got an array of shape {array.shape} ({where})"
        )
    if declaration.type == "int":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise StanFleetError(f"{name!r} is declared int in the model, got non-integer values ({where})")
        return array.astype(np.int64)
    if declaration.type != "real":
        raise StanFleetError(f"{name!r} has type {declaration.type!r}, which StanFleet does not support")
    if not np.all(np.isfinite(array)):
        raise StanFleetError(f"{name!r} contains non-finite values ({where})")
    return array


def load_base_data(path: Path | None, flag: str = "--data") -> dict[str, Any]:
    """Read a JSON object of Stan data given to ``flag``; no file means no data."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise StanFleetError(f"{flag} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StanFleetError(f"cannot read {flag} file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise StanFleetError(
            f"{flag} file {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(raw, dict):
        raise StanFleetError(
            f"{flag} file {path} must hold a JSON object of variable names to values, "
            f"got {type(raw).__name__}"
        )
    return raw
