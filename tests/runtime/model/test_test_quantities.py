import pytest

from runtime.errors import StanFleetError
from runtime.model.stan_info import Declaration, ModelInfo
from runtime.model.test_quantities import resolve_test_quantities

REAL = Declaration("real", 0)
INFO = ModelInfo(
    inputs={"N": Declaration("int", 0)},
    parameters={"mu": REAL},
    transformed_parameters={"mu_squared": REAL},
    generated_quantities={"log_lik": Declaration("real", 1), "y_rep": Declaration("int", 1)},
)


def test_nothing_named_means_no_test_quantities() -> None:
    assert resolve_test_quantities(None, INFO, "m.stan") == ()


def test_all_is_every_transformed_parameter_and_generated_quantity_in_declaration_order() -> None:
    assert resolve_test_quantities("all", INFO, "m.stan") == ("mu_squared", "log_lik", "y_rep")


def test_names_keep_their_order_once_each() -> None:
    assert resolve_test_quantities("y_rep, mu_squared,y_rep", INFO, "m.stan") == ("y_rep", "mu_squared")


@pytest.mark.parametrize(
    ("requested", "info", "message"),
    [
        (
            "mu",
            INFO,
            r"^--test-quantities: 'mu' is a parameter of m\.stan, and parameters are always ranked$",
        ),
        (
            "mu_squared,sigma",
            INFO,
            r"^--test-quantities: m\.stan has no transformed parameter or generated quantity 'sigma' "
            r"\(it declares: mu_squared, log_lik, y_rep\)$",
        ),
        ("mu_squared,", INFO, r"^--test-quantities has an empty name in 'mu_squared,'$"),
        (
            "all",
            ModelInfo(inputs={}, parameters={"mu": REAL}, transformed_parameters={}, generated_quantities={}),
            r"^--test-quantities all: m\.stan declares no transformed parameters or generated quantities$",
        ),
    ],
)
def test_names_the_model_does_not_declare_are_refused_in_one_line(
    requested: str, info: ModelInfo, message: str
) -> None:
    with pytest.raises(StanFleetError, match=message):
        resolve_test_quantities(requested, info, "m.stan")
