"""MCMC convergence diagnostics of one fit, computed by ArviZ.

Rank-normalized split R-hat and bulk/tail ESS (Vehtari et al. 2021) and E-BFMI (Betancourt 2016),
on plain arrays shaped ``(chains, draws)``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from runtime.arviz_quiet import arviz as az


def rank_normalized_diagnostics(chain_draws: np.ndarray) -> tuple[float, float, float]:
    """R-hat, bulk ESS and tail ESS of one scalar's ``(chains, draws)`` draws (NaN where undefined)."""
    if chain_draws.shape[1] < 4 or not np.all(np.isfinite(chain_draws)):
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return (
            float(az.rhat(chain_draws, method="rank")),
            float(az.ess(chain_draws, method="bulk")),
            float(az.ess(chain_draws, method="tail")),
        )


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain from the sampler's ``(chains, draws)`` energy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(az.bfmi(np.asarray(energy, dtype=float)), dtype=float)
