"""A replicate's side of SBC, computed by the worker.

The rank of the true value among the posterior draws, and the thinning that makes the kept draws close
to independent first. NumPy only.

References
----------
.. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018). Validating
   Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

import math

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
    if np.isnan(true_values).any():
        raise ValueError("cannot rank a NaN true value")
    return np.count_nonzero(draws < true_values, axis=0), np.count_nonzero(draws == true_values, axis=0)


def break_ties(below: np.ndarray, ties: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBC ranks ``below + U{0, ..., ties}``: ties broken at random, scalar by scalar in order.

    The generator is drawn only for scalars with ties, so the ranks of continuous draws need no draws.
    """
    ranks = np.array(below, dtype=int)
    for scalar in np.flatnonzero(ties):
        ranks[scalar] += int(rng.integers(0, ties[scalar] + 1))
    return ranks


def thin_chains(chain_draws: np.ndarray, factor: int) -> np.ndarray:
    """Keep every ``factor``-th draw of each chain, starting with the first.

    Parameters
    ----------
    chain_draws : numpy.ndarray
        Shaped ``(chains, draws, *rest)``, e.g. ``(chains, draws, K)`` for K scalars.
    factor : int
        Positive thinning factor.

    Returns
    -------
    numpy.ndarray
        The kept draws of all chains, chains one after the other: ``(chains * ceil(draws / factor), *rest)``.
    """
    chain_draws = np.asarray(chain_draws)
    if chain_draws.ndim < 2:
        raise ValueError(f"expected (chains, draws, ...), got shape {chain_draws.shape}")
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"thinning factor must be a positive integer, got {factor!r}")
    kept = chain_draws[:, :: int(factor)]
    return kept.reshape(-1, *chain_draws.shape[2:])


def auto_thin_factor(total_draws: int, ess_bulk: float, ess_tail: float) -> int:
    """Thinning factor that leaves about one draw per effective sample [2]_.

    Parameters
    ----------
    total_draws : int
        Posterior draws over all chains, ``S``.
    ess_bulk, ess_tail : float
        Bulk and tail effective sample sizes of the variable.

    Returns
    -------
    int
        ``ceil(S / min(ess_bulk, ess_tail))`` clipped to ``1..S``; 1 when the ESS is not a
        positive finite number (nothing to go by).
    """
    ess = min(ess_bulk, ess_tail)
    if total_draws < 1 or not math.isfinite(ess) or ess <= 0:
        return 1
    return max(1, min(total_draws, math.ceil(total_draws / ess)))
