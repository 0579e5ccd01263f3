"""One uniformity test per variable, from the evidence of all its elements.

A variable with several elements (``z[1..100]``, ``Sigma``, a vector test quantity) is tested as one
hypothesis, "every element's PIT values are uniform", by the Bonferroni combination of two tests that stay
valid when the elements are dependent (they are: they share a fit):

* the **Cauchy combination** [1]_ of the elements' gamma-test p-values, strong when a few elements are
  badly wrong and when the elements are strongly dependent;
* the **pooled-ECDF test**: with the replicates as the independent units, ``g_r(z)``, the fraction of
  replicate ``r``'s elements with PIT at most ``z``, has mean ``z`` under the null whatever the dependence
  between elements; the statistic is ``max_i |mean_r g_r(z_i) - z_i| / sqrt(z_i (1 - z_i))`` over the
  gamma test's evaluation points, with a p-value from a Gaussian multiplier bootstrap [2]_ with the
  replicates' covariance (scaled as a multivariate t with R - 1 degrees of freedom). It is strong when
  every element leans a little the same way, which per-element tests cannot see.

``bench/verdict_power.py`` chose this pair over Holm across elements, the Cauchy combination alone, the
harmonic mean p-value and other pooled weightings, by false alarms and power on simulated PITs.

References
----------
.. [1] Liu, Y. and Xie, J. (2020). Cauchy combination test: a powerful test with analytic p-value
   calculation under arbitrary dependency structures. JASA 115(529), 393-402.
.. [2] Chernozhukov, V., Chetverikov, D. and Kato, K. (2013). Gaussian approximations and multiplier
   bootstrap for maxima of sums of high-dimensional random vectors. Annals of Statistics 41(6), 2786-2819.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runtime.sbc.uniformity import gamma_points

COMBINATION_METHOD = (
    "Bonferroni of the Cauchy combination (Liu & Xie 2020) of the elements' gamma p-values and a "
    "pooled-ECDF test (replicates as units, Anderson-Darling-type weights, Gaussian multiplier bootstrap)"
)
BOOTSTRAP_DRAWS = 19_999
"""Multiplier-bootstrap draws of the pooled test: its smallest p-value is 1 / 20,000, so after the
Bonferroni factor 2 it can still reject at Holm's first step over up to 100 variables at level 0.01."""
UPPER_CLIP = 1.0 - 1e-5
"""Element p-values above this count as this in the Cauchy combination: one element with p = 1 would
otherwise add -infinity and mask every other element (Liu & Xie's statistic is unbounded below)."""
_DRAWS_PER_CHUNK = 1 << 22
"""Bootstrap values (draws * points) made at once: 16 MB of float32."""


def variable_name(quantity: str) -> str:
    """The variable an element belongs to: ``z[3]`` and ``Sigma[2,1]`` give ``z`` and ``Sigma``."""
    return quantity.partition("[")[0]


