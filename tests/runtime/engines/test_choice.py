import subprocess
import sys

import pytest

import runtime.engines.choice as engines
from runtime.engines.choice import ENGINE_NAMES, get_engine, resolve_engine_name
from runtime.errors import StanFleetError
from runtime.model.stan_info import cmdstan_home
from tests.runtime.helpers.engines_present import REQUIRE_CMDSTAN


def test_engine_names() -> None:
    assert ENGINE_NAMES == ("auto", "cmdstanpy", "pystan")


@pytest.mark.parametrize(("installed", "expected"), [(True, "cmdstanpy"), (False, "pystan")])
def test_auto_prefers_cmdstan_when_installed(
    monkeypatch: pytest.MonkeyPatch, installed: bool, expected: str
) -> None:
    monkeypatch.setattr(engines, "cmdstan_available", lambda: installed)
    assert resolve_engine_name("auto") == expected


@pytest.mark.parametrize("name", ["cmdstanpy", "pystan"])
def test_explicit_names_are_kept(name: str) -> None:
    assert resolve_engine_name(name) == name


def test_unknown_engine_lists_the_choices() -> None:
    with pytest.raises(
        StanFleetError, match=r"^--engine must be one of auto, cmdstanpy, pystan, got 'rstan'$"
    ):
        resolve_engine_name("rstan")


def test_cmdstan_available_agrees_with_cmdstanpy() -> None:
    assert engines.cmdstan_available() == (cmdstan_home() is not None)


@pytest.mark.skipif(not REQUIRE_CMDSTAN, reason="STANFLEET_REQUIRE_CMDSTAN is not set")
def test_cmdstan_is_installed_where_it_is_required() -> None:
    assert engines.cmdstan_available(), (
        "STANFLEET_REQUIRE_CMDSTAN=1 but CmdStan is not installed (CMDSTAN unset?)"
    )
    assert get_engine("auto").name == "cmdstanpy"


def test_get_engine_pystan() -> None:
    assert get_engine("pystan").name == "pystan"


def test_get_engine_auto_without_cmdstan_is_pystan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "cmdstan_available", lambda: False)
    assert get_engine("auto").name == "pystan"


def test_cmdstanpy_without_cmdstan_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "cmdstan_available", lambda: False)
    with pytest.raises(StanFleetError, match=r"^--engine cmdstanpy needs CmdStan, which is not installed"):
        get_engine("cmdstanpy")


def test_importing_the_package_loads_no_stan_library() -> None:
    code = "import sys, runtime.engines.choice; print(sorted({'stan', 'cmdstanpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_engine_that_is_not_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "runtime.engines.pystan_engine", None)  # as on an arm64 image
    with pytest.raises(StanFleetError, match=r"^engine pystan is not installed here .*pip install pystan$"):
        get_engine("pystan")
