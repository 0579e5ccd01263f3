"""What every engine (runtime/engines/base.py) must do, run against PyStan and CmdStanPy alike.

Each engine's own file adds what is particular to it: its caches and the exact form of its messages.
"""

import asyncio
import re

import numpy as np
import pytest

from runtime.engines.base import CompiledModel, Draws, Engine
from runtime.engines.settings import SamplerSettings
from runtime.errors import StanFleetError
from tests.runtime.helpers.engines_present import ENGINES
from tests.runtime.helpers.stan_cases import (
    DATA,
    DATA_ERRORS,
    LONG,
    POISSON_DATA,
    SMALL,
    kill_samplers_once_running,
)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "cmdstanpy":
        request.getfixturevalue("cache_dir")  # CmdStanPy compiles into $STANFLEET_CACHE_DIR
        from runtime.engines.cmdstanpy_engine import CmdStanPyEngine

        return CmdStanPyEngine()
    from runtime.engines.pystan_engine import PyStanEngine

    return PyStanEngine()


@pytest.fixture(scope="module")
def poisson(engine: Engine) -> CompiledModel:
    return engine.compile(DATA / "poisson.stan")


@pytest.fixture(scope="module")
def layout(engine: Engine) -> CompiledModel:
    return engine.compile(DATA / "layout.stan")


@pytest.fixture(scope="module")
def poisson_draws(poisson: CompiledModel) -> Draws:
    return poisson.sample(POISSON_DATA, SMALL, seed=11)


def test_engine_name(engine: Engine, request: pytest.FixtureRequest) -> None:
    assert type(engine).name == engine.name == request.node.callspec.params["engine"]


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
    # CmdStan's CSV files keep 6 significant digits, so lambda and lambda_twice are each rounded
    # there (a relative error of up to 1e-5 between them). test_pystan_engine.py checks exact equality.
    np.testing.assert_allclose(poisson_draws.variables["lambda_twice"], 2 * lam, rtol=2e-5)
    assert np.all(lam > 0)
    # The exact posterior, gamma(9, 4), has mean 2.25 and sd 0.75: 4000 draws put the mean within 0.05 of
    # it (about four Monte Carlo standard errors) on any engine and Stan version (seed 11 gives 2.2538).
    assert lam.mean() == pytest.approx(2.25, abs=0.05)


def test_matrix_and_array_elements_land_at_their_indices(layout: CompiledModel) -> None:
    draws = layout.sample({}, SMALL, seed=5)
    rows, cols = np.indices((2, 3)) + 1
    assert draws.variables["M"].shape == (2, 200, 2, 3)
    np.testing.assert_allclose(draws.variables["M"].mean(axis=(0, 1)), 10 * rows + cols, atol=0.01)
    np.testing.assert_array_equal(draws.variables["M_t"], np.swapaxes(draws.variables["M"], -1, -2))
    np.testing.assert_array_equal(draws.variables["A"], np.broadcast_to(100 * rows + cols, (2, 200, 2, 3)))
    np.testing.assert_array_equal(draws.variables["v"], np.broadcast_to([1.0, 2.0, 3.0], (2, 200, 3)))


def test_chains_are_kept_apart(layout: CompiledModel) -> None:
    # z stays in the mode its chain started nearest to: one sign per chain. With 8 chains both signs
    # show up (for all but about 1 seed in 128), so interleaved chains would be caught.
    draws = layout.sample({}, SamplerSettings(chains=8, warmup=200, samples=200), seed=3)
    signs = np.sign(draws.variables["z"])
    assert all(len(set(chain)) == 1 for chain in signs)
    assert set(signs[:, 0]) == {-1.0, 1.0}


def test_same_seed_same_draws(poisson: CompiledModel, poisson_draws: Draws) -> None:
    again = poisson.sample(POISSON_DATA, SMALL, seed=11)
    for name, values in poisson_draws.variables.items():
        np.testing.assert_array_equal(again.variables[name], values)
    np.testing.assert_array_equal(again.energy, poisson_draws.energy)
    other = poisson.sample(POISSON_DATA, SMALL, seed=12)
    assert not np.array_equal(other.variables["lambda"], poisson_draws.variables["lambda"])


def test_sampler_settings_are_passed_through(poisson: CompiledModel, poisson_draws: Draws) -> None:
    shallow = poisson.sample(
        POISSON_DATA, SamplerSettings(chains=2, warmup=200, samples=200, max_treedepth=1), 11
    )
    assert shallow.max_treedepth == 1
    assert shallow.treedepth.max() == 1
    careful = poisson.sample(
        POISSON_DATA, SamplerSettings(chains=2, warmup=200, samples=200, adapt_delta=0.99), 11
    )
    assert not np.array_equal(careful.variables["lambda"], poisson_draws.variables["lambda"])


def test_runs_without_warmup(poisson: CompiledModel) -> None:
    draws = poisson.sample(POISSON_DATA, SamplerSettings(chains=2, warmup=0, samples=50), seed=1)
    assert draws.variables["lambda"].shape == (2, 50)


def test_fixed_param_evaluates_generated_quantities_at_the_inits(poisson: CompiledModel) -> None:
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


