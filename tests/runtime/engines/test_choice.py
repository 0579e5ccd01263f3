import subprocess
import sys

import pytest

import runtime.engines.choice as engines
from runtime.engines.choice import ENGINE_NAMES, get_engine, resolve_engine_name
from runtime.engines.messages import trim_stan_message
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Error calling get_param_names: `Exception: mismatch in dimension declared and found in context; "
            "processing stage=data initialization; variable name=y; position=0; dims declared=(3); "
            "dims found=(2) (in '/tmp/httpstan_x/model_a.stan', line 1, column 23 to column 47)`",
            "mismatch in dimension declared and found in context; processing stage=data initialization; "
            "variable name=y; position=0; dims declared=(3); dims found=(2)",
        ),
        (
            'Exception during call to services function: `RuntimeError("Initialization failed. Rejecting '
            "initial value: Exception: lb_free: Lower bounded variable is -3, but must be greater than or "
            "equal to 0.000000 (in '/tmp/m.stan', line 2, column 13 to column 34)\")`, traceback: `[...]`",
            "lb_free: Lower bounded variable is -3, but must be greater than or equal to 0.000000",
        ),
        (
            "Error during sampling:\nException: variable does not exist; "
            "processing stage=data initialization; variable name=y; base type=int "
            "(in 'poisson.stan', line 3, column 2 to column 26)\n"
            "Command and output files:\n...",
            "variable does not exist; processing stage=data initialization; variable name=y; base type=int",
        ),
        (
            "Error calling get_param_names: `Exception: model_ab12_namespace::model_ab12: "
            "y[1] is -1, but must be greater than or equal to 0.000000 "
            "(in '/tmp/httpstan_x/model_ab12.stan', line 4, column 2)`",
            "y[1] is -1, but must be greater than or equal to 0.000000",
        ),
        (
            "Failed to compile Stan model 'm.stan'. Console:\nm.hpp:3: error: nope\nmake: *** Error 1",
            "m.hpp:3: error: nope",
        ),
        (  # httpstan's wrapping of a failed initialization (one line, quotes escaped)
            'Exception during call to services function: `RuntimeError("Initialization between (-2, 2) '
            "failed after 100 attempts. Try specifying initial values, reducing ranges of constrained values, "
            "or reparameterizing the model. Initialization failed. Rejecting initial value: Log probability "
            "evaluates to log(0), i.e. negative infinity. Stan can\\'t start sampling from this initial "
            'value. Rejecting initial value:")`, traceback: `[\'  File "services_stub.py", line 182\']`',
            "Initialization between (-2, 2) failed after 100 attempts: "
            "Log probability evaluates to log(0), i.e. negative infinity.",
        ),
        (  # CmdStan's console after cmdstanpy's "Error during sampling:"
            "Error during sampling:\n\nCommand and output files:\n...\nRejecting initial value:\n"
            "  Log probability evaluates to log(0), i.e. negative infinity.\n"
            "  Stan can't start sampling from this initial value.\n\n"
            "Initialization between (-2, 2) failed after 100 attempts. \n"
            " Try specifying initial values, reducing ranges of constrained values, or reparameterizing the model.\n"
            "Initialization failed.\n",
            "Initialization between (-2, 2) failed after 100 attempts: "
            "Log probability evaluates to log(0), i.e. negative infinity.",
        ),
        ("\n  something odd\nand more\n", "something odd"),
        ("", "(no message)"),
    ],
)
def test_trim_stan_message(text: str, expected: str) -> None:
    assert trim_stan_message(text) == expected


def test_trim_stan_message_quotes_the_statement_at_the_location() -> None:
    text = (
        "Rejecting initial value: Exception: lb_free: Lower bounded variable is -1, but must be greater "
        "than or equal to 0.000000 (in '/tmp/httpstan_x/model_ab12.stan', line 3, column 2 to column 23)"
    )
    program = "data {}\nparameters {\n  real<lower=0> lambda;\n}\n"
    assert trim_stan_message(text, program) == (
        "lb_free: Lower bounded variable is -1, but must be greater than or equal to 0.000000 "
        "(line 3: real<lower=0> lambda;)"
    )


def test_an_engine_that_is_not_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "runtime.engines.pystan_engine", None)  # as on an arm64 image
    with pytest.raises(StanFleetError, match=r"^engine pystan is not installed here .*pip install pystan$"):
        get_engine("pystan")
