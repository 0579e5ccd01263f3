"""A replicate's side of SBC, computed by the worker.

The rank of the true value among the posterior draws, and the thinning that makes the kept draws close
to independent first. NumPy only.

References
----------
.. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018). Validating
   Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.
.. [2] Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
   uniformity and its applications in goodness-of-fit evaluation and multiple sample
   comparison. Statistics and Computing 32, 32.
"""

from __future__ import annotations

import numpy as np


def rank_counts(draws: np.ndarray, true_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many of each column's kept draws fall below its true value, and how many equal it [1]_.

    Parameters
    ----------
    draws : numpy.ndarray
        Kept (thinned) posterior draws, shaped ``(S, K)``: column k holds scalar k's draws.
    true_values : numpy.ndarray
        The values the prior draw took, shaped ``(K,)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(below, ties)``, each shaped ``(K,)``; :func:`break_ties` turns them into SBC ranks in ``0..S``.
    """
    draws = np.asarray(draws, dtype=float)
    true_values = np.asarray(true_values, dtype=float)
    if draws.ndim != 2 or true_values.shape != draws.shape[1:]:
        raise ValueError(
            f"expected draws (S, K) and K true values, got {draws.shape} and {true_values.shape}"
        )
    return thinned_rank_counts(draws.T[:, None, :], true_values, np.ones(true_values.shape, dtype=int))


def break_ties(below: np.ndarray, ties: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBC ranks ``below + U{0, ..., ties}``: ties broken at random, scalar by scalar in order.

    The generator is drawn only for scalars with ties, so the ranks of continuous draws need no draws.
    """
    ranks = np.array(below, dtype=int)
    for scalar in np.flatnonzero(ties):
        ranks[scalar] += int(rng.integers(0, ties[scalar] + 1))
    return ranks


def thinned_rank_counts(
    scalar_draws: np.ndarray, true_values: np.ndarray, factors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_counts` of each scalar's draws thinned by its own factor, without copying them.

    Thinning by ``f`` keeps every ``f``-th draw of each chain, starting with the first.

    Parameters
    ----------
    scalar_draws : numpy.ndarray
        Posterior draws shaped ``(K, chains, draws)``: scalar k's in ``scalar_draws[k]``.
    true_values : numpy.ndarray
        The values the prior draw took, shaped ``(K,)``.
    factors : numpy.ndarray
        Each scalar's positive integer thinning factor, shaped ``(K,)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(below, ties)`` among the kept draws, each shaped ``(K,)``.
    """
    draws = np.asarray(scalar_draws, dtype=float)
    true_values = np.asarray(true_values, dtype=float)
    factors = np.asarray(factors)
    if draws.ndim != 3 or true_values.shape != draws.shape[:1] or factors.shape != true_values.shape:
        raise ValueError(
            f"expected draws (K, chains, draws), K true values and K factors, got {draws.shape}, "
            f"{true_values.shape} and {factors.shape}"
        )
    if not np.issubdtype(factors.dtype, np.integer) or np.any(factors < 1):
        raise ValueError(f"thinning factors must be positive integers, got {factors}")
    if np.isnan(true_values).any():
        raise ValueError("cannot rank a NaN true value")
    kept = _kept_draws(draws.shape[2], factors)[:, None, :]
    truth = true_values[:, None, None]
    below = np.count_nonzero((draws < truth) & kept, axis=(1, 2))
    equal = draws == truth
    ties = np.count_nonzero(equal & kept, axis=(1, 2)) if equal.any() else np.zeros_like(below)
    return below, ties


def _kept_draws(draws: int, factors: np.ndarray) -> np.ndarray:
    """Whether thinning each chain by each factor keeps each draw, ``(K, draws)``."""
    unique, inverse = np.unique(factors, return_inverse=True)
    kept = np.zeros((unique.size, draws), dtype=bool)
    for row, factor in zip(kept, unique.tolist(), strict=True):
        row[::factor] = True
    return kept[inverse]


def auto_thin_factors(total_draws: int, ess_bulk: np.ndarray, ess_tail: np.ndarray) -> np.ndarray:
    """Thinning factors that leave about one draw per effective sample [2]_.

    Parameters
    ----------
    total_draws : int
        Posterior draws over all chains, ``S``.
    ess_bulk, ess_tail : numpy.ndarray
        Bulk and tail effective sample sizes of each variable, shaped ``(K,)``.

    Returns
    -------
    numpy.ndarray
        ``ceil(S / min(ess_bulk, ess_tail))`` clipped to ``1..S``, as integers shaped ``(K,)``; 1 where
        that ESS is not a positive finite number (nothing to go by).
    """
    bulk, tail = np.asarray(ess_bulk, dtype=float), np.asarray(ess_tail, dtype=float)
    ess = np.where(tail < bulk, tail, bulk)  # Python's min(): the bulk unless the tail is smaller
    usable = np.isfinite(ess) & (ess > 0) & (total_draws >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.clip(np.ceil(total_draws / ess), 1, max(total_draws, 1))
    return np.where(usable, factors, 1).astype(int)
