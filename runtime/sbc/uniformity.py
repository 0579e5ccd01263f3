"""Whether ranks are uniform, across an ensemble.

Randomized PIT values, the gamma statistic of the ECDF and its p-value, the simultaneous ECDF band, and
the coverage of central posterior intervals. Pure NumPy/SciPy, arrays in, arrays out.

The gamma test's p-value ``P(gamma' <= gamma_obs)`` comes in three pieces, nondecreasing in gamma:

* body (p above ~0.015): a lookup in one seeded Monte Carlo sample of ``GAMMA_NULL_SIMULATIONS``
  statistics per ``(N, K)`` (relative error under ~2.5%), cached in memory and on disk;
* tail (down to p ~ 1e-15): exact, by a forward recursion over the evaluation points of the probability
  that the ECDF leaves the acceptance set ``{gamma > t}`` [2]_, summed over where it leaves (no
  cancellation), memoized per observed gamma; ~5 ms per new value at N <= 10^4;
* below: the Bonferroni bound ``(K - 1) max(gamma, 1e-30)``, capped by the exact value at the floor.

For N beyond ~7e6 (the recursion's cost grows as N) the tail falls back to the Monte Carlo p-value
capped by the Bonferroni bound.

References
----------
.. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018). Validating
   Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.
.. [2] Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
   uniformity and its applications in goodness-of-fit evaluation and multiple sample
   comparison. Statistics and Computing 32, 32.
.. [3] Modrák, M., Moon, A. H., Kim, S., Bürkner, P., Huurre, N., Faltejsková, K., Gelman, A.
   and Vehtari, A. (2023). Simulation-based calibration checking for Bayesian computation:
   the choice of test quantities shapes sensitivity. Bayesian Analysis.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

#: Monte Carlo draws of the gamma statistic under uniformity, for the body of the p-value (the tail,
#: p below ~0.015, is computed exactly; see GAMMA_TAIL_COUNT).
GAMMA_NULL_SIMULATIONS = 100_000
#: Seed of the null simulation when no generator is given, so verdicts are reproducible.
GAMMA_NULL_SEED = 20_220_202
#: Most evaluation points of the ECDF: K = min(N, this), keeping the null's cost O(n_sim * K).
GAMMA_MAX_POINTS = 100

_NULL_BATCH = 10_000


# --- ranks, thinning and PIT ----------------------------------------------------------------


def randomized_pit(ranks: npt.ArrayLike, max_ranks: npt.ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """Map ranks with (possibly) differing ``max_rank`` to continuous PIT values.

    ``u = (rank + U(0, 1)) / (max_rank + 1)``: a rank uniform on ``0..max_rank`` gives ``u``
    exactly Uniform(0, 1), so ranks from fits that kept different numbers of draws (auto
    thinning) can be tested together.

    Parameters
    ----------
    ranks : array_like of int
        SBC ranks.
    max_ranks : array_like of int
        Number of kept draws of each rank (broadcast against ``ranks``).
    rng : numpy.random.Generator
        Source of the uniform jitter.

    Returns
    -------
    numpy.ndarray
        PIT values in ``[0, 1]``, shaped like the broadcast inputs.
    """
    r = np.asarray(ranks, dtype=float)
    m = np.asarray(max_ranks, dtype=float)
    r, m = np.broadcast_arrays(r, m)
    if np.any(m < 0) or np.any(r < 0) or np.any(r > m):
        raise ValueError("ranks must lie in 0..max_rank")
    return (r + rng.random(r.shape)) / (m + 1.0)


# --- uniformity: the gamma statistic of Säilynoja et al. (2022) -------------------------------


def _num_points(n: int, num_points: int | None) -> int:
    if num_points is None:
        return max(2, min(n, GAMMA_MAX_POINTS))
    if num_points < 2:
        raise ValueError(f"num_points must be at least 2, got {num_points}")
    return num_points


_TABLE_FLOOR = 1e-30
"""The gamma table stores 0 for every count whose value ``2 * min(P(X <= c), P(X >= c))`` is surely below
this (by Bernstein's inequality), so it holds ~12 sqrt(N) + 50 columns, not N + 1 (at R = 10^6, 10 MB instead
of 800 MB). Every value it stores is the exact one."""


def _bernstein_spread(variance: np.ndarray | float, tail: float) -> np.ndarray:
    """A distance ``d`` with ``P(X - E X >= d)`` and ``P(X - E X <= -d)`` both at most ``tail``.

    Bernstein's inequality for a sum of independent terms within 1 of their means (binomial, Poisson):
    ``P(|X - E X| >= d) <= exp(-d^2 / (2 (variance + d / 3)))`` on each side.
    """
    a = -np.log(tail)
    return np.asarray(a / 3 + np.sqrt(a * a / 9 + 2 * a * np.asarray(variance, dtype=float)))


@dataclass(frozen=True)
class _GammaTable:
    """``2 * min(P(X <= c), P(X >= c))`` for ``X ~ Bin(n, i/k)``, one row per ``i``.

    Row ``i - 1`` holds the counts ``c = low[i - 1] + j``; counts outside a row's window (and above n)
    count as 0 (their value is below ``_TABLE_FLOOR``).
    """

    low: np.ndarray
    values: np.ndarray


@lru_cache(maxsize=8)
def _gamma_table(n: int, k: int) -> _GammaTable:
    from scipy.stats import binom  # scipy.stats costs ~0.6 s to import: only the report needs it

    z = np.arange(1, k) / k
    spread = _bernstein_spread(n * z * (1 - z), _TABLE_FLOOR / 2)
    low = np.maximum(0, np.floor(n * z - spread)).astype(np.int64)
    high = np.minimum(n, np.ceil(n * z + spread)).astype(np.int64)
    counts = low[:, None] + np.arange(int((high - low).max()) + 1)[None, :]
    # Row i at count c equals row k - i at count n - c: evaluate both from the same arguments, so that
    # mirrored samples tie exactly (rounding must not split a tie: the p-value counts ties as <=).
    i = np.arange(1, k)[:, None]
    at = np.where(i > k - i, n - counts, counts)
    at = np.where(2 * i == k, np.minimum(at, n - at), at)
    zz = np.minimum(i, k - i) / k
    values = np.where(counts <= n, 2.0 * np.minimum(binom.cdf(at, n, zz), binom.sf(at - 1, n, zz)), 0.0)
    low.setflags(write=False)
    values.setflags(write=False)
    return _GammaTable(low, values)


def _gamma_from_counts(table: _GammaTable, counts: np.ndarray) -> np.ndarray:
    """Gamma for each row of ``counts`` (``N * ECDF`` at the ``k - 1`` interior points)."""
    index = counts - table.low
    inside = (index >= 0) & (index < table.values.shape[1])
    rows = np.arange(table.values.shape[0])
    picked = table.values[rows, np.clip(index, 0, table.values.shape[1] - 1)]
    return np.where(inside, picked, 0.0).min(axis=-1)


def _ecdf_counts(pit: np.ndarray, k: int) -> np.ndarray:
    z = np.arange(1, k) / k
    return np.searchsorted(np.sort(pit), z, side="right")


def _check_pit(pit: np.ndarray) -> np.ndarray:
    values = np.asarray(pit, dtype=float).reshape(-1)
    if np.any(~np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError("PIT values must lie in [0, 1]")
    return values


def gamma_statistic(pit: np.ndarray, *, num_points: int | None = None) -> float:
    """The gamma statistic of the ECDF of PIT values against Uniform(0, 1) [2]_ [3]_.

    ``gamma = 2 * min_i min(Bin(N F(z_i); N, z_i), 1 - Bin(N F(z_i) - 1; N, z_i))`` over the
    evaluation points ``z_i = i / K``, ``i = 1..K-1``, where ``Bin`` is the binomial CDF and
    ``F`` the ECDF of the ``N`` values. Small values mean non-uniform.

    Parameters
    ----------
    pit : numpy.ndarray
        PIT values in ``[0, 1]``.
    num_points : int, optional
        ``K``; by default ``min(N, GAMMA_MAX_POINTS)`` (``K = N`` as recommended for
        continuous values, capped for large ensembles).

    Returns
    -------
    float
        The statistic, NaN for an empty sample.
    """
    values = _check_pit(pit)
    if values.size == 0:
        return float("nan")
    k = _num_points(values.size, num_points)
    return float(_gamma_from_counts(_gamma_table(values.size, k), _ecdf_counts(values, k)))


def _simulate_gamma_null(n: int, k: int, num_simulations: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted gamma statistics of ``num_simulations`` Uniform(0, 1) samples of size ``n``."""
    table = _gamma_table(n, k)
    cell = np.full(k, 1.0 / k)
    out = np.empty(num_simulations)
    for start in range(0, num_simulations, _NULL_BATCH):
        size = min(_NULL_BATCH, num_simulations - start)
        # Counts of a uniform sample in the K cells; their cumulative sums are N * ECDF(z_i).
        counts = np.cumsum(rng.multinomial(n, cell, size=size)[:, :-1], axis=1)
        out[start : start + size] = _gamma_from_counts(table, counts)
    out.sort()
    out.setflags(write=False)
    return out


