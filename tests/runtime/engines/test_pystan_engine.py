import time
from pathlib import Path

import httpstan.cache
import numpy as np
import pytest

from runtime.engines.base import Draws
from runtime.engines.pystan_engine import PyStanEngine, PyStanModel
from runtime.errors import StanFleetError
from runtime.settings import SamplerSettings

DATA = Path(__file__).parent.parent.parent / "data"
POISSON_DATA = {"N": 3, "y": [1, 4, 2]}
SMALL = SamplerSettings(chains=2, warmup=200, samples=200, thin=10)


@pytest.fixture(scope="module")
def poisson() -> PyStanModel:
    return PyStanEngine().compile(DATA / "poisson.stan")


@pytest.fixture(scope="module")
def layout() -> PyStanModel:
    return PyStanEngine().compile(DATA / "layout.stan")


@pytest.fixture(scope="module")
def poisson_draws(poisson: PyStanModel) -> Draws:
    return poisson.sample(POISSON_DATA, SMALL, seed=11)


def test_engine_name() -> None:
    assert PyStanEngine.name == "pystan"


def test_draws_are_chains_by_draws_by_dims_and_unthinned(poisson_draws: Draws) -> None:
    shapes = {name: values.shape for name, values in poisson_draws.variables.items()}
    assert shapes == {"lambda": (2, 200), "lambda_twice": (2, 200), "y_rep": (2, 200, 3)}
    for sampler_array in (poisson_draws.divergent, poisson_draws.treedepth, poisson_draws.energy):
        assert sampler_array.shape == (2, 200)
    assert poisson_draws.divergent.dtype == bool
    assert poisson_draws.treedepth.dtype == np.int64
    assert poisson_draws.max_treedepth == SMALL.max_treedepth
    assert np.all(poisson_draws.treedepth >= 1)


def test_variables_of_one_draw_line_up(poisson_draws: Draws) -> None:
    lam = poisson_draws.variables["lambda"]
    np.testing.assert_allclose(poisson_draws.variables["lambda_twice"], 2 * lam)
    assert np.all(lam > 0)
    assert 0.5 < lam.mean() < 5


def test_matrix_and_array_elements_land_at_their_indices(layout: PyStanModel) -> None:
    draws = layout.sample({}, SMALL, seed=5)
    rows, cols = np.indices((2, 3)) + 1
    assert draws.variables["M"].shape == (2, 200, 2, 3)
    np.testing.assert_allclose(draws.variables["M"].mean(axis=(0, 1)), 10 * rows + cols, atol=0.01)
    np.testing.assert_array_equal(draws.variables["M_t"], np.swapaxes(draws.variables["M"], -1, -2))
    np.testing.assert_array_equal(draws.variables["A"], np.broadcast_to(100 * rows + cols, (2, 200, 2, 3)))
    np.testing.assert_array_equal(draws.variables["v"], np.broadcast_to([1.0, 2.0, 3.0], (2, 200, 3)))


def test_chains_are_kept_apart(layout: PyStanModel) -> None:
    # z stays in the mode its chain started nearest to: one sign per chain, and (with this seed) both
    # signs across chains, so draws from different chains cannot have been interleaved.
    draws = layout.sample({}, SamplerSettings(chains=4, warmup=200, samples=200), seed=3)
    signs = np.sign(draws.variables["z"])
    assert all(len(set(chain)) == 1 for chain in signs)
    assert set(signs[:, 0]) == {-1.0, 1.0}


def test_same_seed_same_draws(poisson: PyStanModel, poisson_draws: Draws) -> None:
    again = poisson.sample(POISSON_DATA, SMALL, seed=11)
    for name, values in poisson_draws.variables.items():
        np.testing.assert_array_equal(again.variables[name], values)
    np.testing.assert_array_equal(again.energy, poisson_draws.energy)
    other = poisson.sample(POISSON_DATA, SMALL, seed=12)
    assert not np.array_equal(other.variables["lambda"], poisson_draws.variables["lambda"])


def test_sampler_settings_are_passed_through(poisson: PyStanModel, poisson_draws: Draws) -> None:
    shallow = poisson.sample(
        POISSON_DATA, SamplerSettings(chains=2, warmup=200, samples=200, max_treedepth=1), 11
    )
    assert shallow.max_treedepth == 1
    assert shallow.treedepth.max() == 1
    careful = poisson.sample(
        POISSON_DATA, SamplerSettings(chains=2, warmup=200, samples=200, adapt_delta=0.99), 11
    )
    assert not np.array_equal(careful.variables["lambda"], poisson_draws.variables["lambda"])


