"""Size expressions read from stanc's canonical form of real programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.model.dimensions import parse_declaration, read_sized_declarations, uses_size

DATA = Path(__file__).resolve().parents[2] / "data"
REGRESSION = Path(__file__).resolve().parents[3] / "examples" / "regression" / "regression.stan"


def test_regression_sizes_come_from_its_declarations() -> None:
    sized = read_sized_declarations(REGRESSION)
    assert sized.data == {"N": (), "x": ("N",), "y": ("N",)}
    assert sized.parameters == {"alpha": (), "beta": (), "sigma": ()}


def test_eight_schools_parameter_is_sized_by_the_data_size() -> None:
    sized = read_sized_declarations(DATA / "eight_schools_centered.stan")
    assert sized.parameters["theta"] == ("J",)
    assert sized.data["sigma"] == ("J",)  # array[J] real<lower=0> sigma


def test_comments_and_layout_do_not_matter(tmp_path: Path) -> None:
    program = tmp_path / "laid_out.stan"
    program.write_text(
        "data {\n  int N; // rows\n  array[N,\n 2] real   w; /* two\n columns */\n"
        "  matrix<lower=0>[N, 3] X;\n}\nparameters { real mu; }\nmodel { mu ~ std_normal(); }\n"
    )
    sized = read_sized_declarations(program)
    assert sized.data == {"N": (), "w": ("N", "2"), "X": ("N", "3")}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("real alpha", ("alpha", ())),
        ("vector<lower=0>[N] sigma", ("sigma", ("N",))),
        ("array[N] vector<lower=0, upper=max(x[1:2])>[K] z", ("z", ("N", "K"))),
        ("array[N, M + 1] int<lower=1, upper=K> g", ("g", ("N", "M + 1"))),
        ("cholesky_factor_corr[K] L", ("L", ("K",))),
        ("matrix[f(N, 2), K] X", ("X", ("f(N, 2)", "K"))),
        ("tuple(real, vector[N]) t", ("t", None)),
    ],
)
def test_parse_declaration(statement: str, expected: tuple[str, tuple[str, ...] | None]) -> None:
    assert parse_declaration(statement) == expected


def test_uses_size_matches_whole_identifiers() -> None:
    assert uses_size(("K", "N + 1"), "N")
    assert not uses_size(("NN", "N_obs"), "N")