GAMMA_NULL_FORMAT = 2
"""Part of a stored null's file name: bump it whenever the statistic or its simulation changes."""
_null_directory: Path | None = None
_nulls: dict[tuple[int, int], np.ndarray] = {}


def use_gamma_null_cache(directory: Path | None) -> None:
    """Keep the simulated null distributions in ``directory`` too (None: in this process only).

    A null depends only on the sample size (and :data:`GAMMA_NULL_SIMULATIONS`, the seed and the
    format), so a later run with the same R reads it back instead of simulating it again (about a
    second for R = 100, more for larger R).
    """
    global _null_directory
    _null_directory = directory


def _default_gamma_null(n: int, k: int) -> np.ndarray:
    null = _nulls.get((n, k))
    if null is None:
        null = _stored_null(n, k)
        if null is None:
            null = _simulate_gamma_null(n, k, GAMMA_NULL_SIMULATIONS, np.random.default_rng(GAMMA_NULL_SEED))
            _store_null(n, k, null)
        _nulls[(n, k)] = null
    return null


def _null_path(n: int, k: int) -> Path | None:
    if _null_directory is None:
        return None
    name = f"gamma-null-v{GAMMA_NULL_FORMAT}-n{n}-k{k}-{GAMMA_NULL_SIMULATIONS}-{GAMMA_NULL_SEED}.npy"
    return _null_directory / name


