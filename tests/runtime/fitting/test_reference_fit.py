"""The reference fit with real fits: its record's diagnostics match its draws, auto thinning leaves about
one draw per effective sample, and observed data the model rejects is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime.engines.choice import get_engine
from runtime.engines.settings import SamplerSettings
from runtime.errors import StanFleetError
from runtime.fitting.diagnostics import summarize_scalars
from runtime.fitting.reference_fit import fit_reference
from tests.runtime.helpers.engines_present import ENGINES

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "regression"
OBSERVED = json.loads((EXAMPLE / "observed.json").read_text())
QUICK = SamplerSettings(chains=2, warmup=200, samples=200, thin=4)


def reference(engine: str, observed: dict, settings: SamplerSettings = QUICK):  # type: ignore[no-untyped-def]
    return fit_reference(
        get_engine(engine).compile(EXAMPLE / "regression.stan"),
        observed,
        parameters=["alpha", "beta", "sigma"],
        settings=settings,
        seed=11,
        engine=engine,
        rejected_by="regression.stan rejects --posterior observed.json",
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_the_record_describes_the_draws(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANFLEET_CACHE_DIR", str(tmp_path))
    record, variables = reference(engine, OBSERVED)
    assert variables["alpha"].shape == (2, 200) and variables["y_rep"].shape == (2, 200, 20)
    assert (record.engine, record.seed, record.chains, record.draws_per_chain) == (engine, 11, 2, 200)
    assert (record.thin, record.kept) == (4, 100)
    stacked = np.stack([variables[name] for name in ("alpha", "beta", "sigma")], axis=2)
    summaries = summarize_scalars(stacked)
    assert record.max_rhat == pytest.approx(float(np.max(summaries.rhat)))
    assert record.min_ess_bulk == pytest.approx(float(np.min(summaries.ess_bulk)))
    assert record.max_rhat_of in ("alpha", "beta", "sigma")
    problems = " ".join(record.problems)  # 400 draws: R-hat and ESS may miss their thresholds, and say so
    assert record.divergences == 0 and "divergent" not in problems
    assert ("R-hat" in problems) == (record.max_rhat > 1.01)
    assert ("bulk ESS" in problems) == (record.min_ess_bulk < 400)
    assert ("tail ESS" in problems) == (record.min_ess_tail < 400)
    auto, _ = reference(engine, OBSERVED, SamplerSettings(chains=2, warmup=200, samples=200, thin="auto"))
    assert auto.thin == int(np.ceil(400 / min(auto.min_ess_bulk, auto.min_ess_tail)))
    assert auto.kept == 2 * len(range(0, 200, auto.thin))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_observed_data_the_model_rejects_is_named_in_one_line(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANFLEET_CACHE_DIR", str(tmp_path))
    with pytest.raises(StanFleetError) as raised:
        reference(engine, {**OBSERVED, "x": OBSERVED["x"][:5]})  # 5 covariates for N = 20
    message = str(raised.value)
    assert message.startswith("regression.stan rejects --posterior observed.json: ") and "\n" not in message
    assert "x" in message.removeprefix("regression.stan rejects --posterior observed.json: ")
