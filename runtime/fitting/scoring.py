"""Score one fit: SBC ranks, posterior summaries and convergence diagnostics per scalar."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from runtime.engines.base import Draws
from runtime.engines.settings import AUTO_THIN
from runtime.errors import StanFleetError
from runtime.fitting.diagnostics import BLOCK_SCALARS, ebfmi, summarize_block
from runtime.model.naming import flatten_variable, scalar_names
from runtime.sbc.ranks import auto_thin_factors, break_ties, thinned_rank_counts
from runtime.sbc.results import FitDiagnostics, VariableScore

#: Generated quantity whose per-draw sum is the "log_lik" test quantity (Modrák et al. 2023).
LOG_LIK_NAME = "log_lik"
#: Fewer kept draws than this make ranks coarse; a fixed thinning factor warns below it.
MIN_KEPT_DRAWS = 50

_SAMPLE_NDIM = 2  # (chains, draws)


class ThinningWarning(UserWarning):
    """A fixed thinning factor keeps too few draws for informative ranks."""


def sum_test_quantity(values: np.ndarray, sample_ndim: int) -> np.ndarray:
    """Sum a quantity over its non-sample axes.

    Parameters
    ----------
    values : numpy.ndarray
        Shaped ``(*sample_shape, *dims)``, e.g. ``log_lik`` draws ``(chains, draws, N)``.
    sample_ndim : int
        Number of leading sample axes (2 for draws, 0 for a value at the true parameters).

    Returns
    -------
    numpy.ndarray
        Shaped ``sample_shape``.
    """
    values = np.asarray(values, dtype=float)
    if not 0 <= sample_ndim <= values.ndim:
        raise ValueError(f"array with {values.ndim} axes cannot have {sample_ndim} sample axes")
    return values.sum(axis=tuple(range(sample_ndim, values.ndim)))


def draws_of_test_quantities(
    draws: Draws, at_truth: Mapping[str, np.ndarray], names: Sequence[str], *, log_lik_sum: bool
) -> dict[str, tuple[np.ndarray, float]]:
    """Each scalar test quantity's ``(chains, draws)`` draws and true value.

    Parameters
    ----------
    draws : Draws
        The fit.
    at_truth : Mapping of str to numpy.ndarray
        Every quantity evaluated at the true parameters (``CompiledModel.quantities_at``).
    names : Sequence of str
        Transformed parameters and generated quantities whose every element is a test quantity.
    log_lik_sum : bool
        Whether the sum of :data:`LOG_LIK_NAME` over its elements is one too (named ``log_lik``).

    Returns
    -------
    dict
        Stan-style scalar name to ``(draws, true value)``: the ``log_lik`` sum first, then the
        elements of each named quantity.
    """
    quantities: dict[str, tuple[np.ndarray, float]] = {}
    if log_lik_sum:
        quantities[LOG_LIK_NAME] = (
            sum_test_quantity(_variable(draws, LOG_LIK_NAME), _SAMPLE_NDIM),
            float(sum_test_quantity(_truth(at_truth, LOG_LIK_NAME), 0)),
        )
    for name in names:
        quantities.update(_elements(draws, name, _truth(at_truth, name)))
    return quantities


def score_fit(
    draws: Draws,
    true_values: Mapping[str, np.ndarray],
    test_quantities: Mapping[str, tuple[np.ndarray, float]],
    thin: int | str,
    rng: np.random.Generator,
) -> tuple[dict[str, VariableScore], dict[str, VariableScore], FitDiagnostics]:
    """Score every scalar parameter element and test quantity of one fit.

    Parameters
    ----------
    draws : Draws
        The fit; ``draws.variables[name]`` is shaped ``(chains, draws, *dims)``.
    true_values : Mapping of str to numpy.ndarray
        The prior draw of each parameter, shaped ``dims``.
    test_quantities : Mapping of str to (numpy.ndarray, float)
        Each scalar test quantity's draws and true value (:func:`draws_of_test_quantities`).
    thin : int or "auto"
        Fixed thinning factor for the ranks, or ``"auto"`` for a per-scalar factor
        ``ceil(S / min(ess_bulk, ess_tail))`` (Säilynoja et al. 2022).
    rng : numpy.random.Generator
        Breaks rank ties, scalar by scalar in order: the parameters' elements, then the test quantities.

    Returns
    -------
    tuple
        ``(variables, test_quantities, diagnostics)``: scores keyed by Stan-style scalar names,
        and the fit's sampler diagnostics.
    """
    columns: list[np.ndarray] = []
    names: list[str] = []
    truths: list[np.ndarray] = []
    for name, values in true_values.items():
        variable, truth = _variable(draws, name), np.asarray(values, dtype=float)
        if variable.shape[_SAMPLE_NDIM:] != truth.shape:
            raise StanFleetError(
                f"draws of {name!r} have dims {variable.shape[_SAMPLE_NDIM:]}, its true value has shape {truth.shape}"
            )
        columns.append(variable.reshape(*variable.shape[:_SAMPLE_NDIM], -1))
        names.extend(scalar_names(name, truth.shape))
        truths.append(truth.reshape(-1))
    parameters = len(names)
    for name, (chain_draws, truth_value) in test_quantities.items():
        columns.append(np.asarray(chain_draws, dtype=float)[..., None])
        names.append(name)
        truths.append(np.array([truth_value], dtype=float))
    scores = score_scalars(_side_by_side(columns), np.concatenate(truths), thin, rng) if columns else []
    return (
        dict(zip(names[:parameters], scores[:parameters], strict=True)),
        dict(zip(names[parameters:], scores[parameters:], strict=True)),
        fit_diagnostics(draws),
    )


def score_scalars(
    chain_draws: np.ndarray, true_values: np.ndarray, thin: int | str, rng: np.random.Generator
) -> list[VariableScore]:
    """SBC scores of K scalars from their ``(chains, draws, K)`` posterior draws and K true values.

    Summaries (mean, sd, quantiles, R-hat, ESS) use all draws; each rank uses the thinned ones. Every
    step runs over a block of scalars at once (:func:`~runtime.fitting.diagnostics.summarize_block`).
    """
    x = np.asarray(chain_draws, dtype=float)
    truths = np.asarray(true_values, dtype=float)
    chains, length, count = x.shape
    if isinstance(thin, int) and not isinstance(thin, bool) and thin >= 1:
        kept = chains * -(-length // thin)
        if count and kept < MIN_KEPT_DRAWS:
            warnings.warn(
                f"thinning by {thin} keeps {kept} draws per fit (fewer than {MIN_KEPT_DRAWS}); "
                "ranks will be coarse",
                ThinningWarning,
                stacklevel=2,
            )
    elif thin != AUTO_THIN:
        raise StanFleetError(f"thin must be a positive integer or {AUTO_THIN!r}, got {thin!r}")
    scores: list[VariableScore] = []
    for start in range(0, count, BLOCK_SCALARS):
        block = slice(start, start + BLOCK_SCALARS)
        # Each scalar's draws together: summarized and ranked while in the cache.
        scores += _score_block(
            np.ascontiguousarray(x[:, :, block].transpose(2, 0, 1)), truths[block], thin, rng
        )
    return scores


def _score_block(
    scalars: np.ndarray, true_values: np.ndarray, thin: int | str, rng: np.random.Generator
) -> list[VariableScore]:
    """:func:`score_scalars` of a block of scalars, ``(k, chains, draws)``, with a valid ``thin``."""
    count, chains, length = scalars.shape
    summaries = summarize_block(scalars)
    factors = (
        auto_thin_factors(chains * length, summaries.ess_bulk, summaries.ess_tail)
        if thin == AUTO_THIN
        else np.full(count, thin)
    )
    ranks = break_ties(*thinned_rank_counts(scalars, true_values, factors), rng)  # in scalar order
    columns = zip(
        true_values.tolist(),
        ranks.tolist(),
        (chains * -(-length // factors)).tolist(),
        summaries.mean.tolist(),
        summaries.sd.tolist(),
        summaries.q5.tolist(),
        summaries.median.tolist(),
        summaries.q95.tolist(),
        summaries.rhat.tolist(),
        summaries.ess_bulk.tolist(),
        summaries.ess_tail.tolist(),
        strict=True,
    )
    return [
        VariableScore(
            true_value=truth,
            rank=rank,
            max_rank=max_rank,
            mean=mean,
            sd=sd,
            q5=q5,
            median=median,
            q95=q95,
            rhat=rhat,
            ess_bulk=ess_bulk,
            ess_tail=ess_tail,
        )
        for truth, rank, max_rank, mean, sd, q5, median, q95, rhat, ess_bulk, ess_tail in columns
    ]


def fit_diagnostics(draws: Draws) -> FitDiagnostics:
    """Divergences, max-treedepth hits (``treedepth >= max_treedepth``) and lowest per-chain E-BFMI."""
    per_chain = ebfmi(draws.energy)
    return FitDiagnostics(
        divergences=int(np.count_nonzero(draws.divergent)),
        max_treedepth_hits=int(np.count_nonzero(np.asarray(draws.treedepth) >= draws.max_treedepth)),
        min_ebfmi=float(np.min(per_chain)) if per_chain.size else math.nan,
        num_draws=int(np.asarray(draws.divergent).size),
    )


def _side_by_side(columns: list[np.ndarray]) -> np.ndarray:
    """``(chains, draws, k)`` columns as one ``(chains, draws, K)`` array; a lone column as it is (no copy)."""
    return columns[0] if len(columns) == 1 else np.concatenate(columns, axis=2)


def _elements(draws: Draws, name: str, truth: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """Each scalar element of variable ``name``: its ``(chains, draws)`` draws and its true value."""
    values = _variable(draws, name)
    truth_array = np.asarray(truth, dtype=float)
    if values.shape[_SAMPLE_NDIM:] != truth_array.shape:
        raise StanFleetError(
            f"draws of {name!r} have dims {values.shape[_SAMPLE_NDIM:]}, "
            f"its true value has shape {truth_array.shape}"
        )
    element_truth = flatten_variable(name, truth_array, 0)
    return {
        element: (chain_draws, float(element_truth[element]))
        for element, chain_draws in flatten_variable(name, values, _SAMPLE_NDIM).items()
    }


def _truth(at_truth: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return np.asarray(at_truth[name], dtype=float)
    except KeyError:
        raise StanFleetError(f"no value of {name!r} at the true parameters") from None


def _variable(draws: Draws, name: str) -> np.ndarray:
    try:
        values = np.asarray(draws.variables[name], dtype=float)
    except KeyError:
        raise StanFleetError(f"the fit has no variable {name!r}") from None
    if values.ndim < _SAMPLE_NDIM:
        raise StanFleetError(f"draws of {name!r} have shape {values.shape}, expected (chains, draws, ...)")
    return values