def _stored_null(n: int, k: int) -> np.ndarray | None:
    """The null stored by an earlier run, if it is there and whole."""
    path = _null_path(n, k)
    if path is None or not path.is_file():
        return None
    try:
        null = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if null.shape != (GAMMA_NULL_SIMULATIONS,) or null.dtype != np.float64:
        return None
    null.setflags(write=False)
    return null


def _store_null(n: int, k: int, null: np.ndarray) -> None:
    """Write the null where later runs find it (atomically; a cache that cannot be written is skipped)."""
    path = _null_path(n, k)
    if path is None:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as file:
            np.save(file, null)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def prepare_gamma_null(n: int) -> None:
    """Simulate (or read back) the null distribution the gamma test of ``n`` PIT values uses.

    Also computes the exact tail probabilities the p-values of that size rest on. It is seconds of work,
    which the submitter does while fits run, not after them.
    """
    k = _num_points(n, None)
    _tail(n, k, _switch(_default_gamma_null(n, k)))


# --- the exact null distribution in the tail ------------------------------------------------------

GAMMA_TAIL_COUNT = 1_500
"""Gamma values up to the ``GAMMA_TAIL_COUNT``-th smallest of the Monte Carlo null (p ~ 0.015) get the exact
p-value, so levels up to 0.01 are decided by exact probabilities; above it the Monte Carlo p-value's
relative error is below ~2.5% (it is ``sqrt((1 - p) / (S p))``: 10% at 1e-3, 32% at 1e-4)."""
GAMMA_EXACT_FLOOR = 1e-15
"""Below ``t = GAMMA_EXACT_FLOOR / (K - 1)``, where ``P(gamma <= t) <= 1e-15`` by Bonferroni, the p-value
is the smaller of the exact one at that ``t`` and the bound ``(K - 1) max(gamma, _TABLE_FLOOR)``."""
_KERNEL_TAIL = 1e-30
"""Each tail of the Poisson step left out of the exact recursion; the p-values' absolute error is ~1e-27."""
_EXACT_MAX_WORK = 2e10
"""Multiply-adds of one exact p-value (``(K - 1)`` x table width x step width, ~3e9 at N = 10^6, growing as N)
beyond which the tail is the Monte Carlo p-value capped by the Bonferroni bound (N above ~7e6)."""
_EXACT_COLUMNS = 256
"""Thresholds computed in one recursion."""


def _poisson_logpmf(x: np.ndarray, mu: float) -> np.ndarray:
    from scipy.special import gammaln, xlogy

    with np.errstate(invalid="ignore"):
        return np.where(x >= 0, xlogy(x, mu) - mu - gammaln(np.maximum(x, 0) + 1.0), -np.inf)


