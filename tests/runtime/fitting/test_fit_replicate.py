"""fit_replicate with real fits: a failed fit is a result with a one-line error and the full text kept."""

from pathlib import Path

import numpy as np
import pytest

from runtime.engines.choice import get_engine
from runtime.engines.settings import SamplerSettings
from runtime.errors import MachineryError
from runtime.fitting.fit_replicate import fit_replicate
from runtime.model.conform import ReplicateInputs
from runtime.sbc.results import ReplicateResult
from tests.runtime.helpers.engines_present import ENGINES

DATA = Path(__file__).resolve().parents[2] / "data"
QUICK = SamplerSettings(chains=2, warmup=100, samples=100, thin=2)


def fit(
    engine: str, program: str, true_values: dict[str, np.ndarray], data: dict[str, np.ndarray]
) -> ReplicateResult:
    model = get_engine(engine).compile(DATA / program)
    inputs = ReplicateInputs(replicate=3, true_values=true_values, data=data)
    return fit_replicate(
        model, inputs, base_data={}, settings=QUICK, seed=7, engine=engine, score_log_lik=False
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_fit_that_cannot_start_is_a_failed_result_with_stans_reason_on_one_line(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANFLEET_CACHE_DIR", str(tmp_path))
    result = fit(engine, "no_valid_start.stan", {"sigma": np.array(1.0)}, {})
    assert (result.status, result.replicate, result.seed, result.engine) == ("failed", 3, 7, engine)
    assert result.error is not None and "\n" not in result.error
    assert result.error.startswith(
        "StanFleetError: no_valid_start.stan: sampling failed: Initialization between"
    )
    assert "Log probability evaluates to log(0)" in result.error
    assert result.error_detail is not None and len(result.error_detail) > len(result.error)
    assert ReplicateResult.from_json(result.to_json()) == result
    assert result.variables == {} and result.diagnostics is None


def test_an_exception_that_is_not_stans_report_is_raised_as_the_machinerys_with_its_traceback() -> None:
    counts = {"N": np.array(3), "y": np.array([1, 4, 2])}
    with pytest.raises(MachineryError, match=r"^ValueError: could not convert string to float") as raised:
        fit("pystan", "poisson.stan", {"lambda": np.array("not a number")}, counts)
    assert raised.value.detail is not None
    assert raised.value.detail.startswith("Traceback (most recent call last):")
    assert "score_fit" in raised.value.detail


def test_results_written_before_error_details_existed_still_load() -> None:
    old = (
        b'{"replicate": 0, "seed": 1, "status": "failed", "engine": "pystan", "variables": {}, '
        b'"test_quantities": {}, "diagnostics": null, "error": "RuntimeError: x", "sample_seconds": 0.0, '
        b'"total_seconds": 0.1}'
    )
    assert ReplicateResult.from_json(old).error_detail is None
