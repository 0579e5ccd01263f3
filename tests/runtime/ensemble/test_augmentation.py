"""Posterior SBC's augmentation: --predictive pairs checked against the model, appends read from the
declarations of real programs, one-line refusals where they do not say how, and the --augment hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.ensemble.augmentation import (
    HookAugmentation,
    check_predictive,
    open_augmentation,
    parse_predictive,
    plan_augmentation,
)
from runtime.errors import StanFleetError
from runtime.model.dimensions import read_sized_declarations
from runtime.model.stan_info import read_model_info

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
REGRESSION = ROOT / "examples" / "regression" / "regression.stan"


def plan_for(program: Path, predictive: dict[str, str]):  # type: ignore[no-untyped-def]
    model = read_model_info(program)
    check_predictive(predictive, model, program.name)
    return plan_augmentation(predictive, model, read_sized_declarations(program), program.name)


def write(tmp_path: Path, body: str) -> Path:
    program = tmp_path / "model.stan"
    program.write_text(body)
    return program


def test_parse_predictive_takes_strings_or_a_mapping() -> None:
    assert parse_predictive(["y_rep=y", " z_rep = z "]) == {"y_rep": "y", "z_rep": "z"}
    assert parse_predictive("y_rep=y") == {"y_rep": "y"}
    assert parse_predictive({"y_rep": "y"}) == {"y_rep": "y"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["y_rep"], r"^--predictive must be QUANTITY=DATA \(e\.g\. y_rep=y\), got 'y_rep'$"),
        (["y_rep=y[1]"], r"must be QUANTITY=DATA"),
        ([], r"^--posterior needs at least one --predictive"),
        (["a=y", "b=y"], r"^--predictive names 'y' twice$"),
    ],
)
def test_parse_predictive_refuses_in_one_line(value: list[str], message: str) -> None:
    with pytest.raises(StanFleetError, match=message):
        parse_predictive(value)


@pytest.mark.parametrize(
    ("predictive", "message"),
    [
        (
            {"mu_hat": "y"},
            r"^--predictive mu_hat=y: 'mu_hat' is not a generated quantity of regression\.stan$",
        ),
        ({"alpha": "y"}, r"'alpha' is not a generated quantity"),
        ({"y_rep": "z"}, r"^--predictive y_rep=z: 'z' is not a data variable of regression\.stan$"),
        ({"y_rep": "N"}, r"^--predictive y_rep=N: 'y_rep' has 1 dimension\(s\) and 'N' has 0$"),
    ],
)
def test_check_predictive_names_the_mismatch(predictive: dict[str, str], message: str) -> None:
    with pytest.raises(StanFleetError, match=message):
        check_predictive(predictive, read_model_info(REGRESSION), "regression.stan")


def test_regression_appends_y_repeats_x_and_doubles_n() -> None:
    plan = plan_for(REGRESSION, {"y_rep": "y"})
    assert plan.sizes == {"N": ("y",)} and plan.repeated == {"N": ("x",)}
    assert plan.replaced == {"N", "x", "y"}
    observed = {"N": 3, "x": [0.1, 0.2, 0.3], "y": [1.0, 2.0, 3.0]}
    data = plan.augment(observed, {"y": np.array([7.0, 8.0, 9.0])})
    assert data["N"] == 6
    np.testing.assert_array_equal(data["x"], [0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(data["y"], [1.0, 2.0, 3.0, 7.0, 8.0, 9.0])


def test_rows_of_matrices_and_index_arrays_are_repeated_and_other_sizes_left(tmp_path: Path) -> None:
    program = write(
        tmp_path,
        "data { int N; int K; int J; matrix[N, K] X; array[N] int<lower=1, upper=J> group;"
        " vector[K] prior_scale; array[N] int<lower=0> y; }\n"
        "parameters { vector[K] beta; vector[J] a; }\n"
        "model { y ~ poisson_log(X * beta + a[group]); }\n"
        "generated quantities { array[N] int y_rep = poisson_log_rng(X * beta + a[group]); }\n",
    )
    plan = plan_for(program, {"y_rep": "y"})
    assert plan.repeated == {"N": ("X", "group")} and plan.replaced == {"N", "X", "group", "y"}
    data = plan.augment(
        {"N": 2, "X": [[1.0, 2.0], [3.0, 4.0]], "group": [1, 2], "y": [5, 6]}, {"y": np.array([7, 8])}
    )
    np.testing.assert_array_equal(data["X"], [[1, 2], [3, 4], [1, 2], [3, 4]])
    np.testing.assert_array_equal(data["group"], [1, 2, 1, 2])


def test_eight_schools_is_refused_naming_the_parameter_sized_by_j() -> None:
    model = DATA / "eight_schools_centered.stan"  # no y_rep: the plan reads only the declarations
    with pytest.raises(
        StanFleetError,
        match=r"^parameter 'theta' is sized by 'J' \(vector\[J\] theta\), so appending observations would "
        r"add parameters; pass --augment package\.module:function to build the data to fit$",
    ):
        plan_augmentation({"y_rep": "y"}, read_model_info(model), read_sized_declarations(model), model.name)


@pytest.mark.parametrize(
    ("data_block", "message"),
    [
        (
            "int N; vector[10] y;",
            r"^cannot append observations to 'y': its first dimension is '10', not an int data variable",
        ),
        ("int N; vector[N + 1] y;", r"its first dimension is 'N \+ 1', not an int data variable"),
        ("real N; vector[N] y;", None),  # not valid Stan: stanc refuses a real size
        (
            "int N; vector[N] y; matrix[2, N] Xt;",
            r"^cannot append observations to 'Xt': it is sized by 'N' beyond its first dimension \(matrix\[2, N\] Xt\)",
        ),
        (
            "int N; array[N] vector[N] y;",
            r"^cannot append observations to 'y': 'N' sizes more than its first dimension",
        ),
    ],
)
def test_declarations_that_do_not_say_how_are_refused_in_one_line(
    tmp_path: Path, data_block: str, message: str | None
) -> None:
    ndims = 2 if "array[N] vector" in data_block else 1
    rep_type = "array[N] vector[N]" if ndims == 2 else "vector[N]"
    body = (
        f"data {{ {data_block} }}\nparameters {{ real mu; }}\nmodel {{ mu ~ std_normal(); }}\n"
        f"generated quantities {{ {rep_type} y_rep; }}\n"
    )
    if message is None:
        with pytest.raises(StanFleetError, match="does not compile"):
            read_model_info(write(tmp_path, body))
        return
    with pytest.raises(StanFleetError, match=message) as raised:
        plan_for(write(tmp_path, body), {"y_rep": "y"})
    assert "\n" not in str(raised.value) and "--augment package.module:function" in str(raised.value)


def test_the_hook_builds_the_data_and_joins_the_identity() -> None:
    hook = HookAugmentation("tests.data.posterior.transposed_augment:append_columns")
    assert hook.replaced is None
    assert hook.identity["augment"] == "tests.data.posterior.transposed_augment:append_columns"
    assert "def append_columns" in hook.identity["augment_code"]
    observed = {"N": 2, "Xt": [[1.0, 2.0]], "y": [0.5, 0.7]}
    data = hook.augment(observed, {"y": np.array([0.1, 0.2])})
    assert data["N"] == 4
    np.testing.assert_array_equal(data["Xt"], [[1.0, 2.0, 1.0, 2.0]])
    assert observed["Xt"] == [[1.0, 2.0]]  # the hook got copies


def test_a_hook_is_taken_instead_of_the_declarations(tmp_path: Path) -> None:
    program = DATA / "posterior" / "transposed.stan"
    model = read_model_info(program)
    target = "tests.data.posterior.transposed_augment:append_columns"
    unread = open_augmentation(target, {"y_rep": "y"}, model, lambda: pytest.fail("declarations read"), "t")
    assert isinstance(unread, HookAugmentation)
    with pytest.raises(StanFleetError, match=r"^cannot append observations to 'Xt'"):
        open_augmentation(None, {"y_rep": "y"}, model, lambda: read_sized_declarations(program), "t")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", r"^--augment must be package\.module:function, got 'no_colon'$"),
        ("no_such_module_x:f", r"^cannot import augment module 'no_such_module_x'"),
        ("tests.data.posterior.transposed_augment:absent", r"has no function 'absent'$"),
    ],
)
def test_hook_reference_errors(target: str, message: str) -> None:
    with pytest.raises(StanFleetError, match=message):
        HookAugmentation(target)


def test_a_hook_returning_no_dict_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad_hook_module.py").write_text("def build(observed, simulated):\n    return [1]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = HookAugmentation("bad_hook_module:build")
    with pytest.raises(
        StanFleetError, match=r"^--augment bad_hook_module:build must return a dict of data, got list$"
    ):
        hook.augment({}, {})