def test_fixed_param_is_seeded(poisson: CompiledModel) -> None:
    first = poisson.fixed_param(POISSON_DATA, 20, seed=4, inits={"lambda": 3.0})
    second = poisson.fixed_param(POISSON_DATA, 20, seed=4, inits={"lambda": 3.0})
    np.testing.assert_array_equal(first["y_rep"], second["y_rep"])


def test_fixed_param_keeps_element_order(layout: CompiledModel) -> None:
    M = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = layout.fixed_param({}, 3, seed=1, inits={"M": M, "z": 0.5})
    np.testing.assert_array_equal(out["M"], np.broadcast_to(M, (3, 2, 3)))
    np.testing.assert_array_equal(out["M_t"], np.broadcast_to(M.T, (3, 3, 2)))
    np.testing.assert_array_equal(out["z"], 0.5)


def test_quantities_at_values_keep_shapes_and_element_order(layout: CompiledModel) -> None:
    M = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = layout.quantities_at({}, {"M": M, "z": 0.5}, seed=1)  # no RNG: PyStan's write_array path
    assert {name: values.shape for name, values in out.items()} == {
        "M": (2, 3),
        "z": (),
        "M_t": (3, 2),
        "A": (2, 3),
        "v": (3,),
    }
    np.testing.assert_array_equal(out["M"], M)
    np.testing.assert_array_equal(out["M_t"], M.T)
    np.testing.assert_array_equal(out["A"], [[101, 102, 103], [201, 202, 203]])
    np.testing.assert_array_equal(out["v"], [1, 2, 3])


def test_quantities_at_values_seed_the_rng_calls(poisson: CompiledModel) -> None:
    first = poisson.quantities_at(POISSON_DATA, {"lambda": 30.0}, seed=4)
    assert first["lambda_twice"] == pytest.approx(60.0)
    again = poisson.quantities_at(POISSON_DATA, {"lambda": 30.0}, seed=4)
    np.testing.assert_array_equal(first["y_rep"], again["y_rep"])
    others = [poisson.quantities_at(POISSON_DATA, {"lambda": 30.0}, seed=s)["y_rep"] for s in (5, 6)]
    assert any(not np.array_equal(first["y_rep"], other) for other in others)


def test_quantities_at_values_outside_the_constraints_fail(
    layout: CompiledModel, poisson: CompiledModel
) -> None:
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: .*lambda"):
        poisson.quantities_at(POISSON_DATA, {"lambda": -1.0}, seed=1)
    with pytest.raises(StanFleetError, match=r"^layout\.stan: "):
        layout.quantities_at({}, {"M": np.ones((3, 3)), "z": 0.5}, seed=1)


@pytest.mark.parametrize(("data", "message"), DATA_ERRORS)
def test_data_errors_carry_stans_message(
    poisson: CompiledModel, data: dict[str, object], message: str
) -> None:
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: .*" + message):
        poisson.sample(data, SMALL, seed=1)
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: .*" + message):
        poisson.fixed_param(data, 1, seed=1)


def test_a_failed_initialization_is_one_line_and_keeps_the_full_text(engine: Engine) -> None:
    model = engine.compile(DATA / "no_valid_start.stan")
    with pytest.raises(StanFleetError) as caught:
        model.sample({}, SMALL, seed=1)
    message, detail = str(caught.value), caught.value.detail
    assert "\n" not in message
    # Stan's summary and the reason it rejected the initial values, without httpstan's or cmdstanpy's wrapping
    assert re.fullmatch(
        r"no_valid_start\.stan: sampling failed: Initialization between \(-2, 2\) failed after \d+ attempts: "
        r"Log probability evaluates to log\(0\).*",
        message,
    ), message
    assert detail is not None and "Initialization" in detail and len(detail) > len(message)


def test_compile_error_carries_stancs_message(engine: Engine) -> None:
    with pytest.raises(StanFleetError, match=r"^syntax_error\.stan does not compile: Syntax error"):
        engine.compile(DATA / "syntax_error.stan")


def test_engines_run_inside_a_running_event_loop_as_in_jupyter(poisson: CompiledModel) -> None:
    async def in_a_notebook_cell() -> Draws:
        return poisson.sample(POISSON_DATA, SMALL, seed=11)

    draws = asyncio.run(in_a_notebook_cell())
    assert draws.variables["lambda"].shape == (2, 200)


def test_calls_are_quiet(engine: Engine, poisson: CompiledModel, capfd: pytest.CaptureFixture[str]) -> None:
    engine.compile(DATA / "poisson.stan")
    poisson.sample(POISSON_DATA, SMALL, seed=2)
    poisson.fixed_param(POISSON_DATA, 2, seed=2)
    assert capfd.readouterr() == ("", "")


def test_a_killed_sampler_is_an_error_of_the_machinery_and_the_next_fit_runs(
    engine: Engine, poisson: CompiledModel
) -> None:
    import threading

    from runtime.errors import MachineryError

    killed: list[int] = []
    killer = threading.Thread(target=kill_samplers_once_running, args=(killed, engine.name))
    killer.start()
    try:
        with pytest.raises(
            MachineryError, match=r"^poisson\.stan: .*(killed by SIGKILL|sampler process died)"
        ):
            poisson.sample(POISSON_DATA, LONG, seed=3)
    finally:
        killer.join()
    assert killed
    draws = poisson.sample(POISSON_DATA, SMALL, seed=11)  # a new sampler runs the next fit
    assert draws.variables["lambda"].shape == (2, 200)
