"""Fit one replicate and score it: the unit of work of every executor."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from runtime.engines.base import CompiledModel
from runtime.engines.settings import SamplerSettings
from runtime.ensemble.spec import truth_seed
from runtime.errors import MachineryError, StanFleetError
from runtime.fitting.scoring import draws_of_test_quantities, score_fit
from runtime.model.conform import ReplicateInputs
from runtime.sbc.results import ReplicateResult


def describe_failure(exc: Exception) -> tuple[str, str]:
    """A failed fit's error on one line, and the full text behind it.

    A StanFleetError's message is already the useful line (the engines trim Stan's output) and its
    ``detail`` the output; any other exception is a bug or an environment problem, kept with its traceback.
    """
    line = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    if isinstance(exc, StanFleetError):
        return line, exc.detail or str(exc)
    return line, "".join(traceback.format_exception(exc)).rstrip()


def fit_replicate(
    model: CompiledModel,
    inputs: ReplicateInputs,
    *,
    base_data: Mapping[str, Any],
    settings: SamplerSettings,
    seed: int,
    engine: str,
    score_log_lik: bool,
    test_quantities: Sequence[str] = (),
) -> ReplicateResult:
    """Fit the model to one replicate's data and score the posterior against the true values.

    The parameters are scored, then the sum of ``log_lik`` (with ``score_log_lik``) and every element
    of each of ``test_quantities``, whose true values come from one evaluation at the true parameters.

    What Stan reports about the model and data (a StanFleetError from the engine: initialization
    failed, data rejected, a sampler error) makes a failed result carrying the error text: a failed fit
    is data, never a reason to stop the ensemble. Anything else (a MachineryError from the engine, or
    any other exception: a bug, memory, I/O) is raised as a MachineryError, for the worker to retry.
    """
    started = time.perf_counter()
    sample_seconds = 0.0
    try:
        data = {**base_data, **inputs.data}
        draws = model.sample(data, settings, seed)
        sample_seconds = time.perf_counter() - started
        at_truth = (
            model.quantities_at(data, inputs.true_values, truth_seed(seed))
            if score_log_lik or test_quantities
            else {}
        )
        quantities = draws_of_test_quantities(draws, at_truth, test_quantities, log_lik_sum=score_log_lik)
        rng = np.random.default_rng(seed)
        variables, scored, diagnostics = score_fit(draws, inputs.true_values, quantities, settings.thin, rng)
    except MachineryError:
        raise
    except StanFleetError as exc:  # what Stan said about the model and data: a result
        error, detail = describe_failure(exc)
        return ReplicateResult(
            replicate=inputs.replicate,
            seed=seed,
            status="failed",
            engine=engine,
            error=error,
            error_detail=detail,
            sample_seconds=sample_seconds,
            total_seconds=time.perf_counter() - started,
        )
    except Exception as exc:  # not Stan's verdict on the model: the run's problem
        error, detail = describe_failure(exc)
        raise MachineryError(error, detail=detail) from exc
    return ReplicateResult(
        replicate=inputs.replicate,
        seed=seed,
        status="ok",
        engine=engine,
        variables=variables,
        test_quantities=scored,
        diagnostics=diagnostics,
        sample_seconds=sample_seconds,
        total_seconds=time.perf_counter() - started,
    )
