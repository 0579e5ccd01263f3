"""What is particular to the CmdStanPy engine; tests/runtime/engines/test_engine_contract.py holds what
every engine must do."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.engines.cmdstanpy_engine import CmdStanPyEngine, CmdStanPyModel
from runtime.errors import StanFleetError
from tests.runtime.helpers.engines_present import requires_cmdstan
from tests.runtime.helpers.stan_cases import DATA, DATA_ERRORS, REPO, SMALL

pytestmark = requires_cmdstan


@pytest.fixture(scope="module")
def poisson(cache_dir: Path) -> CmdStanPyModel:
    return CmdStanPyEngine().compile(DATA / "poisson.stan")


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


@pytest.mark.parametrize(("data", "message"), DATA_ERRORS)
def test_data_errors_say_sampling_failed(
    poisson: CmdStanPyModel, data: dict[str, object], message: str
) -> None:
    # The wording is CmdStan's own and changes between versions (the image runs 2.36): only the
    # method, Stan's stage and variable, and the declaration StanFleet appends are pinned.
    declaration = r" \(line 4: array\[N\] int<lower=0> y;\)$"
    with pytest.raises(
        StanFleetError, match=r"^poisson\.stan: sampling failed: .*" + message + ".*" + declaration
    ):
        poisson.sample(data, SMALL, seed=1)