@lru_cache(maxsize=8)
def _poisson_step(n: int, k: int) -> tuple[int, np.ndarray]:
    """The counts of one cell, Poisson(n / k): ``(first, pmf)`` over ``first..first + len(pmf) - 1``."""
    mu = n / k
    spread = float(_bernstein_spread(mu, _KERNEL_TAIL))
    first, last = max(0, int(np.floor(mu - spread))), min(n, int(np.ceil(mu + spread)))
    pmf = np.exp(_poisson_logpmf(np.arange(first, last + 1), mu))
    pmf.setflags(write=False)
    return first, pmf


def _convolve_columns(f: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each column of ``f`` convolved with ``kernel`` (full length), by direct sums of products.

    No FFT: its rounding would swamp tiny probabilities. Column by column, each over its own nonzero run:
    single-threaded, so its time does not depend on other processes on the machine as multithreaded BLAS
    products do (a Toeplitz product was 3x faster on idle cores and up to 3x slower on busy ones).
    """
    size = kernel.size
    out = np.zeros((f.shape[0] + size - 1, f.shape[1]))
    for j in range(f.shape[1]):
        nonzero = np.flatnonzero(f[:, j])
        if nonzero.size:
            a, b = nonzero[0], nonzero[-1] + 1
            out[a : b + size - 1, j] = np.convolve(f[a:b, j], kernel)
    return out


def _exact_work(n: int, k: int) -> float:
    return (k - 1) * _gamma_table(n, k).values.shape[1] * _poisson_step(n, k)[1].size


def _exact_cdf(n: int, k: int, thresholds: np.ndarray) -> np.ndarray:
    """``P(gamma <= t)`` under uniformity for each ``t``, exactly, by a forward recursion over the points.

    With the sample size Poissonized (N ~ Poisson(n), then conditioned on N = n, which leaves n iid uniform
    values), the counts ``N_i`` at ``z_i = i / k`` form a random walk with Poisson(n / k) steps. The walk
    "stays" while every ``N_i`` has table value ``> t``; ``gamma <= t`` exactly when it first leaves at
    some point ``i``, so ``P(gamma <= t) = sum_i sum_{c left} P(walk first leaves at i with N_i = c)
    * P(N_k = n | N_i = c) / P(N_k = n)``: a sum of positive terms, accurate however small. Each column
    of the state is one threshold [2]_ (Section 4 computes the band's coverage the same way).
    """
    table = _gamma_table(n, k)
    t = np.asarray(thresholds, dtype=float)
    first, kernel = _poisson_step(n, k)
    log_norm = float(_poisson_logpmf(np.array(n), float(n)))
    width = table.values.shape[1]
    low, f = 0, np.ones((1, t.size))  # the walk starts at N_0 = 0
    left = np.zeros(t.size)
    for i in range(1, k):
        g = _convolve_columns(f, kernel)
        start = low + first
        g = g[: max(0, n + 1 - start)]  # counts above n cannot end at n
        counts = start + np.arange(g.shape[0])
        weight = np.exp(_poisson_logpmf(n - counts, n * (k - i) / k) - log_norm)
        index = counts - table.low[i - 1]
        values = np.where(
            (index >= 0) & (index < width), table.values[i - 1, np.clip(index, 0, width - 1)], 0.0
        )
        stay = values[:, None] > t[None, :]
        left += np.where(stay, 0.0, g * weight[:, None]).sum(axis=0)
        rows = np.flatnonzero(stay.any(axis=1))
        if rows.size == 0:
            break
        f = np.where(stay, g, 0.0)[rows[0] : rows[-1] + 1]
        low = start + int(rows[0])
    return np.minimum(left, 1.0)


_exact: dict[tuple[int, int, float], float] = {}


def _exact_pvalues(n: int, k: int, thresholds: np.ndarray) -> np.ndarray:
    """:func:`_exact_cdf`, remembered per ``(n, k, t)``; thresholds of similar size share a recursion."""
    t = np.asarray(thresholds, dtype=float)
    missing = np.unique([v for v in t.tolist() if (n, k, v) not in _exact])
    for start in range(0, missing.size, _EXACT_COLUMNS):
        chunk = missing[start : start + _EXACT_COLUMNS]
        _exact.update(
            ((n, k, v), p) for v, p in zip(chunk.tolist(), _exact_cdf(n, k, chunk).tolist(), strict=True)
        )
    return np.array([_exact[(n, k, v)] for v in t.tolist()]).reshape(t.shape)


@dataclass(frozen=True)
class _Tail:
    """Where the p-value is exact: gammas in ``(floor, switch]``, with ``P(gamma <= .)`` at both ends."""

    switch: float
    switch_p: float
    floor: float
    floor_p: float


def _switch(null: np.ndarray) -> float:
    return float(null[min(GAMMA_TAIL_COUNT, null.size) - 1])


@lru_cache(maxsize=64)
def _tail(n: int, k: int, switch: float) -> _Tail | None:
    """The exact tail of the null of ``n`` values below ``switch``; None where it would cost too much."""
    if _exact_work(n, k) > _EXACT_MAX_WORK:
        return None
    floor = min(GAMMA_EXACT_FLOOR / (k - 1), switch)
    switch_p, floor_p = _exact_pvalues(n, k, np.array([switch, floor])).tolist()
    return _Tail(switch, switch_p, floor, floor_p)


def _pvalues(n: int, k: int, gamma: np.ndarray, null: np.ndarray) -> np.ndarray:
    """P-values of observed gammas (any shape) of samples of ``n`` values, given the Monte Carlo null.

    ``gamma > switch`` (the body): ``max((1 + #{null <= gamma}) / (1 + S), P(gamma <= switch))``.
    ``floor < gamma <= switch``: exactly ``P(gamma' <= gamma)``. ``gamma <= floor``:
    ``min(P(gamma' <= floor), (K - 1) max(gamma, _TABLE_FLOOR))``. Each piece is nondecreasing in gamma and
    they meet in order, so the p-value is nondecreasing in gamma (the band relies on it). Where the exact
    recursion costs too much (huge N) it is ``min(Monte Carlo, Bonferroni bound)``.
    """
    gamma = np.asarray(gamma, dtype=float)
    p = (1.0 + np.searchsorted(null, gamma, side="right")) / (1.0 + null.size)
    bound = np.minimum(1.0, (k - 1) * np.maximum(gamma, _TABLE_FLOOR))
    tail = _tail(n, k, _switch(null))
    if tail is None:
        return np.minimum(p, bound)
    p = np.maximum(p, tail.switch_p)
    exact = (gamma > tail.floor) & (gamma <= tail.switch)
    if exact.any():
        p[exact] = _exact_pvalues(n, k, gamma[exact])
    below = gamma <= tail.floor
    p[below] = np.minimum(tail.floor_p, bound[below])
    return p


_PVALUE_ROWS = 50_000
"""Samples whose gamma is computed at once (bounds the temporaries at ~40 MB per array)."""


def gamma_pvalues(n: int, cumulative_counts: np.ndarray) -> np.ndarray:
    """P-values of the gamma test of many samples of ``n`` PIT values, as :func:`gamma_uniformity_pvalue`.

    Parameters
    ----------
    n : int
        The size of every sample.
    cumulative_counts : numpy.ndarray of int
        ``N * ECDF(z_i)`` of each sample at the ``K - 1`` points ``z_i = i / K``, shape ``(..., K - 1)``
        (``K`` is taken from the shape; :func:`gamma_points` gives the default).

    Returns
    -------
    numpy.ndarray
        The p-values, shape ``(...)``: the Monte Carlo null's where ``p`` is above ~0.015 (a lookup), exact
        below it down to ~1e-15 (memoized per gamma value), a bound below that (see :func:`_pvalues`).
    """
    counts = np.asarray(cumulative_counts)
    if n < 1 or counts.ndim < 1 or counts.shape[-1] < 1 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError("cumulative_counts must be integer counts at K - 1 >= 1 points, n >= 1")
    k = counts.shape[-1] + 1
    table = _gamma_table(n, k)
    flat = counts.reshape(-1, k - 1)
    gamma = np.concatenate(
        [
            _gamma_from_counts(table, flat[a : a + _PVALUE_ROWS])
            for a in range(0, max(1, len(flat)), _PVALUE_ROWS)
        ]
    )
    return _pvalues(n, k, gamma, _default_gamma_null(n, k)).reshape(counts.shape[:-1])


def gamma_uniformity_pvalue(
    pit: np.ndarray, rng: np.random.Generator | None = None, *, num_points: int | None = None
) -> float:
    """P-value of the gamma test that PIT values are Uniform(0, 1) [2]_ [3]_.

    ``p = P(gamma' <= gamma_obs)`` for ``gamma'`` the :func:`gamma_statistic` of a uniform sample of the
    same size. In the body (p above ~0.015) it is estimated from ``GAMMA_NULL_SIMULATIONS`` simulated
    statistics, ``(1 + #{gamma_sim <= gamma_obs}) / (1 + n_sim)``; in the tail it is computed exactly by
    a recursion over the evaluation points (ties included), and below ~1e-15 it is a Bonferroni bound
    (see :func:`_pvalues`), so p-values stay accurate where many tests are combined.

    Parameters
    ----------
    pit : numpy.ndarray
        PIT values in ``[0, 1]``, e.g. from :func:`randomized_pit`.
    rng : numpy.random.Generator, optional
        Simulates the Monte Carlo null. ``None`` uses a fixed seed and caches the null per ``(N, K)`` in
        the process, so the verdict is reproducible and repeated tests are cheap.
    num_points : int, optional
        ``K`` as in :func:`gamma_statistic`.

    Returns
    -------
    float
        The p-value in ``(0, 1]``, NaN for an empty sample.
    """
    values = _check_pit(pit)
    if values.size == 0:
        return float("nan")
    n = values.size
    k = _num_points(n, num_points)
    counts = _ecdf_counts(values, k)[None, :]
    if rng is None:
        return float(gamma_pvalues(n, counts)[0])
    null = _simulate_gamma_null(n, k, GAMMA_NULL_SIMULATIONS, rng)
    return float(_pvalues(n, k, _gamma_from_counts(_gamma_table(n, k), counts), null)[0])


def gamma_points(n: int) -> np.ndarray:
    """The evaluation points ``z_i = i / K`` (``i = 1..K-1``) of the gamma test of ``n`` PIT values."""
    return np.arange(1, _num_points(n, None)) / _num_points(n, None)


@lru_cache(maxsize=32)
def gamma_band(n: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simultaneous band of the ECDF of ``n`` PIT values that the gamma test at ``level`` draws.

    The ECDF leaves the band at some evaluation point exactly when
    ``gamma_uniformity_pvalue(pit) <= level``: the p-value is nondecreasing in gamma, so the test rejects
    exactly when gamma is at most the largest table value ``t*`` whose p-value is ``<= level`` (found by
    bisection over the table's values), and the band holds the counts whose value exceeds ``t*``.
    Cached per ``(n, level)``: every panel of a plot shares it; the arrays are read-only.

    Returns
    -------
    tuple of numpy.ndarray
        ``(z, lower, upper)``: the test's evaluation points ``z_i = i / K`` (``i = 1..K-1``) and the
        lowest and highest ECDF values at each that lie inside the band.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    k = _num_points(n, None)
    table, null = _gamma_table(n, k), _default_gamma_null(n, k)
    candidates = np.unique(table.values)
    below, above = -1, candidates.size  # p(candidates[below]) <= level < p(candidates[above])
    while above - below > 1:
        middle = (below + above) // 2
        if _pvalues(n, k, candidates[middle : middle + 1], null)[0] <= level:
            below = middle
        else:
            above = middle
    z = gamma_points(n)
    if below < 0:  # no sample is rejected at this level: the band holds every ECDF
        lower, upper = np.zeros_like(z), np.ones_like(z)
    else:
        inside = table.values > candidates[below]
        first = np.argmax(inside, axis=1)
        last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
        lower, upper = (table.low + first) / n, (table.low + last) / n
    for array in (z, lower, upper):
        array.setflags(write=False)
    return z, lower, upper


def interval_coverage(
    pit: np.ndarray, widths: np.ndarray, prob: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical coverage of central posterior intervals of each nominal width, from PIT values alone.

    The true value lies in the central interval of width ``w`` exactly when its PIT lies within
    ``w / 2`` of 0.5. Returns ``(coverage, low, high)``: the fraction of replicates covered at each
    width and its Clopper-Pearson interval of probability ``prob``.
    """
    from scipy.stats import beta

    values = _check_pit(pit)
    n = values.size
    covered = (np.abs(values[:, None] - 0.5) <= np.asarray(widths, dtype=float)[None, :] / 2).sum(axis=0)
    tail = (1 - prob) / 2
    with np.errstate(invalid="ignore"):
        low = np.where(covered > 0, beta.ppf(tail, covered, n - covered + 1), 0.0)
        high = np.where(covered < n, beta.ppf(1 - tail, covered + 1, n - covered), 1.0)
    return covered / n, low, high


# --- summaries ---------------------------------------------------------------------------------
