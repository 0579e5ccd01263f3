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


def sbc_rank(draws: np.ndarray, true_value: float, rng: np.random.Generator) -> int:
    """SBC rank of a true value among posterior draws, ties broken at random [1]_.

    Parameters
    ----------
    draws : numpy.ndarray
        Kept (thinned) posterior draws of one scalar, any shape.
    true_value : float
        The value the prior draw took.
    rng : numpy.random.Generator
        Breaks ties: with ``e`` draws equal to the true value the rank is
        ``#{draws < true_value} + U{0, ..., e}``.

    Returns
    -------
    int
        In ``0..draws.size``.
    """
    if math.isnan(true_value):
        raise ValueError("cannot rank a NaN true value")
    values = np.asarray(draws).reshape(-1)
    below = int(np.count_nonzero(values < true_value))
    ties = int(np.count_nonzero(values == true_value))
    return below + (int(rng.integers(0, ties + 1)) if ties else 0)


def thin_chains(chain_draws: np.ndarray, factor: int) -> np.ndarray:
    """Keep every ``factor``-th draw of each chain, starting with the first.

    Parameters
    ----------
    chain_draws : numpy.ndarray
        Shaped ``(chains, draws)``.
    factor : int
        Positive thinning factor.

    Returns
    -------
    numpy.ndarray
        The kept draws of all chains, flattened, ``chains * ceil(draws / factor)`` long.
    """
    chain_draws = np.asarray(chain_draws)
    if chain_draws.ndim != 2:
        raise ValueError(f"expected (chains, draws), got shape {chain_draws.shape}")
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"thinning factor must be a positive integer, got {factor!r}")
    return chain_draws[:, :: int(factor)].reshape(-1)


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
