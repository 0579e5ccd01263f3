"""Posterior summaries and MCMC convergence diagnostics of one fit, for all its scalars at once.

Rank-normalized split R-hat and bulk/tail ESS (Vehtari et al. 2021) and E-BFMI (Betancourt 2016), as
ArviZ 0.23 computes them (``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk"/"tail")``,
``arviz.bfmi``), but over arrays shaped ``(chains, draws, K)``: ArviZ (and arviz-stats 0.8) loop over
scalars in Python, at 3.0-4.4 ms each on the development VM; here each step is a few NumPy/SciPy calls
over a block of :data:`BLOCK_SCALARS` scalars. ``bench/wide_model.py`` (4 chains x 1000 draws, the whole
of a worker's scoring) measures 0.22-0.28 ms per scalar at K = 10 to 10,000 (up to 0.36 when the VM is
slow), of which sorting the draws takes about a quarter, the first autocovariance lags a fifth and
scattering normal scores a tenth. Two things make it so: each scalar's draws are sorted as 16-bit keys
(a radix sort) and then finished by a sort of nearly sorted values, and a block's steps never hold more
than five arrays the size of its draws, so the allocator reuses their memory instead of touching fresh
pages, which on the VM costs more than the arithmetic.
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

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import next_fast_len
from scipy.special import ndtri

MIN_DRAWS = 4
"""Fewer draws per chain give NaN diagnostics, as in ArviZ."""
TAIL_PROBABILITIES = (0.05, 0.95)
"""The quantiles whose indicator ESS is the tail ESS (ArviZ's default)."""
QUANTILES = (0.05, 0.5, 0.95)
"""The posterior quantiles every scalar's result records."""
_BLOM_OFFSET = 3 / 8
LAG_STAGES = (16, 32, 64)
"""How many autocovariance lags are summed directly, stage by stage, before the FFT takes every lag:
Geyer's truncation of well-mixed chains comes within the first few."""
BLOCK_SCALARS = 32
"""Scalars processed together: enough to spread NumPy's per-call costs, few enough that the block's
arrays (1 MB each for 4 chains x 1000 draws) stay in the CPU's cache and in the allocator's free memory."""
_KEY_SAMPLE_STEP = 16  # the sort's keys span the percentiles of every 16th draw
_FIELDS = 8  # mean, sd, q5, median, q95, rhat, ess_bulk, ess_tail


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
    with a non-finite draw or fewer than :data:`MIN_DRAWS` draws per chain. Scalars are taken
    :data:`BLOCK_SCALARS` at a time (:func:`summarize_block`).

    Parameters
    ----------
    draws : numpy.ndarray
        Posterior draws shaped ``(chains, draws, K)``.

    Returns
    -------
    ScalarSummaries
        One ``(K,)`` array per statistic.
    """
    values = np.asarray(draws, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"expected draws shaped (chains, draws, K), got {values.shape}")
    table = np.empty((_FIELDS, values.shape[2]))
    for start in range(0, values.shape[2], BLOCK_SCALARS):
        block = slice(start, start + BLOCK_SCALARS)
        table[:, block] = _summary_table(np.ascontiguousarray(values[:, :, block].transpose(2, 0, 1)))
    return ScalarSummaries(*table)


def summarize_block(scalars: np.ndarray) -> ScalarSummaries:
    """:func:`summarize_scalars` of a block of scalars, each one's draws together: ``(K, chains, draws)``.

    All K at once: K is best about :data:`BLOCK_SCALARS`. Each scalar's draws are sorted once: the sort
    gives the ranks of R-hat and bulk ESS, the median the tail R-hat folds around, the quantiles and
    the tail ESS's indicators.

    Parameters
    ----------
    scalars : numpy.ndarray
        C-contiguous draws shaped ``(K, chains, draws)``.

    Returns
    -------
    ScalarSummaries
        One ``(K,)`` array per statistic.
    """
    if scalars.ndim != 3 or not scalars.flags.c_contiguous or scalars.dtype != np.float64:
        raise ValueError(
            f"expected C-contiguous float64 draws shaped (K, chains, draws), got {scalars.dtype} {scalars.shape}"
        )
    return ScalarSummaries(*_summary_table(scalars))


def _summary_table(scalars: np.ndarray) -> np.ndarray:
    """The :class:`ScalarSummaries` fields of ``(K, chains, draws)`` draws, as rows of a ``(8, K)`` array."""
    count, _, length = scalars.shape
    rows = scalars.reshape(count, -1)
    table = np.full((_FIELDS, count), np.nan)
    with np.errstate(invalid="ignore", over="ignore"):  # a non-finite draw makes its scalar's NaN
        if rows.shape[1]:
            table[0] = rows.mean(axis=1)
        if rows.shape[1] > 1:
            table[1] = rows.std(axis=1, ddof=1)
    finite = np.isfinite(rows).all(axis=1) if length >= MIN_DRAWS else np.zeros(count, dtype=bool)
    if finite.any():
        table[2:, finite] = _sorted_summaries(scalars if finite.all() else scalars[finite])
    if rows.shape[1] and not finite.all():
        table[2:5, ~finite] = np.quantile(rows[~finite], QUANTILES, axis=1)
    return table


def _sorted_summaries(scalars: np.ndarray) -> np.ndarray:
    """Quantiles, R-hat, bulk ESS and tail ESS of finite ``(K, chains, draws)`` draws, as ArviZ's.

    Returns the rows q5, median, q95, rhat, ess_bulk and ess_tail of a ``(6, K)`` array. The steps
    follow one another so that no more than five arrays the size of the draws are alive at once: the
    allocator then reuses their memory block after block, where touching fresh memory would cost more
    than the arithmetic.
    """
    count, chains, length = scalars.shape
    split = _split_chains(scalars)
    positions, ordered = _sort_rows(split.reshape(count, -1))
    probabilities = QUANTILES + TAIL_PROBABILITIES
    # With an even number of draws per chain the split chains hold every draw: their sort is all draws'.
    quantiles = (
        _sorted_quantiles(ordered, probabilities)
        if length % 2 == 0
        else np.quantile(scalars.reshape(count, -1), probabilities, axis=1)
    )
    ties = _tie_scores(positions, ordered)
    rhat = _folded_rhat(positions, ordered, split.shape) if chains > 1 else np.full(count, np.nan)
    del ordered  # the fold overwrote it
    # The three series whose ESS is wanted: the bulk's normal scores, then the two tail indicators.
    series = np.empty((3, *split.shape))
    _z_scores(positions, ties, out=series[0])
    del positions
    for indicator, quantile in zip(series[1:], quantiles[len(QUANTILES) :], strict=True):
        np.less_equal(split, quantile[:, None, None], out=indicator)
    series = series.reshape(-1, *split.shape[1:])
    within, between = _center_chains(series)
    ess_bulk, ess_low, ess_high = _ess(series, within, between).reshape(3, count)
    if chains > 1:  # ArviZ gives no R-hat for one chain; else the larger of the bulk's and the tail's
        bulk = _rhat(within[:count], between[:count], split.shape[2])
        rhat = np.where(rhat > bulk, rhat, bulk)  # ArviZ's max(): a NaN bulk wins
    ess_tail = np.where(ess_high < ess_low, ess_high, ess_low)  # ArviZ's min()
    return np.concatenate([quantiles[: len(QUANTILES)], [rhat, ess_bulk, ess_tail]])


def _split_chains(scalars: np.ndarray) -> np.ndarray:
    """Each chain's first and last half as two chains: ``(K, C, N)`` to ``(K, 2C, N // 2)``.

    An odd chain's middle draw is left out, as ArviZ does.
    """
    count, chains, length = scalars.shape
    if length % 2:
        scalars = np.delete(scalars, length // 2, axis=2)
    return scalars.reshape(count, 2 * chains, length // 2)


def _sort_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's sort order, as positions in the flattened array, and the rows sorted.

    NumPy sorts 16-bit integers by radix sort, in linear time, and floats by comparisons: the rows are
    first put in a coarse order (:func:`_coarse_order`), sorted but among values close together; a
    stable sort of the values so permuted, nearly sorted and so quick, finishes the job (about 2.5 times
    as fast as ``np.argsort``). Ties keep their order.
    """
    order = _coarse_order(rows)
    values = rows.ravel()[order]
    fine = _flat_positions(np.argsort(values, axis=1, kind="stable"))
    order = order.ravel()[fine]
    values = values.ravel()[fine]  # one after the other: the unsorted arrays go as the sorted ones come
    return order, values


def _coarse_order(rows: np.ndarray) -> np.ndarray:
    """A permutation of each row, as flat positions, that sorts it but among values close together.

    Each value gets a 16-bit key, linear in the value between about the row's 1st and 99th percentiles
    (those of every :data:`_KEY_SAMPLE_STEP`-th value) and clipped beyond, so heavy tails leave the
    bulk its resolution; a radix sort of the keys gives the permutation. The keys only make the final
    sort fast: whatever they are, this is a permutation.
    """
    sample = rows[:, ::_KEY_SAMPLE_STEP]
    extreme = sample.shape[1] // 100
    ends = np.partition(sample, (extreme, sample.shape[1] - 1 - extreme), axis=1)
    low, high = ends[:, extreme, None], ends[:, sample.shape[1] - 1 - extreme, None]
    top = float(np.iinfo(np.uint16).max)
    with np.errstate(over="ignore", invalid="ignore"):  # draws near the float limits: useless keys
        keys = rows - low
        keys *= top / np.where(high > low, high - low, np.inf)
        np.clip(keys, 0.0, top, out=keys)
        return _flat_positions(np.argsort(keys.astype(np.uint16), axis=1, kind="stable"))


def _flat_positions(order: np.ndarray) -> np.ndarray:
    """Row-wise sort orders as positions in the flattened array (faster to gather and scatter with)."""
    order += (np.arange(order.shape[0]) * order.shape[1])[:, None]
    return order


def _folded_rhat(positions: np.ndarray, ordered: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """R-hat of the split chains' draws folded around their median: ArviZ's tail R-hat.

    ``positions`` and ``ordered`` are the draws' flat sort order and the draws sorted, ``(K, n)``;
    ``shape`` is the split chains', ``(K, chains, draws)``. Overwrites ``ordered``.
    """
    half = ordered.shape[1] // 2
    median = (ordered[:, half - 1] + ordered[:, half]) / 2
    folded = np.abs(np.subtract(ordered, median[:, None], out=ordered), out=ordered)
    # |x - median| is V-shaped in the sorted order: a stable sort merges its two runs in linear time, and
    # compares these non-negative floats fastest as the integers their bits spell (the same order).
    order = _flat_positions(np.argsort(folded.view(np.int64), axis=1, kind="stable"))
    folded = folded.ravel()[order].reshape(ordered.shape)
    # The draws' places in the fold's order, kept in the memory of the unsorted fold (no longer needed).
    fold_positions = np.take(positions, order, out=ordered.view(np.int64), mode="clip")  # unbuffered
    del order
    # The folded draws' normal scores, in the memory of the sorted fold: its ties are read first.
    scores = _z_scores(fold_positions, _tie_scores(fold_positions, folded), out=folded)
    return _rhat(*_center_chains(scores.reshape(shape)), shape[2])


def _tie_scores(positions: np.ndarray, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat places of tied values, and the normal scores of their average ranks.

    ``ordered`` holds each row sorted, gathered from the flat ``positions``. Tied values share their
    average rank (``scipy.stats.rankdata(method="average")``, as in ArviZ's ``_z_scale``).
    """
    n = ordered.shape[1]
    repeats = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])  # in (count, n - 1) coordinates
    repeated = repeats + repeats // (n - 1) + 1  # the same places in (count, n) coordinates
    starts = np.ones(repeated.size, dtype=bool)  # where a run of equal values starts repeating
    np.not_equal(repeated[1:], repeated[:-1] + 1, out=starts[1:])
    ends = np.ones(repeated.size, dtype=bool)
    ends[:-1] = starts[1:]
    first = repeated[starts] - 1  # each run's first value, which does not repeat the one before
    last = repeated[ends]
    tied = _normal_scores(first % n + (last - first) / 2.0 + 1.0, n)
    places, runs = positions.ravel(), np.cumsum(starts) - 1  # runs: the run each repeated value is in
    return np.concatenate([places[first], places[repeated]]), np.concatenate([tied, tied[runs]])


def _z_scores(positions: np.ndarray, ties: tuple[np.ndarray, np.ndarray], out: np.ndarray) -> np.ndarray:
    """Write into ``out`` the normal scores of each row's ranks, each at its value's place, and return it.

    ``positions`` is each row's flat sort order, ``(K, n)``; ``ties`` gives the scores of tied values
    (:func:`_tie_scores`). ``out`` is C-contiguous with K x n values. Ties are few (folding around the
    median makes one pair), so the scores come from one table of n values, corrected where values repeat.
    """
    scores = out.reshape(-1)
    scores[positions] = _normal_score_table(positions.shape[1])
    places, tied = ties
    scores[places] = tied
    return out


def _normal_scores(ranks: np.ndarray, n: int) -> np.ndarray:
    """Blom's normal scores ``ndtri((rank - 3/8) / (n + 1/4))`` of ranks among n (ArviZ's ``_z_scale``)."""
    return ndtri((ranks - _BLOM_OFFSET) / (n - 2 * _BLOM_OFFSET + 1))


@lru_cache(maxsize=8)
def _normal_score_table(n: int) -> np.ndarray:
    """The normal scores of ranks 1..n without ties (``ndtri`` costs about 0.1 microseconds a value)."""
    table = _normal_scores(np.arange(1.0, n + 1.0), n)
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


def _center_chains(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Center each chain of ``(K, chains, draws)`` in place.

    Returns the mean within-chain variance and the variance of the chain means, both ``(K,)``.
    """
    draws = series.shape[2]
    means = series.mean(axis=2)
    series -= means[:, :, None]
    return np.vecdot(series, series).mean(axis=1) / (draws - 1), np.var(means, axis=1, ddof=1)


def _rhat(within: np.ndarray, between: np.ndarray, draws: int) -> np.ndarray:
    """Potential scale reduction from the mean within-chain variance and the chain means' variance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((draws * between / within + draws - 1) / draws)


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain from the sampler's ``(chains, draws)`` energy.

    Parameters
    ----------
    energy : numpy.ndarray
        The Hamiltonian's energy at each draw, ``(chains, draws)`` (one chain may be 1-D).

    Returns
    -------
    numpy.ndarray
        One value per chain, as ``arviz.bfmi``.
    """
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)


def _ess(centered: np.ndarray, within: np.ndarray, between: np.ndarray) -> np.ndarray:
    """Effective sample size of each ``(chains, draws)`` row of centered ``(K, chains, draws)``, as ArviZ's.

    ``within`` and ``between`` are :func:`_center_chains`' variances. Autocovariances come from direct
    sums over the first lags, :data:`LAG_STAGES` at a time, until Geyer's truncation is settled (early
    for well-mixed chains); the series still unsettled after the last stage take every lag by FFT.
    """
    count, chains, draws = centered.shape
    constant = (centered.max(axis=(1, 2)) - centered.min(axis=(1, 2))) < np.finfo(float).resolution
    ess = np.empty(count)
    pending = np.arange(count)
    acov = np.empty((count, 0))
    for lags in LAG_STAGES:
        acov = np.concatenate([acov, _direct_autocov(centered, acov.shape[1], min(lags, draws))], axis=1)
        found, settled = _geyer_ess(acov, within[pending], between[pending], chains, draws)
        ess[pending[settled]] = found[settled]
        if settled.all():
            break
        pending, acov, centered = pending[~settled], acov[~settled], centered[~settled]
    else:
        ess[pending] = _geyer_ess(_fft_autocov(centered), within[pending], between[pending], chains, draws)[0]
    ess[constant] = chains * draws
    return ess


def _direct_autocov(centered: np.ndarray, first: int, last: int) -> np.ndarray:
    """Chain-averaged autocovariances of centered ``(K, chains, draws)`` at lags ``first..last-1``, by sums.

    Every lag below ``last`` pairs each of the first ``draws - last + 1`` draws with a later one: one
    product of sliding windows sums those pairs for all lags. The few pairs left, among the last
    ``last - 1`` draws, are summed the same way over a zero-padded copy of those draws.
    """
    count, chains, draws = centered.shape
    overlap = draws - last + 1
    windows = sliding_window_view(centered, overlap, axis=2)[:, :, first:last]  # [..., lag, i]: x[lag + i]
    sums = np.vecdot(centered[:, :, None, :overlap], windows)
    rest = np.zeros((count, chains, 2 * last))
    rest[:, :, : last - 1] = centered[:, :, overlap:]
    rest_windows = sliding_window_view(rest, last - 1, axis=2)[:, :, first:last]
    sums += np.vecdot(rest[:, :, None, : last - 1], rest_windows)
    return sums.sum(axis=1) / (draws * chains)


def _fft_autocov(centered: np.ndarray) -> np.ndarray:
    """Chain-averaged autocovariances of centered ``(K, chains, draws)`` at every lag (FFT, as ArviZ)."""
    n = centered.shape[-1]
    spectrum = np.fft.rfft(centered, n=next_fast_len(2 * n), axis=-1)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=next_fast_len(2 * n), axis=-1)[..., :n].mean(axis=1) / n


def _geyer_ess(
    acov: np.ndarray, within: np.ndarray, between: np.ndarray, chains: int, draws: int
) -> tuple[np.ndarray, np.ndarray]:
    """ESS by Geyer's initial monotone sequence, as ArviZ's loop, and whether the lags given settled it.

    ``acov`` holds the chain-averaged autocovariances at lags 0..L-1, shaped ``(K, L)``; ``within`` and
    ``between`` the mean within-chain variance and the chain means' variance, ``(K,)``.

    ArviZ takes pairs of autocorrelations (rho[2m], rho[2m + 1]): pair m >= 1 is computed while pair m - 1
    sums to > 0 and 2m - 1 < draws - 3, kept only if it sums to >= 0; the kept sums are then made
    non-increasing (a running minimum), and the even element of the last pair computed is added if > 0.
    """
    count = acov.shape[0]
    size = chains * draws
    var_plus = within * (draws - 1.0) / draws + between
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (within[:, None] - acov) / var_plus[:, None]
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
