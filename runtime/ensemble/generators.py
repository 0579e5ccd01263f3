"""Generators of simulated ensembles: a Stan program (fixed_param) or a Python function.

Both simulate whole input blocks (``keys.INPUT_BLOCK_SIZE`` replicates) with seeds derived from the
dataset id and the block or replicate, so a replicate's inputs never depend on the ensemble's size, nor
on the model fitted to them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.engines.base import CompiledModel, Engine
from runtime.ensemble.spec import GeneratorSource, generator_seed
from runtime.errors import StanFleetError
from runtime.model.conform import SimulatedReplicate
from runtime.model.stan_info import ModelInfo, read_model_info
from runtime.store.keys import INPUT_BLOCK_SIZE, block_replicates
from runtime.store.protocol import ObjectStore

PythonGeneratorFunction = Callable[
    [np.random.Generator, Mapping[str, Any]], tuple[Mapping[str, Any], Mapping[str, Any]]
]


class Generator(Protocol):
    """Simulates the replicates of one input block."""

    source: GeneratorSource

    def simulate_block(self, dataset_id: str, block: int) -> list[SimulatedReplicate]:
        """Return the generator's output for every replicate of ``block``, in replicate order."""
        ...

    def publish_sources(self, store: ObjectStore, dataset_id: str) -> None:
        """Write what the datasets are drawn from beside the dataset spec (posterior SBC's reference fit)."""
        ...


class StanGenerator:
    """A Stan program whose generated quantities name the model's parameters and simulated data."""

    def __init__(
        self, stan_file: Path, engine: Engine, model: ModelInfo, base_data: Mapping[str, Any]
    ) -> None:
        info = read_model_info(stan_file)
        produced = set(info.generated_quantities) | set(info.transformed_parameters)
        needed = list(model.parameters) + [name for name in model.inputs if name not in base_data]
        missing = [name for name in needed if name not in produced]
        if missing:
            raise StanFleetError(
                f"generator {stan_file.name} does not generate {', '.join(map(repr, missing))}, which the "
                "model needs (generated quantities must name every model parameter and every data "
                "variable not given by --data)"
            )
        self.source = GeneratorSource(kind="stan", code=stan_file.read_text())
        self._compiled: CompiledModel | None = None
        self._stan_file = stan_file
        self._engine = engine
        self._base_data = dict(base_data)

    def simulate_block(self, dataset_id: str, block: int) -> list[SimulatedReplicate]:
        """Run fixed_param once for the whole block; keep every variable the program generates."""
        if self._compiled is None:
            self._compiled = self._engine.compile(self._stan_file)
        seed = generator_seed(dataset_id, block)
        output = self._compiled.fixed_param(self._base_data, INPUT_BLOCK_SIZE, seed)
        return [
            SimulatedReplicate(replicate, {name: np.asarray(values[draw]) for name, values in output.items()})
            for draw, replicate in enumerate(block_replicates(block))
        ]

    def publish_sources(self, store: ObjectStore, dataset_id: str) -> None:
        """Nothing: the dataset spec holds the generator's code."""


class PythonGenerator:
    """``package.module:function`` called as ``function(rng, base_data) -> (true_values, data)``."""

    def __init__(self, target: str, base_data: Mapping[str, Any]) -> None:
        self._function = load_python_generator(target)
        self.source = GeneratorSource(kind="python", code=function_source(self._function), target=target)
        self._base_data = dict(base_data)
        self._target = target

    def simulate_block(self, dataset_id: str, block: int) -> list[SimulatedReplicate]:
        """Call the function once per replicate with its own seeded numpy Generator."""
        simulations = []
        for replicate in block_replicates(block):
            rng = np.random.default_rng(generator_seed(dataset_id, replicate))
            output = self._function(rng, self._base_data)
            if not (
                isinstance(output, tuple) and len(output) == 2 and all(isinstance(o, Mapping) for o in output)
            ):
                raise StanFleetError(
                    f"generator {self._target} must return a pair of dicts (true_values, data), "
                    f"got {type(output).__name__}"
                )
            true_values, data = output
            if both := sorted(set(true_values) & set(data)):
                raise StanFleetError(
                    f"generator {self._target} returns {', '.join(map(repr, both))} both as a true value "
                    "and as data"
                )
            values = {name: np.asarray(value) for name, value in {**true_values, **data}.items()}
            simulations.append(SimulatedReplicate(replicate, values))
        return simulations

    def publish_sources(self, store: ObjectStore, dataset_id: str) -> None:
        """Nothing: the dataset spec holds the module's source."""


def load_python_generator(target: str) -> PythonGeneratorFunction:
    """Import the ``--generator`` ``package.module:function``; a clear error when it cannot be found."""
    return load_function(
        target, flag="--generator", what="generator", expected="a .stan file or package.module:function"
    )


def load_function(target: str, *, flag: str, what: str, expected: str) -> Callable[..., Any]:
    """Import ``package.module:function`` given to ``flag``; a one-line error naming it when it cannot be found.

    ``expected`` says what ``flag`` takes, for the error on a target without ``module:function``.
    """
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise StanFleetError(f"{flag} must be {expected}, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StanFleetError(f"cannot import {what} module {module_name!r}: {exc}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise StanFleetError(f"{what} module {module_name!r} has no function {function_name!r}")
    return function


def function_source(function: Callable[..., Any]) -> str:
    """The source of the module defining ``function`` (kept in a dataset's identity)."""
    return inspect.getsource(inspect.getmodule(function) or function)


def open_generator(
    reference: str, engine: Engine, model: ModelInfo, base_data: Mapping[str, Any]
) -> Generator:
    """A Stan generator for a path ending in ``.stan``, else a Python ``module:function`` generator."""
    if reference.endswith(".stan"):
        path = Path(reference)
        if not path.is_file():
            raise StanFleetError(f"generator file not found: {reference}")
        return StanGenerator(path, engine, model, base_data)
    return PythonGenerator(reference, base_data)
