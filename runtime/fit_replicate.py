"""Fit one replicate and score it: the unit of work of every executor."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from runtime.conform import ReplicateInputs
from runtime.engines.base import CompiledModel
from runtime.results import ReplicateResult
from runtime.scoring import LOG_LIK_NAME, score_fit, sum_test_quantity
from runtime.settings import SamplerSettings


def fit_replicate(
    model: CompiledModel,
    inputs: ReplicateInputs,
    *,
    base_data: Mapping[str, Any],
    settings: SamplerSettings,
    seed: int,
    engine: str,
    score_log_lik: bool,
) -> ReplicateResult:
    """Fit the model to one replicate's data and score the posterior against the true values.

    Any exception from fitting or scoring makes a failed result carrying the error text: a failed
    fit is data, never a reason to stop the ensemble.
    """
    started = time.perf_counter()
    sample_seconds = 0.0
    try:
        data = {**base_data, **inputs.data}
        draws = model.sample(data, settings, seed)
        sample_seconds = time.perf_counter() - started
        truth = {}
        if score_log_lik:
            at_truth = model.quantities_at(data, inputs.true_values, seed)
            truth[LOG_LIK_NAME] = float(sum_test_quantity(at_truth[LOG_LIK_NAME], 0))
        rng = np.random.default_rng(seed)
        variables, test_quantities, diagnostics = score_fit(
            draws, inputs.true_values, truth, settings.thin, rng
        )
    except Exception as exc:  # a failed fit is a result, whatever raised
        return ReplicateResult(
            replicate=inputs.replicate,
            seed=seed,
            status="failed",
            engine=engine,
            error=f"{type(exc).__name__}: {exc}".strip(),
            sample_seconds=sample_seconds,
            total_seconds=time.perf_counter() - started,
        )
    return ReplicateResult(
        replicate=inputs.replicate,
        seed=seed,
        status="ok",
        engine=engine,
        variables=variables,
        test_quantities=test_quantities,
        diagnostics=diagnostics,
        sample_seconds=sample_seconds,
        total_seconds=time.perf_counter() - started,
    )
