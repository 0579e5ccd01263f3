"""What the report says about the datasets' origin: nothing for prior SBC, the observed data, the
--predictive pairs and the reference fit for posterior SBC."""

from __future__ import annotations

from typing import Any

from runtime.report.conditioning import conditioning_line, posterior_run, reference_fit, reference_lines
from tests.runtime.ensemble.test_reference import RECORD

PRIOR_RUN: dict[str, Any] = {"model_name": "m", "generator": "gen.stan"}
POSTERIOR_RUN: dict[str, Any] = {
    **PRIOR_RUN,
    "posterior": {
        "observed": "data/observed.json",
        "predictive": {"y_rep": "y", "z_rep": "z"},
        "augment": None,
        "reference_fit": RECORD.to_dict(),
    },
}


def test_prior_sbc_says_nothing_of_a_reference() -> None:
    assert posterior_run(PRIOR_RUN) is None and conditioning_line(PRIOR_RUN) is None
    assert reference_fit(PRIOR_RUN) is None and reference_lines(PRIOR_RUN) == []


def test_posterior_sbc_names_the_observed_data_each_pair_and_the_reference_fit() -> None:
    assert conditioning_line(POSTERIOR_RUN) == (
        "posterior SBC, conditional on data/observed.json (y_rep appended to y, z_rep appended to z)"
    )
    assert reference_fit(POSTERIOR_RUN) == RECORD
    assert reference_lines(POSTERIOR_RUN) == [
        conditioning_line(POSTERIOR_RUN),
        f"reference fit: {RECORD.describe()}",
    ]


def test_a_hook_and_a_flagged_reference_fit_are_said() -> None:
    flagged = {**RECORD.to_dict(), "problems": ["2 divergent transitions"]}
    run = {
        **PRIOR_RUN,
        "posterior": {**POSTERIOR_RUN["posterior"], "augment": "m:f", "reference_fit": flagged},
    }
    line = conditioning_line(run)
    assert line is not None and line.endswith("; data built by m:f)")
    assert reference_lines(run)[-1].startswith("warning: the reference fit has 2 divergent transitions")
