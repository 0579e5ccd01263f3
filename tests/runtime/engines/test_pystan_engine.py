"""What is particular to the PyStan engine; tests/runtime/engines/test_engine_contract.py holds what
every engine must do."""

import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpstan.cache
import numpy as np
import pytest

from runtime.engines import pystan_engine
from runtime.engines.base import Draws
from runtime.engines.pystan_engine import PyStanEngine, PyStanModel
from runtime.errors import StanFleetError
from tests.runtime.helpers.stan_cases import DATA, POISSON_DATA, SMALL

DATA_LINE = r" \(line 4: array\[N\] int<lower=0> y;\)$"


@pytest.fixture(scope="module")
def poisson() -> PyStanModel:
    return PyStanEngine().compile(DATA / "poisson.stan")


def test_draws_are_not_rounded(poisson: PyStanModel) -> None:
    # httpstan hands over full doubles, so a transformed parameter is exactly what Stan computed.
    draws: Draws = poisson.sample(POISSON_DATA, SMALL, seed=11)
    np.testing.assert_array_equal(draws.variables["lambda_twice"], 2 * draws.variables["lambda"])


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
            r"position=0; dims declared=\(3\); dims found=\(2\)" + DATA_LINE,
        ),
        ({"N": 3}, r"variable does not exist; .*variable name=y; base type=int" + DATA_LINE),
        (
            {"N": 2, "y": [1.5, 2]},
            r"int variable contained non-int values; .*variable name=y; base type=int" + DATA_LINE,
        ),
        ({"N": 2, "y": [-1, 2]}, r"y\[1\] is -1, but must be greater than or equal to 0\.0+" + DATA_LINE),
    ],
)
def test_data_errors_carry_stans_message_and_line(
    poisson: PyStanModel, data: dict[str, object], message: str
) -> None:
    # httpstan checks the data before any run, for NUTS and fixed_param alike.
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: Stan rejected the data: " + message):
        poisson.sample(data, SMALL, seed=1)
    with pytest.raises(StanFleetError, match=r"^poisson\.stan: Stan rejected the data: " + message):
        poisson.fixed_param(data, 1, seed=1)


def test_second_compile_hits_the_cache(poisson: PyStanModel) -> None:
    started = time.perf_counter()
    again = PyStanEngine().compile(DATA / "poisson.stan")
    assert time.perf_counter() - started < 5
    assert again == poisson


def test_fits_are_not_left_in_httpstans_cache(poisson: PyStanModel) -> None:
    poisson.sample(POISSON_DATA, SMALL, seed=99)
    poisson.fixed_param(POISSON_DATA, 2, seed=99)
    fits = httpstan.cache.model_directory(poisson.model_name) / "fits"
    assert list(fits.glob("*")) == []


def test_the_build_runs_outside_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpstan's C++ build writes ./build; it must land in StanFleet's cache, not in the user's folder.
    monkeypatch.setenv("STANFLEET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    build_dirs: list[Path] = []
    real_build = pystan_engine._build

    def recording_build(program_code: str) -> Coroutine[Any, Any, Any]:
        build_dirs.append(Path.cwd())
        return real_build(program_code)

    monkeypatch.setattr(pystan_engine, "_build", recording_build)
    model = PyStanEngine().compile(DATA / "poisson.stan")
    assert model.program_code == (DATA / "poisson.stan").read_text()
    assert build_dirs == [tmp_path / "cache" / "httpstan-build"]
    assert Path.cwd() == tmp_path
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"]


SAME_FITS_IN_TWO_PROCESSES = """
import sys, time
from runtime.engines.pystan_engine import PyStanEngine
from runtime.engines.settings import SamplerSettings
from tests.runtime.helpers.stan_cases import DATA, POISSON_DATA
model = PyStanEngine().compile(DATA / "poisson.stan")
settings = SamplerSettings(chains=4, warmup=1000, samples=1000, thin=10)
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.001)
failures = 0
for seed in range(15):
    try:
        model.sample(POISSON_DATA, settings, seed)
    except Exception as exc:
        failures += 1
        print(type(exc).__name__, str(exc)[:200], file=sys.stderr)
print(failures)
"""


@pytest.mark.slow
def test_the_same_fit_in_two_processes_at_once_succeeds_in_both(poisson: PyStanModel) -> None:
    # httpstan names a seeded fit by its request and keeps it in the user's cache, which both processes
    # share: the same request in two processes used to read and delete one file (KeyError NO_SUCH_FIELD).
    import os
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[3])
    start = str(time.time() + 4)  # both start sampling at this moment, once their imports are done
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SAME_FITS_IN_TWO_PROCESSES, start],
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert [stdout.strip() for stdout, _ in outputs] == ["0", "0"], [stderr[-2000:] for _, stderr in outputs]
