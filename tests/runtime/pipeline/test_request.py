"""The typed request: its defaults are the command line's, and validate() names field, rule and value."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from runtime.errors import StanFleetError
from runtime.pipeline.request import EnsembleRequest, field_default
from runtime.submit import build_parser


def request(**overrides: object) -> EnsembleRequest:
    return EnsembleRequest.from_keywords(
        **{"model": "m.stan", "generator": "g.stan", "replicates": 10, **overrides}
    )


def test_every_field_is_a_flag_with_the_requests_default() -> None:
    parser = build_parser()
    flags = {action.dest: action.default for action in parser._actions if action.dest != "help"}
    assert set(flags) == {f.name for f in fields(EnsembleRequest)}
    for name, flag_default in flags.items():
        if name not in ("model", "generator", "replicates"):  # required on the command line
            assert flag_default == field_default(name), name


def test_the_command_line_builds_the_request_it_describes() -> None:
    args = build_parser().parse_args(["m.stan", "--generator", "g.stan", "-R", "7", "--thin", "auto"])
    parsed = EnsembleRequest(**vars(args))
    assert parsed == EnsembleRequest(Path("m.stan"), "g.stan", 7, thin="auto")
    assert parsed.settings.thin == "auto"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"replicates": 0}, r"^--replicates must be an integer in 1\.\.1,000,000, got 0$"),
        ({"chains": "4"}, r"^chains must be an integer, got '4'$"),
        ({"wait": 1}, r"^wait must be True or False, got 1$"),
        ({"level": True}, r"^level must be a number, got True$"),
        ({"workers": 0}, r"^--workers must be a positive integer, got 0$"),
        ({"backend": "slurm"}, r"^--backend must be one of local, aws, dask, got 'slurm'$"),
        ({"scheduler": 8786}, r"^scheduler must be an address or a distributed\.Client, got int$"),
        (
            {"replicates_per_child": 0},
            r"^--replicates-per-child must be 'auto' or an integer in 1\.\.\d+, got 0$",
        ),
        ({"adapt_delta": 1.5}, r"^--adapt-delta must lie strictly between 0 and 1, got 1\.5$"),
        ({"level": 2.0}, r"^--level must lie strictly between 0 and 1, got 2$"),
    ],
)
def test_validate_names_the_field_the_rule_and_the_value(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(StanFleetError, match=message):
        request(**overrides).validate()


def test_python_values_are_taken_as_the_command_line_would() -> None:
    made = request(data="d.json", out=Path("o"), store=Path("s"), workers=None, test_quantities=["a", "b"])
    assert (made.model, made.data, made.out, made.store) == (Path("m.stan"), Path("d.json"), Path("o"), "s")
    assert made.workers >= 1 and made.test_quantity_list == "a,b"
    made.validate()
    with pytest.raises(StanFleetError, match=r"^unknown argument 'chain'; the arguments are: adapt_delta, "):
        request(chain=2)
