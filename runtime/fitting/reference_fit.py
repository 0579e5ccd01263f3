"""Posterior SBC's reference fit: the model fitted once to the observed data, and its diagnostics.

A bad reference fit makes the check meaningless (its draws are not the posterior), so its sampler and
convergence diagnostics are measured against the same thresholds as every replicate's and go into the
report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from runtime.engines.base import CompiledModel, Draws
from runtime.engines.settings import AUTO_THIN, SamplerSettings
from runtime.ensemble.reference import ReferenceFit
from runtime.errors import MachineryError, StanFleetError
from runtime.fitting.diagnostics import summarize_scalars
from runtime.fitting.scoring import fit_diagnostics
from runtime.model.naming import flatten_variable
from runtime.sbc.ranks import auto_thin_factors
from runtime.sbc.verdict import EBFMI_THRESHOLD, ESS_THRESHOLD, RHAT_THRESHOLD


def fit_reference(
    model: CompiledModel,
    observed: Mapping[str, Any],
    *,
    parameters: Sequence[str],
    settings: SamplerSettings,
    seed: int,
    engine: str,
    rejected_by: str,
) -> tuple[ReferenceFit, dict[str, np.ndarray]]:
    """Fit ``model`` to the observed data; return the record and every variable's draws.

    ``rejected_by`` says who refuses the data when Stan does (``"poisson.stan rejects observed.json"``):
    the error is that phrase and Stan's line.
    """
    try:
        draws = model.sample(observed, settings, seed)
    except MachineryError:
        raise
    except StanFleetError as exc:
        raise StanFleetError(f"{rejected_by}: {str(exc).splitlines()[0]}", detail=exc.detail) from None
    return reference_record(draws, parameters, settings, seed, engine), draws.variables


def reference_record(
    draws: Draws, parameters: Sequence[str], settings: SamplerSettings, seed: int, engine: str
) -> ReferenceFit:
    """Diagnostics and thinning of the reference fit's ``draws``.

    ``thin="auto"`` thins by ``ceil(S / min(ESS))`` over every parameter scalar, leaving about one draw
    per effective sample.
    """
    scalars: dict[str, np.ndarray] = {}
    for name in parameters:
        scalars.update(flatten_variable(name, np.asarray(draws.variables[name], dtype=float), 2))
    names = list(scalars)
    stacked = np.stack([scalars[name] for name in names], axis=2)
    chains, per_chain = stacked.shape[:2]
    summaries = summarize_scalars(stacked)
    if settings.thin == AUTO_THIN:
        thin = int(np.max(auto_thin_factors(chains * per_chain, summaries.ess_bulk, summaries.ess_tail)))
    else:
        thin = int(settings.thin)
    sampler = fit_diagnostics(draws)
    worst_rhat = _worst(summaries.rhat, np.nanargmax)
    worst_bulk, worst_tail = (
        _worst(summaries.ess_bulk, np.nanargmin),
        _worst(summaries.ess_tail, np.nanargmin),
    )
    record = ReferenceFit(
        engine=engine,
        seed=seed,
        chains=chains,
        draws_per_chain=per_chain,
        thin=thin,
        divergences=sampler.divergences,
        max_treedepth_hits=sampler.max_treedepth_hits,
        min_ebfmi=sampler.min_ebfmi,
        max_rhat=float(summaries.rhat[worst_rhat]),
        max_rhat_of=names[worst_rhat],
        min_ess_bulk=float(summaries.ess_bulk[worst_bulk]),
        min_ess_bulk_of=names[worst_bulk],
        min_ess_tail=float(summaries.ess_tail[worst_tail]),
        min_ess_tail_of=names[worst_tail],
    )
    return replace(record, problems=reference_problems(record))


def _worst(values: np.ndarray, pick: Callable[[np.ndarray], np.intp]) -> int:
    """The index ``pick`` (``np.nanargmax``/``np.nanargmin``) chooses; 0 when no value is finite."""
    return int(pick(values)) if np.isfinite(values).any() else 0


def reference_problems(record: ReferenceFit) -> list[str]:
    """What the reference fit's diagnostics flag, in words, at the thresholds every replicate is held to."""
    problems = []
    if record.divergences:
        problems.append(f"{record.divergences} divergent transitions")
    if record.max_treedepth_hits:
        problems.append(f"{record.max_treedepth_hits} transitions at the maximum tree depth")
    if record.min_ebfmi < EBFMI_THRESHOLD:
        problems.append(f"E-BFMI {record.min_ebfmi:.2f} < {EBFMI_THRESHOLD:g}")
    if record.max_rhat > RHAT_THRESHOLD:
        problems.append(f"R-hat {record.max_rhat:.3f} > {RHAT_THRESHOLD:g} ({record.max_rhat_of})")
    for kind, value, of in (
        ("bulk", record.min_ess_bulk, record.min_ess_bulk_of),
        ("tail", record.min_ess_tail, record.min_ess_tail_of),
    ):
        if value < ESS_THRESHOLD:
            problems.append(f"{kind} ESS {value:.0f} < {ESS_THRESHOLD:g} ({of})")
    return problems