def test_runs_without_warmup(poisson: PyStanModel) -> None:
    draws = poisson.sample(POISSON_DATA, SamplerSettings(chains=2, warmup=0, samples=50), seed=1)
    assert draws.variables["lambda"].shape == (2, 50)


def test_fixed_param_evaluates_generated_quantities_at_the_inits(poisson: PyStanModel) -> None:
    out = poisson.fixed_param(POISSON_DATA, 5, seed=1, inits={"lambda": np.float64(3.0)})
    assert {name: values.shape for name, values in out.items()} == {
        "lambda": (5,),
        "lambda_twice": (5,),
        "y_rep": (5, 3),
    }
    np.testing.assert_allclose(out["lambda"], 3.0)  # constrained -> unconstrained -> constrained
    np.testing.assert_allclose(out["lambda_twice"], 6.0)
    assert np.all(out["y_rep"] >= 0)
    np.testing.assert_array_equal(out["y_rep"], np.round(out["y_rep"]))


def test_fixed_param_is_seeded(poisson: PyStanModel) -> None:
    first = poisson.fixed_param(POISSON_DATA, 20, seed=4, inits={"lambda": 3.0})
    second = poisson.fixed_param(POISSON_DATA, 20, seed=4, inits={"lambda": 3.0})
    np.testing.assert_array_equal(first["y_rep"], second["y_rep"])


def test_fixed_param_keeps_element_order(layout: PyStanModel) -> None:
    M = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = layout.fixed_param({}, 3, seed=1, inits={"M": M, "z": 0.5})
    np.testing.assert_array_equal(out["M"], np.broadcast_to(M, (3, 2, 3)))
    np.testing.assert_array_equal(out["M_t"], np.broadcast_to(M.T, (3, 3, 2)))
    np.testing.assert_array_equal(out["z"], 0.5)


def test_bad_inits_name_stans_complaint(poisson: PyStanModel) -> None:
    with pytest.raises(
        StanFleetError, match=r"^poisson\.stan: fixed_param failed: lb_free: Lower bounded variable is -1"
    ):
        poisson.fixed_param(POISSON_DATA, 1, seed=1, inits={"lambda": -1.0})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"N": 3, "y": [1, 2]},
            r"mismatch in dimension declared and found in context; .*variable name=y; "
            r"position=0; dims declared=\(3\); dims found=\(2\) \(line 4: array\[N\] int<lower=0> y;\)$",
        ),
        (
            {"N": 3},
            r"variable does not exist; .*variable name=y; base type=int \(line 4: array\[N\] int<lower=0> y;\)$",
        ),
        (
            {"N": 2, "y": [1.5, 2]},
            r"int variable contained non-int values; .*variable name=y; base type=int \(line 4: array\[N\] int<lower=0> y;\)$",
        ),
        (
            {"N": 2, "y": [-1, 2]},
            r"y\[1\] is -1, but must be greater than or equal to 0\.0+ \(line 4: array\[N\] int<lower=0> y;\)$",
        ),
    ],
)
def test_data_errors_carry_stans_message(poisson: PyStanModel, data: dict[str, object], message: str) -> None:
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: Stan rejected the data: " + message):
        poisson.sample(data, SMALL, seed=1)
    with pytest.raises(StanFleetError, match=message):
        poisson.fixed_param(data, 1, seed=1)


def test_compile_error_carries_stancs_message() -> None:
    with pytest.raises(StanFleetError, match=r"^syntax_error\.stan does not compile: Syntax error"):
        PyStanEngine().compile(DATA / "syntax_error.stan")


def test_second_compile_hits_the_cache(poisson: PyStanModel) -> None:
    started = time.perf_counter()
    again = PyStanEngine().compile(DATA / "poisson.stan")
    assert time.perf_counter() - started < 5
    assert again == poisson


def test_calls_are_quiet(poisson: PyStanModel, capfd: pytest.CaptureFixture[str]) -> None:
    PyStanEngine().compile(DATA / "poisson.stan")
    poisson.sample(POISSON_DATA, SMALL, seed=2)
    poisson.fixed_param(POISSON_DATA, 2, seed=2)
    assert capfd.readouterr() == ("", "")


def test_fits_are_not_left_in_httpstans_cache(poisson: PyStanModel) -> None:
    poisson.sample(POISSON_DATA, SMALL, seed=99)
    poisson.fixed_param(POISSON_DATA, 2, seed=99)
    fits = httpstan.cache.model_directory(poisson.model_name) / "fits"
    assert list(fits.glob("*")) == []
