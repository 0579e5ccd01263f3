import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runtime.engines import cmdstan_available
from runtime.engines.base import Draws
from runtime.engines.cmdstanpy_engine import CmdStanPyEngine, CmdStanPyModel
from runtime.errors import StanFleetError
from runtime.settings import SamplerSettings

pytestmark = pytest.mark.skipif(
    not cmdstan_available(), reason="CmdStan is not installed (python -m cmdstanpy.install_cmdstan)"
)

REPO = Path(__file__).parents[3]
DATA = REPO / "tests" / "data"
POISSON_DATA = {"N": 3, "y": [1, 4, 2]}
SMALL = SamplerSettings(chains=2, warmup=200, samples=200, thin=10)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("stanfleet_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STANFLEET_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def poisson(cache_dir: Path) -> CmdStanPyModel:
    return CmdStanPyEngine().compile(DATA / "poisson.stan")


@pytest.fixture(scope="module")
def layout(cache_dir: Path) -> CmdStanPyModel:
    return CmdStanPyEngine().compile(DATA / "layout.stan")


@pytest.fixture(scope="module")
def poisson_draws(poisson: CmdStanPyModel) -> Draws:
    return poisson.sample(POISSON_DATA, SMALL, seed=11)


def test_engine_name() -> None:
    assert CmdStanPyEngine.name == "cmdstanpy"


def test_executable_lives_in_the_cache(poisson: CmdStanPyModel, cache_dir: Path) -> None:
    assert poisson.model.exe_file is not None
    assert Path(poisson.model.exe_file).is_relative_to(cache_dir.resolve() / "cmdstan")


def test_second_compile_reuses_the_executable(poisson: CmdStanPyModel) -> None:
    exe = Path(str(poisson.model.exe_file))
    built = exe.stat().st_mtime_ns
    again = CmdStanPyEngine().compile(DATA / "poisson.stan")
    assert again.model.exe_file == poisson.model.exe_file
    assert exe.stat().st_mtime_ns == built


def test_another_process_reuses_the_executable(poisson: CmdStanPyModel) -> None:
    exe = Path(str(poisson.model.exe_file))
    built = exe.stat().st_mtime_ns
    code = (
        "from pathlib import Path; from runtime.engines.cmdstanpy_engine import CmdStanPyEngine; "
        "print(CmdStanPyEngine().compile(Path('tests/data/poisson.stan')).model.exe_file)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(exe)
    assert exe.stat().st_mtime_ns == built


def test_draws_are_chains_by_draws_by_dims_and_unthinned(poisson_draws: Draws) -> None:
    shapes = {name: values.shape for name, values in poisson_draws.variables.items()}
    assert shapes == {"lambda": (2, 200), "lambda_twice": (2, 200), "y_rep": (2, 200, 3)}
    for sampler_array in (poisson_draws.divergent, poisson_draws.treedepth, poisson_draws.energy):
        assert sampler_array.shape == (2, 200)
    assert poisson_draws.divergent.dtype == bool
    assert poisson_draws.treedepth.dtype == np.int64
    assert poisson_draws.max_treedepth == SMALL.max_treedepth
    np.testing.assert_allclose(poisson_draws.variables["lambda_twice"], 2 * poisson_draws.variables["lambda"])


def test_matrix_and_array_elements_land_at_their_indices(layout: CmdStanPyModel) -> None:
    draws = layout.sample({}, SMALL, seed=5)
    rows, cols = np.indices((2, 3)) + 1
    np.testing.assert_allclose(draws.variables["M"].mean(axis=(0, 1)), 10 * rows + cols, atol=0.01)
    np.testing.assert_array_equal(draws.variables["M_t"], np.swapaxes(draws.variables["M"], -1, -2))
    np.testing.assert_array_equal(draws.variables["A"], np.broadcast_to(100 * rows + cols, (2, 200, 2, 3)))
    np.testing.assert_array_equal(draws.variables["v"], np.broadcast_to([1.0, 2.0, 3.0], (2, 200, 3)))


def test_chains_are_kept_apart(layout: CmdStanPyModel) -> None:
    # z stays in the mode its chain started nearest to: one sign per chain. With 8 chains both signs
    # show up (for all but about 1 seed in 128), so interleaved chains would be caught.
    draws = layout.sample({}, SamplerSettings(chains=8, warmup=200, samples=200), seed=3)
    signs = np.sign(draws.variables["z"])
    assert all(len(set(chain)) == 1 for chain in signs)
    assert set(signs[:, 0]) == {-1.0, 1.0}


def test_same_seed_same_draws(poisson: CmdStanPyModel, poisson_draws: Draws) -> None:
    again = poisson.sample(POISSON_DATA, SMALL, seed=11)
    for name, values in poisson_draws.variables.items():
        np.testing.assert_array_equal(again.variables[name], values)
    other = poisson.sample(POISSON_DATA, SMALL, seed=12)
    assert not np.array_equal(other.variables["lambda"], poisson_draws.variables["lambda"])


def test_sampler_settings_are_passed_through(poisson: CmdStanPyModel, poisson_draws: Draws) -> None:
    shallow = poisson.sample(
        POISSON_DATA, SamplerSettings(chains=2, warmup=200, samples=200, max_treedepth=1), 11
    )
    assert shallow.treedepth.max() == 1
    careful = poisson.sample(
        POISSON_DATA, SamplerSettings(chains=2, warmup=200, samples=200, adapt_delta=0.99), 11
    )
    assert not np.array_equal(careful.variables["lambda"], poisson_draws.variables["lambda"])


def test_runs_without_warmup(poisson: CmdStanPyModel) -> None:
    draws = poisson.sample(POISSON_DATA, SamplerSettings(chains=2, warmup=0, samples=50), seed=1)
    assert draws.variables["lambda"].shape == (2, 50)


def test_fixed_param_evaluates_generated_quantities_at_the_inits(poisson: CmdStanPyModel) -> None:
    out = poisson.fixed_param(POISSON_DATA, 5, seed=1, inits={"lambda": 3.0})
    assert {name: values.shape for name, values in out.items()} == {
        "lambda": (5,),
        "lambda_twice": (5,),
        "y_rep": (5, 3),
    }
    np.testing.assert_allclose(out["lambda"], 3.0)
    np.testing.assert_allclose(out["lambda_twice"], 6.0)


def test_fixed_param_keeps_element_order(layout: CmdStanPyModel) -> None:
    M = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = layout.fixed_param({}, 3, seed=1, inits={"M": M, "z": 0.5})
    np.testing.assert_allclose(out["M"], np.broadcast_to(M, (3, 2, 3)))
    np.testing.assert_allclose(out["M_t"], np.broadcast_to(M.T, (3, 3, 2)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"N": 3, "y": [1, 2]}, r"mismatch in dimension declared and found in context; .*variable name=y"),
        ({"N": 3}, r"variable does not exist; .*variable name=y"),
    ],
)
def test_data_errors_carry_stans_message(
    poisson: CmdStanPyModel, data: dict[str, object], message: str
) -> None:
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: sampling failed: " + message):
        poisson.sample(data, SMALL, seed=1)


def test_compile_error_carries_stancs_message(cache_dir: Path) -> None:
    with pytest.raises(StanFleetError, match=r"^syntax_error\.stan does not compile: Syntax error"):
        CmdStanPyEngine().compile(DATA / "syntax_error.stan")


def test_calls_are_quiet(poisson: CmdStanPyModel, capfd: pytest.CaptureFixture[str]) -> None:
    CmdStanPyEngine().compile(DATA / "poisson.stan")
    poisson.sample(POISSON_DATA, SMALL, seed=2)
    poisson.fixed_param(POISSON_DATA, 2, seed=2)
    assert capfd.readouterr() == ("", "")
