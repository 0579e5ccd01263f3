"""Generators: Stan (fixed_param, real PyStan) and Python, seeded from the dataset id."""

from pathlib import Path

import numpy as np
import pytest

from runtime.engines.choice import get_engine
from runtime.ensemble.generators import PythonGenerator, StanGenerator, load_python_generator, open_generator
from runtime.errors import StanFleetError
from runtime.model.stan_info import read_model_info
from runtime.store.keys import INPUT_BLOCK_SIZE

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "poisson"
MODEL = read_model_info(EXAMPLE / "fit_data.stan")
BASE = {"N": 20}


def test_stan_generator_simulates_a_whole_block_reproducibly() -> None:
    generator = StanGenerator(EXAMPLE / "generative_ensemble.stan", get_engine("pystan"), MODEL, BASE)
    block = generator.simulate_block("dataset-a", 0)
    assert len(block) == INPUT_BLOCK_SIZE
    assert [simulation.replicate for simulation in block] == list(range(INPUT_BLOCK_SIZE))
    assert set(block[0].values) == {"lambda", "y"}  # everything the program generates, for any model
    assert np.shape(block[0].values["y"]) == (20,)
    lambdas = np.array([float(s.values["lambda"]) for s in block])
    assert np.all(lambdas >= 0)
    assert len(np.unique(lambdas)) == INPUT_BLOCK_SIZE
    again = generator.simulate_block("dataset-a", 0)
    np.testing.assert_array_equal(lambdas, [float(s.values["lambda"]) for s in again])
    other = generator.simulate_block("dataset-b", 0)
    assert float(other[0].values["lambda"]) != lambdas[0]
    assert generator.source.kind == "stan"
    assert "poisson_rng" in generator.source.code


def test_stan_generator_must_name_what_the_model_needs(tmp_path: Path) -> None:
    program = tmp_path / "gen.stan"
    program.write_text("data { int N; } generated quantities { real lambda = 1; }")
    with pytest.raises(StanFleetError, match=r"gen\.stan does not generate 'y', which the model needs"):
        StanGenerator(program, get_engine("pystan"), MODEL, BASE)


def test_python_generator_seeds_each_replicate_independently_of_the_block() -> None:
    generator = PythonGenerator("examples.poisson.generator:simulate", BASE)
    block0 = generator.simulate_block("dataset-a", 0)
    block1 = generator.simulate_block("dataset-a", 1)
    assert len(block0) == len(block1) == INPUT_BLOCK_SIZE
    assert block1[0].replicate == INPUT_BLOCK_SIZE
    assert set(block0[0].values) == {"lambda", "y"}  # true values and data, merged
    first = float(block0[0].values["lambda"])
    assert first == float(generator.simulate_block("dataset-a", 0)[0].values["lambda"])
    assert first != float(block1[0].values["lambda"])
    assert generator.source.target == "examples.poisson.generator:simulate"
    assert "def simulate" in generator.source.code


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", r"--generator must be a \.stan file or package\.module:function, got 'no_colon'"),
        ("no_such_module_x:f", r"cannot import generator module 'no_such_module_x'"),
        ("examples.poisson.generator:absent", r"has no function 'absent'"),
    ],
)
def test_python_generator_reference_errors(target: str, message: str) -> None:
    with pytest.raises(StanFleetError, match=message):
        load_python_generator(target)


def test_open_generator_picks_by_reference(tmp_path: Path) -> None:
    engine = get_engine("pystan")
    assert isinstance(
        open_generator(str(EXAMPLE / "generative_ensemble.stan"), engine, MODEL, BASE), StanGenerator
    )
    assert isinstance(
        open_generator("examples.poisson.generator:simulate", engine, MODEL, BASE), PythonGenerator
    )
    with pytest.raises(StanFleetError, match="generator file not found"):
        open_generator(str(tmp_path / "missing.stan"), engine, MODEL, BASE)