def cauchy_combination(p_values: npt.ArrayLike) -> np.ndarray:
    """The Cauchy combination test's p-value of equally weighted p-values, over the last axis [1]_.

    ``T = mean_j tan((0.5 - p_j) pi)``, ``p = 0.5 - arctan(T) / pi``, computed without cancellation for
    tiny ``p_j`` and tiny results; NaN where there is no p-value or a NaN one. Valid under arbitrary
    dependence for small levels (asymptotically).
    """
    p = np.clip(np.asarray(p_values, dtype=float), 0.0, UPPER_CLIP)
    if p.shape[-1] == 0:
        return np.full(p.shape[:-1], math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        # tan((0.5 - p) pi) = 1 / tan(p pi): exact for tiny p, where 0.5 - p would round to 0.5.
        statistic = np.mean(1.0 / np.tan(p * math.pi), axis=-1)
        # 0.5 - arctan(T) / pi = arctan(1 / T) / pi for T > 0: exact for huge T.
        return np.where(
            statistic > 0, np.arctan(1.0 / statistic) / math.pi, 0.5 - np.arctan(statistic) / math.pi
        )


@dataclass(frozen=True)
class PooledEcdf:
    """The pooled-ECDF test of one variable.

    ``z`` are the evaluation points, ``ecdf`` the pooled ECDF ``mean_r g_r(z)`` there, ``weights`` the
    fixed scales ``sqrt(z (1 - z))``, ``statistic`` the largest weighted deviation and ``bootstrap`` the
    bootstrap's largest weighted deviations, sorted.
    """

    z: np.ndarray
    ecdf: np.ndarray
    weights: np.ndarray
    statistic: float
    bootstrap: np.ndarray

    @property
    def p_value(self) -> float:
        """``(1 + #{bootstrap >= statistic}) / (1 + draws)``."""
        exceed = self.bootstrap.size - int(np.searchsorted(self.bootstrap, self.statistic, side="left"))
        return (1 + exceed) / (1 + self.bootstrap.size)

    def band(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of the pooled ECDF at the points: it leaves them exactly when ``p <= level``."""
        draws = self.bootstrap.size
        # p <= level  <=>  #{bootstrap >= T} <= level (1 + draws) - 1 =: a  <=>  T > the (a+1)-th largest.
        allowed = math.floor(level * (1 + draws) + 1e-9) - 1
        if allowed < 0:
            return np.zeros_like(self.z), np.ones_like(self.z)
        critical = float(self.bootstrap[draws - 1 - allowed])
        return self.z - critical * self.weights, self.z + critical * self.weights


class PooledCounts:
    """Per replicate, how many of a variable's elements fall between consecutive evaluation points.

    Elements are added one at a time (:meth:`add`), so a variable of 1000 elements over 10,000 replicates
    takes 4 MB here, not a copy of its 80 MB of PIT values.
    """

    def __init__(self, replicates: int) -> None:
        if replicates < 2:
            raise ValueError("the pooled-ECDF test needs at least two replicates")
        self.z = gamma_points(replicates)
        self.counts = np.zeros((replicates, self.z.size + 1), dtype=np.int32)
        self.elements = 0

    def add(self, pit: np.ndarray) -> None:
        """Count one element's PIT values, one per replicate in the order of the others."""
        rows = np.arange(self.counts.shape[0])
        # One value per row, so the (row, interval) pairs are distinct and += counts each once.
        self.counts[rows, np.searchsorted(self.z, pit, side="left")] += 1
        self.elements += 1

    def test(self, seed: int) -> PooledEcdf:
        """The pooled-ECDF test of the elements added; ``seed`` seeds the bootstrap."""
        return _pooled_test(self.z, self.counts, self.elements, seed)


def pooled_ecdf_test(pit: np.ndarray, seed: int) -> PooledEcdf:
    """The pooled-ECDF test of PIT values shaped ``(replicates, elements)``; ``seed`` seeds the bootstrap.

    Needs at least two replicates. The evaluation points are the gamma test's for that many replicates.
    """
    values = np.asarray(pit, dtype=float)
    counts = PooledCounts(values.shape[0])
    for column in values.T:
        counts.add(column)
    return counts.test(seed)


def _pooled_test(z: np.ndarray, counts: np.ndarray, elements: int, seed: int) -> PooledEcdf:
    n = counts.shape[0]
    g = np.cumsum(counts, axis=1)[:, :-1] / elements
    ecdf = g.mean(axis=0)
    weights = np.sqrt(z * (1 - z))
    statistic = float((np.abs(ecdf - z) / weights).max())
    centered = g - ecdf
    # Y = xi' C / sqrt(n (n - 1)) with xi ~ N(0, I_n) has covariance Sigma_hat / n; past K - 1
    # replicates the triangular factor of C (QR) gives the same distribution more cheaply.
    factor: np.ndarray = centered if n <= z.size else np.linalg.qr(centered, mode="r")  # type: ignore[assignment]
    root = (factor / math.sqrt(n * (n - 1))).astype(np.float32)
    rng = np.random.default_rng(seed)
    maxima = np.empty(BOOTSTRAP_DRAWS)
    inverse_weights = (1.0 / weights).astype(np.float32)
    chunk = max(1, _DRAWS_PER_CHUNK // z.size)
    for start in range(0, BOOTSTRAP_DRAWS, chunk):
        size = min(chunk, BOOTSTRAP_DRAWS - start)
        draws = rng.standard_normal((size, root.shape[0]), dtype=np.float32) @ root
        np.abs(draws, out=draws)
        draws *= inverse_weights
        t_scale = np.sqrt(rng.chisquare(n - 1, size=size) / (n - 1))
        maxima[start : start + size] = draws.max(axis=1) / t_scale
    maxima.sort()
    return PooledEcdf(z=z, ecdf=ecdf, weights=weights, statistic=statistic, bootstrap=maxima)


def bootstrap_seed(ensemble_id: str, kind: str, variable: str) -> int:
    """The pooled test's bootstrap seed for one variable of one ensemble: the verdict is reproducible."""
    digest = hashlib.sha256(f"{ensemble_id}\x00{kind}\x00{variable}\x00pooled".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def bonferroni_pair(first: float, second: float) -> float:
    """Either of two tests at half the level: ``min(1, 2 min(p1, p2))``."""
    return min(1.0, 2.0 * min(first, second))
