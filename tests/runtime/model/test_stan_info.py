import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import StanFleetError
from runtime.model import stan_info
from runtime.model.stan_info import Declaration, find_stanc, read_model_info

DATA = Path(__file__).resolve().parents[2] / "data"
ROOT = Path(__file__).resolve().parents[3]


def test_reads_every_block() -> None:
    info = read_model_info(DATA / "poisson.stan")
    assert info.inputs == {"N": Declaration("int", 0), "y": Declaration("int", 1)}
    assert info.parameters == {"lambda": Declaration("real", 0)}
    assert info.transformed_parameters == {}
    assert info.generated_quantities == {
        "lambda_twice": Declaration("real", 0),
        "y_rep": Declaration("int", 1),
    }


def test_counts_container_dimensions() -> None:
    info = read_model_info(DATA / "layout.stan")
    assert info.inputs == {}
    assert info.parameters == {"M": Declaration("real", 2), "z": Declaration("real", 0)}
    assert info.transformed_parameters == {"M_t": Declaration("real", 2)}
    assert info.generated_quantities == {"A": Declaration("real", 2), "v": Declaration("real", 1)}


def test_same_content_is_read_once() -> None:
    assert read_model_info(DATA / "poisson.stan") is read_model_info(DATA / "poisson.stan")


def test_edited_file_is_read_again(tmp_path: Path) -> None:
    program = tmp_path / "edited.stan"
    program.write_text("parameters { real a; } model { a ~ normal(0, 1); }")
    assert list(read_model_info(program).parameters) == ["a"]
    program.write_text("parameters { real b; } model { b ~ normal(0, 1); }")
    assert list(read_model_info(program).parameters) == ["b"]


def test_syntax_error_carries_stancs_message() -> None:
    with pytest.raises(
        StanFleetError,
        match=r"^syntax_error\.stan does not compile: Syntax error in .*syntax_error\.stan', line 3(.|\n)*"
        r'";" expected after variable declaration\.$',
    ):
        read_model_info(DATA / "syntax_error.stan")


def test_semantic_error_carries_stancs_message(tmp_path: Path) -> None:
    program = tmp_path / "unknown_name.stan"
    program.write_text("parameters { real a; } model { a ~ normal(0, sigma); }")
    with pytest.raises(
        StanFleetError, match=r"^unknown_name\.stan does not compile: (.|\n)*'sigma' not in scope"
    ):
        read_model_info(program)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StanFleetError, match=r"nowhere\.stan: cannot read the Stan program \(No such file"):
        read_model_info(tmp_path / "nowhere.stan")


def test_finds_a_stanc() -> None:
    assert find_stanc().is_file()


def test_without_any_stanc_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stan_info, "_STANC_NAME", "no-such-stanc")
    with pytest.raises(StanFleetError, match=r"no stanc compiler found: install CmdStan .* or PyStan"):
        find_stanc()


def test_rng_calls_are_noticed() -> None:
    assert read_model_info(DATA / "poisson.stan").uses_rng  # poisson_rng in generated quantities
    assert not read_model_info(DATA / "layout.stan").uses_rng


def test_without_any_cmdstan_cmdstanpy_is_not_imported(tmp_path: Path) -> None:
    code = "import sys; from runtime.model.stan_info import cmdstan_home; print(cmdstan_home(), 'cmdstanpy' in sys.modules)"
    environment = {k: v for k, v in os.environ.items() if k != "CMDSTAN"} | {"HOME": str(tmp_path)}
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    assert found.stdout.split() == ["None", "False"]
