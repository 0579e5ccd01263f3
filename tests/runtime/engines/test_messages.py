import pytest

from runtime.engines.messages import trim_stan_message


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
