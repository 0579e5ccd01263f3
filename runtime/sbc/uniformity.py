"""Whether ranks are uniform, across an ensemble.

Randomized PIT values, the gamma statistic of the ECDF and its p-value, the simultaneous ECDF band, and
the coverage of central posterior intervals. Pure NumPy/SciPy, arrays in, arrays out.

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

#: Monte Carlo draws of the gamma statistic under uniformity: the smallest attainable p-value is
#: 1e-5, and p-values near 0.01 / 12 (Holm over a dozen quantities) carry ~11% relative error.
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


_TAIL_SDS = 12
"""Counts further than this many binomial standard deviations from the mean give
``2 * min(P(X <= c), P(X >= c)) < 1e-30``: the gamma table stores 0 for them instead of a value, so it
holds ~25 sqrt(N) columns, not N + 1 (at R = 10^6, 10 MB instead of 800 MB)."""


@dataclass(frozen=True)
class _GammaTable:
    """``2 * min(P(X <= c), P(X >= c))`` for ``X ~ Bin(n, i/k)``, one row per ``i``.

    Row ``i - 1`` holds the counts ``c = low[i - 1] + j``; counts outside a row's window (and above n)
    count as 0.
    """

    low: np.ndarray
    values: np.ndarray


@lru_cache(maxsize=8)
def _gamma_table(n: int, k: int) -> _GammaTable:
    from scipy.stats import binom  # scipy.stats costs ~0.6 s to import: only the report needs it

    z = np.arange(1, k) / k
    spread = _TAIL_SDS * np.sqrt(n * z * (1 - z)) + 1
    low = np.maximum(0, np.floor(n * z - spread)).astype(np.int64)
    high = np.minimum(n, np.ceil(n * z + spread)).astype(np.int64)
    counts = low[:, None] + np.arange(int((high - low).max()) + 1)[None, :]
    values = np.where(
        counts <= n,
        2.0 * np.minimum(binom.cdf(counts, n, z[:, None]), binom.sf(counts - 1, n, z[:, None])),
        0.0,
    )
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


GAMMA_NULL_FORMAT = 1
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

    It is seconds of work, which the submitter does while fits run, not after them.
    """
    _default_gamma_null(n, _num_points(n, None))


def gamma_uniformity_pvalue(
    pit: np.ndarray, rng: np.random.Generator | None = None, *, num_points: int | None = None
) -> float:
    """Monte Carlo p-value of the gamma test that PIT values are Uniform(0, 1) [2]_ [3]_.

    The null distribution of :func:`gamma_statistic` for samples of the same size is simulated
    ``GAMMA_NULL_SIMULATIONS`` times; ``p = (1 + #{gamma_sim <= gamma_obs}) / (1 + n_sim)``.

    Parameters
    ----------
    pit : numpy.ndarray
        PIT values in ``[0, 1]``, e.g. from :func:`randomized_pit`.
    rng : numpy.random.Generator, optional
        Simulates the null. ``None`` uses a fixed seed and caches the null per ``(N, K)`` in the
        process, so the verdict is reproducible and repeated tests are cheap.
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
    if rng is None:
        null = _default_gamma_null(n, k)
    else:
        null = _simulate_gamma_null(n, k, GAMMA_NULL_SIMULATIONS, rng)
    observed = gamma_statistic(values, num_points=k)
    at_most = int(np.searchsorted(null, observed, side="right"))
    return (1 + at_most) / (1 + null.size)


def gamma_points(n: int) -> np.ndarray:
    """The evaluation points ``z_i = i / K`` (``i = 1..K-1``) of the gamma test of ``n`` PIT values."""
    return np.arange(1, _num_points(n, None)) / _num_points(n, None)


@lru_cache(maxsize=32)
def gamma_band(n: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simultaneous band of the ECDF of ``n`` PIT values that the gamma test at ``level`` draws.

    The ECDF leaves the band at some evaluation point exactly when
    ``gamma_uniformity_pvalue(pit) <= level``: the band is taken from the test's own null distribution
    (the one ``rng=None`` uses), so picture and test agree by construction. Cached per ``(n, level)``:
    every panel of a plot shares it; the arrays are read-only.

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
    # p = (1 + A) / (1 + S) with A = #{null <= gamma}; the largest A with p <= level is the rejection limit.
    p_values = (1 + np.arange(null.size + 1)) / (1 + null.size)
    limit = int(np.searchsorted(p_values, level, side="right")) - 1
    z = gamma_points(n)
    if limit < 0:  # no sample is rejected at this level: the band holds every ECDF
        lower, upper = np.zeros_like(z), np.ones_like(z)
    else:
        inside = table.values >= null[limit]  # rejected exactly when gamma < null[limit]
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
