"""Posterior summaries and MCMC convergence diagnostics of one fit, for all its scalars at once.

Rank-normalized split R-hat and bulk/tail ESS (Vehtari et al. 2021) and E-BFMI (Betancourt 2016), as
ArviZ 0.23 computes them (``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk"/"tail")``,
``arviz.bfmi``), but over arrays shaped ``(chains, draws, K)``: ArviZ (and arviz-stats 0.8) loop over
scalars in Python, at 2.6-4.4 ms each on the development VM; here each step is a few NumPy/SciPy calls
over a block of scalars (``bench/wide_model.py``: 0.5-0.8 ms per scalar).
``tests/runtime/fitting/test_diagnostics.py`` checks the numbers against ArviZ's, scalar by scalar.

References
----------
.. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021). Rank-normalization,
   folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis
   16(2), 667-718.
.. [2] Betancourt, M. (2016). Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte
   Carlo. arXiv:1604.00695.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.fft import next_fast_len
from scipy.special import ndtri

MIN_DRAWS = 4
"""Fewer draws per chain give NaN diagnostics, as in ArviZ."""
TAIL_PROBABILITIES = (0.05, 0.95)
"""The quantiles whose indicator ESS is the tail ESS (ArviZ's default)."""
QUANTILES = (0.05, 0.5, 0.95)
"""The posterior quantiles every scalar's result records."""
_BLOM_OFFSET = 3 / 8
LAG_STAGES = (8, 32)
"""How many autocovariance lags are summed directly, stage by stage, before the FFT takes every lag:
Geyer's truncation of well-mixed chains comes within the first few."""
BLOCK_SCALARS = 64
"""Scalars processed together: their draws and temporaries stay in the CPU's cache."""


@dataclass(frozen=True)
class ScalarSummaries:
    """Posterior summaries and convergence diagnostics of K scalars, each an array shaped ``(K,)``."""

    mean: np.ndarray
    sd: np.ndarray
    q5: np.ndarray
    median: np.ndarray
    q95: np.ndarray
    rhat: np.ndarray
    """Rank-normalized split R-hat (NaN with one chain)."""
    ess_bulk: np.ndarray
    ess_tail: np.ndarray


def summarize_scalars(draws: np.ndarray) -> ScalarSummaries:
    """Mean, sd, 5/50/95% quantiles, R-hat, bulk and tail ESS of every scalar of ``(chains, draws, K)``.

    The summaries are NumPy's (``np.quantile``'s linear method); the diagnostics are NaN for a scalar
    with a non-finite draw or fewer than :data:`MIN_DRAWS` draws per chain. Each scalar's draws are
    sorted once: the sort gives the ranks of R-hat and bulk ESS, the median the tail R-hat folds
    around, the quantiles and the tail ESS's indicators.
    """
    values = np.asarray(draws, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"expected draws shaped (chains, draws, K), got {values.shape}")
    scalars = np.ascontiguousarray(np.moveaxis(values, 2, 0))  # (K, chains, draws)
    count, _, length = scalars.shape
    flat = scalars.reshape(count, -1)
    nan = np.full(count, np.nan)
    rhat, ess_bulk, ess_tail = nan.copy(), nan.copy(), nan.copy()
    quantiles = np.full((len(QUANTILES), count), np.nan)
    finite = np.all(np.isfinite(flat), axis=1)
    sorted_here = np.zeros(count, dtype=bool)
    if length >= MIN_DRAWS and finite.any():
        for block in np.array_split(np.flatnonzero(finite), -(-int(finite.sum()) // BLOCK_SCALARS)):
            rhat[block], ess_bulk[block], ess_tail[block], ordered = _diagnostics(scalars[block])
            if length % 2 == 0:  # the split chains hold every draw: their sort is the quantiles' sort
                quantiles[:, block] = _sorted_quantiles(ordered, QUANTILES)
                sorted_here[block] = True
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "degrees of freedom <= 0"
        mean = flat.mean(axis=1) if flat.size else nan.copy()
        sd = flat.std(axis=1, ddof=1) if flat.shape[1] > 1 else nan.copy()
        if flat.size and not sorted_here.all():
            quantiles[:, ~sorted_here] = np.quantile(flat[~sorted_here], QUANTILES, axis=1)
    q5, median, q95 = quantiles
    return ScalarSummaries(mean, sd, q5, median, q95, rhat, ess_bulk, ess_tail)


def _diagnostics(scalars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of finite ``(K, chains, draws)`` draws, as ArviZ computes them.

    The fourth array is each scalar's split-chain draws, sorted.
    """
    count, chains, length = scalars.shape
    split = _split_chains(scalars)
    rows = split.reshape(count, -1)
    order = _flat_positions(np.argsort(rows, axis=1))
    ordered = rows.ravel()[order]
    z_bulk = _z_scores(order, ordered).reshape(split.shape)
    if chains < 2:
        rhat = np.full(count, np.nan)
    else:
        # |x - median| is V-shaped in the sorted order: a stable sort merges its two runs in linear time.
        half = rows.shape[1] // 2
        folded = np.abs(ordered - (ordered[:, half - 1] + ordered[:, half])[:, None] / 2)
        fold_order = _flat_positions(np.argsort(folded, axis=1, kind="stable"))
        z_fold = _z_scores(order.ravel()[fold_order], folded.ravel()[fold_order]).reshape(split.shape)
        bulk, tail = _rhat(z_bulk), _rhat(z_fold)
        rhat = np.where(tail > bulk, tail, bulk)  # ArviZ's max(): a NaN bulk wins
    # With an even number of draws per chain the split chains hold every draw: their sort is all draws'.
    low, high = (
        _sorted_quantiles(ordered, TAIL_PROBABILITIES)
        if length % 2 == 0
        else np.quantile(scalars.reshape(count, -1), TAIL_PROBABILITIES, axis=1)
    )
    ess_bulk = _ess(z_bulk)
    ess_low = _ess(_split_chains((scalars <= low[:, None, None]).astype(float)))
    ess_high = _ess(_split_chains((scalars <= high[:, None, None]).astype(float)))
    return rhat, ess_bulk, np.where(ess_high < ess_low, ess_high, ess_low), ordered  # ArviZ's min()


def _flat_positions(order: np.ndarray) -> np.ndarray:
    """Row-wise sort orders as positions in the flattened array (faster to gather and scatter with)."""
    order += (np.arange(order.shape[0]) * order.shape[1])[:, None]
    return order


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain from the sampler's ``(chains, draws)`` energy."""
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)


def _split_chains(scalars: np.ndarray) -> np.ndarray:
    """Each chain's first and last half as two chains: ``(K, C, N)`` to ``(K, 2C, N // 2)``."""
    half = scalars.shape[2] // 2
    return np.concatenate([scalars[:, :, :half], scalars[:, :, scalars.shape[2] - half :]], axis=1)


def _z_scores(positions: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Normal scores ``ndtri((rank - 3/8) / (n + 1/4))`` of each row's ranks, at the values' own places.

    ``ordered`` holds each row sorted, gathered from the flat ``positions``. Tied values share their
    average rank (``scipy.stats.rankdata(method="average")``, as in ArviZ's ``_z_scale``). Ties are few
    (folding around the median makes one pair), so the scores come from one table of n values,
    corrected where values repeat.
    """
    n = ordered.shape[1]
    denominator = n - 2 * _BLOM_OFFSET + 1
    scores = np.empty(positions.shape)
    scores.ravel()[positions] = _normal_score_table(n)
    repeats = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])  # in (count, n - 1) coordinates
    if repeats.size:
        repeated = repeats + repeats // (n - 1) + 1  # the same places in (count, n) coordinates
        members = np.union1d(repeated - 1, repeated)  # every value of a run of equal values, in order
        starts = ~np.isin(members, repeated)  # a run's first value does not repeat the one before it
        run = np.cumsum(starts) - 1
        first = (members[starts] % n)[run]
        length = np.bincount(run)[run]
        average_rank = first + (length - 1) / 2.0 + 1.0
        scores.ravel()[positions.ravel()[members]] = ndtri((average_rank - _BLOM_OFFSET) / denominator)
    return scores


@lru_cache(maxsize=8)
def _normal_score_table(n: int) -> np.ndarray:
    """The normal scores of ranks 1..n without ties (``ndtri`` costs about 0.1 microseconds a value)."""
    table = ndtri((np.arange(1.0, n + 1.0) - _BLOM_OFFSET) / (n - 2 * _BLOM_OFFSET + 1))
    table.flags.writeable = False
    return table


def _sorted_quantiles(ordered: np.ndarray, probabilities: tuple[float, ...]) -> np.ndarray:
    """``np.quantile(rows, probabilities, axis=1)`` (linear method) of rows already sorted, exactly."""
    n = ordered.shape[1]
    quantiles = []
    for probability in probabilities:
        virtual = (n - 1) * probability
        below = int(np.floor(virtual))
        above = min(below + 1, n - 1)
        gamma = virtual - below
        a, b = ordered[:, below], ordered[:, above]
        difference = b - a
        quantiles.append(b - difference * (1 - gamma) if gamma >= 0.5 else a + difference * gamma)
    return np.array(quantiles)


def _rhat(scalars: np.ndarray) -> np.ndarray:
    """Potential scale reduction of ``(K, chains, draws)``."""
    draws = scalars.shape[2]
    between = draws * np.var(scalars.mean(axis=2), axis=1, ddof=1)
    within = np.var(scalars, axis=2, ddof=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + draws - 1) / draws)


def _ess(scalars: np.ndarray) -> np.ndarray:
    """Effective sample size of each ``(chains, draws)`` row of ``(K, chains, draws)``, as ArviZ's ``_ess``.

    Autocovariances come from direct sums over the first lags, :data:`LAG_STAGES` at a time, until
    Geyer's truncation is settled (early for well-mixed chains); the scalars still unsettled after the
    last stage take every lag by FFT.
    """
    count, chains, draws = scalars.shape
    centered = scalars - scalars.mean(axis=2, keepdims=True)
    chain_mean_var = np.var(scalars.mean(axis=2), axis=1, ddof=1) if chains > 1 else np.zeros(count)
    ess = np.empty(count)
    pending = np.arange(count)
    acov = np.empty((count, 0))
    for lags in LAG_STAGES:
        rows = centered[pending]
        more = [
            np.einsum("kci,kci->k", rows[:, :, : draws - lag], rows[:, :, lag:])
            for lag in range(acov.shape[1], min(lags, draws))
        ]
        acov = np.concatenate([acov, np.stack(more, axis=1) / (draws * chains)], axis=1) if more else acov
        found, settled = _geyer_ess(acov, chain_mean_var[pending], chains, draws)
        ess[pending[settled]] = found[settled]
        pending, acov = pending[~settled], acov[~settled]
        if not pending.size:
            break
    if pending.size:
        full = _autocov(centered[pending]).mean(axis=1)
        ess[pending] = _geyer_ess(full, chain_mean_var[pending], chains, draws)[0]
    constant = (scalars.max(axis=(1, 2)) - scalars.min(axis=(1, 2))) < np.finfo(float).resolution
    ess[constant] = chains * draws
    return ess


def _autocov(centered: np.ndarray) -> np.ndarray:
    """Autocovariance of each centered chain at every lag, along the last axis (FFT, as ArviZ)."""
    n = centered.shape[-1]
    spectrum = np.fft.rfft(centered, n=next_fast_len(2 * n), axis=-1)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=next_fast_len(2 * n), axis=-1)[..., :n] / n


def _geyer_ess(
    acov: np.ndarray, chain_mean_var: np.ndarray, chains: int, draws: int
) -> tuple[np.ndarray, np.ndarray]:
    """ESS by Geyer's initial monotone sequence, as ArviZ's loop, and whether the lags given settled it.

    ``acov`` holds the chain-averaged autocovariances at lags 0..L-1, shaped ``(K, L)``.

    ArviZ takes pairs of autocorrelations (rho[2m], rho[2m + 1]): pair m >= 1 is computed while pair m - 1
    sums to > 0 and 2m - 1 < draws - 3, kept only if it sums to >= 0; the kept sums are then made
    non-increasing (a running minimum), and the even element of the last pair computed is added if > 0.
    """
    count = acov.shape[0]
    size = chains * draws
    mean_var = acov[:, 0] * draws / (draws - 1.0)
    var_plus = mean_var * (draws - 1.0) / draws + chain_mean_var
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov) / var_plus[:, None]
    rho[:, 0] = 1.0
    last_allowed = max((draws - 3) // 2, 0)
    computed = min(last_allowed, acov.shape[1] // 2 - 1) + 1
    pairs = rho[:, : 2 * computed].reshape(count, computed, 2)
    sums = pairs.sum(axis=2)
    not_positive = ~(sums > 0)
    found = not_positive.any(axis=1)
    last = np.minimum(np.where(found, not_positive.argmax(axis=1), computed), last_allowed)
    settled = found | (computed - 1 >= last_allowed)
    last = np.minimum(last, computed - 1)  # unsettled rows are recomputed with every lag
    monotone = np.where(np.arange(computed) < last[:, None], np.minimum.accumulate(sums, axis=1), 0.0).sum(
        axis=1
    )
    even = pairs[np.arange(count), last, 0]
    kept = sums[np.arange(count), last] >= 0
    final = np.where(last == 0, 1.0, np.where((even > 0) | kept, even, 0.0))
    tau = np.maximum(-1.0 + 2.0 * monotone + final, 1.0 / np.log10(size))
    ess = size / tau
    ess[np.isnan(rho[:, 1])] = np.nan
    return ess, settled
