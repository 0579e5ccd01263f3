"""How to combine the uniformity tests of a variable's elements into one test per variable (issue 20).

Simulates randomized PIT values directly, without Stan: an ensemble is R iid replicates of a variable
with J elements, ``u_rj = Phi(x_rj)`` with ``x_r`` multivariate normal with equicorrelation ``rho``
(elements share a fit, so they are dependent within a replicate); under the null the PITs are exactly
Uniform(0, 1). For R in {30, 100, 1000}, J in {1, 10, 100, 1000} and rho in {0, 0.5, 0.9} it measures,
for each candidate test of "every element of the variable is calibrated":

* the false-alarm rate at level 0.01 over ``--simulations`` null ensembles (default 2,000), with the
  99.9% binomial upper bound of a level-0.01 test's rate and a flag (``*``) above it;
* the power against (a) every element shifted a little, (b) element 1 alone badly wrong, and (c) every
  element's PIT over- or under-dispersed (``u = Phi(c x)``, c > 1: ranks pile at both ends; c < 1: in
  the middle), on the first ``--power-simulations`` (default: as many) of the same draws;
* the size of one element's gamma p-value at the thresholds ``0.01 / J`` (exact below p ~ 0.015, so
  the ratio should be 1 up to simulation error);
* a recommendation computed from the numbers.

Candidates (``p_j`` is the gamma-test p-value [1]_ of element j, computed by the product's
``uniformity.gamma_pvalues``: Monte Carlo in the body, exact in the tail; checked against
``gamma_uniformity_pvalue`` at start-up):

``holm-elements``
    Today's verdict for one variable: reject if ``min_j p_j <= level / J`` (Holm's first step).
``cauchy``
    Cauchy combination [2]_ of the ``p_j``: the product's ``combination.cauchy_combination`` (``p_j``
    above ``1 - 1e-5`` count as that). Valid only asymptotically (small level) under dependence; see
    arviz-devs/arviz-stats#419.
``hmp-vw``
    Harmonic mean of the ``p_j`` times ``e ln J`` (J >= 3), valid under arbitrary dependence [3]_ (the
    plain harmonic mean p-value [4]_ is not [5]_).
``pooled``
    Replicates as the independent units: ``g_r(z) = (1/J) #{j : u_rj <= z}`` at ``z_i = i/K``
    (``K = min(R, 100)``, the gamma test's points) has mean ``z`` under the null whatever the
    dependence; statistic ``max_i |mean_r g_r(z_i) - z_i| / se_i`` with ``se_i`` from the replicates'
    variance (floored at the independent-elements value ``z(1 - z) / J``); p-value from a Gaussian
    multiplier bootstrap [6]_ with the replicates' covariance, divided by ``sqrt(chi2_{R-1} / (R-1))``
    (multivariate t with R - 1 degrees of freedom, a small-sample correction). J = 1: the gamma test.
``pooled-ks``, ``pooled-ad``
    As ``pooled`` with fixed instead of estimated scales: ``max_i |mean_r g_r(z_i) - z_i|`` and the same
    divided by ``sqrt(z_i (1 - z_i))``. Studentizing by the estimated ``se_i`` fails in the tails: under
    dependence few replicates put elements below a small ``z_i``, so ``se_i`` there rests on a handful
    of replicates and is often far too small (at its floor).
``pooled+min``, ``pooled-ad+min``
    Bonferroni of the pooled test and ``holm-elements``: ``min(1, 2 min(p_pooled, J min_j p_j))``, so
    that one badly wrong element keeps power.
``cauchy+pooled-ad``
    Bonferroni of ``cauchy`` and ``pooled-ad``: pooling's power under weak dependence, the elements'
    under strong dependence. The product's per-variable test (``runtime.sbc.combination``; it draws
    19,999 bootstrap samples where this study draws 999; checked against it at start-up).

Also measured, false alarms only: ``pot-c``, the dependence-aware uniformity test of Tesso & Vehtari
(2026; R ``posterior`` 1.7 ``uniformity_test(test = "POT")``, ``arviz_stats`` ``pot_c``) on the pooled
R x J PITs of a variable: pointwise p-values of the order statistics against their Beta(i, n + 1 - i)
distributions, combined by the truncated Cauchy combination (the sum over ``p_i < 0.5`` divided by n,
after the fix of arviz-devs/arviz-stats#409). It is built for the weak dependence of LOO-PIT values; within
a replicate our elements can be strongly dependent, and the table shows what that does to it (R J <=
10^4 only: the sort of R J values per ensemble is its cost).

Considered and left out: a pooled test valid for any dependence without a bootstrap (the pooled ECDF is
the conditional mean of the ECDF of one randomly chosen element per replicate, so by Jensen and Markov its
convex statistics are bounded by the J = 1 null); it is exact at every R but, bounded by the worst case
(elements identical), gains nothing from pooling.

Run::

    .venv/bin/python bench/verdict_power.py            # full study, ~12 min on 2 idle cores
    .venv/bin/python bench/verdict_power.py --quick    # smoke run, under a minute
    .venv/bin/python bench/verdict_power.py --simulations 4000 --jobs 2 --seed 1

The gamma nulls are kept in /tmp/stanfleet-gamma-nulls, so later runs do not simulate them again.

References
----------
.. [1] Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete uniformity and
   its applications in goodness-of-fit evaluation and multiple sample comparison. Statistics and
   Computing 32, 32.
.. [2] Liu, Y. and Xie, J. (2020). Cauchy combination test: a powerful test with analytic p-value
   calculation under arbitrary dependency structures. JASA 115(529), 393-402.
.. [3] Vovk, V. and Wang, R. (2020). Combining p-values via averaging. Biometrika 107(4), 791-808.
.. [4] Wilson, D. J. (2019). The harmonic mean p-value for combining dependent tests. PNAS 116(4),
   1195-1200.
.. [5] Chen, Y., Wang, R., Wang, Y. and Zhu, W. (2024). Sub-uniformity of harmonic mean p-values.
   arXiv:2405.01368.
.. [6] Chernozhukov, V., Chetverikov, D. and Kato, K. (2013). Gaussian approximations and multiplier
   bootstrap for maxima of sums of high-dimensional random vectors. Annals of Statistics 41(6),
   2786-2819.
"""

from __future__ import annotations

import os

# One BLAS thread per process: the settings run in parallel processes instead.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.special import betainc, ndtr, ndtri  # noqa: E402
from scipy.stats import binom  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.sbc import uniformity  # noqa: E402
from runtime.sbc.combination import cauchy_combination, pooled_ecdf_test  # noqa: E402

LEVEL = 0.01
R_SIZES = (30, 100, 1000)
J_SIZES = (1, 10, 100, 1000)
RHOS = (0.0, 0.5, 0.9)
QUICK_R_SIZES = (30, 100)
QUICK_J_SIZES = (1, 10, 100)
QUICK_RHOS = (0.0, 0.9)
BOUND_QUANTILE = 0.999
"""The flag marks a false-alarm rate above this quantile of Binomial(n, LEVEL) / n."""
BOOTSTRAP = 999
"""Multiplier-bootstrap draws of the pooled tests' p-values."""
BATCH_ELEMENTS = 4_000_000
"""PIT values simulated at once (R * J * ensembles), ~32 MB per float64 array."""
POOLED_CHUNK_DRAWS = 4_000_000
"""Bootstrap values (ensembles * BOOTSTRAP * (K - 1)) drawn at once."""
NULL_CACHE = Path("/tmp/stanfleet-gamma-nulls")
CANDIDATES = (
    "holm-elements",
    "cauchy",
    "hmp-vw",
    "pooled",
    "pooled+min",
    "pooled-ks",
    "pooled-ad",
    "pooled-ad+min",
    "cauchy+pooled-ad",
)
BASELINE = "holm-elements"
ELEMENT_THRESHOLDS = (1e-5, 1e-4, 1e-3, 1e-2)
"""Where the single-element gamma p-value's size is measured (LEVEL / J for J = 1000, 100, 10, 1)."""
WIDTH = max(map(len, CANDIDATES)) + 2
"""Table column width."""


@dataclass(frozen=True)
class Scenario:
    """How the PITs are made: ``u = Phi(scale * x + shift)`` for every element, or element 1 only."""

    name: str
    label: str
    shift: float = 0.0
    scale: float = 1.0
    first_only: bool = False

    def thresholds(self, base: np.ndarray) -> np.ndarray:
        """The ``x`` values where ``u`` crosses the evaluation points (``u <= z`` iff ``x <= t``)."""
        return (base - self.shift) / self.scale


SHIFT_ALL = 0.2
SHIFT_ONE = 0.5
SCALE_OUT = 1.25
SCALE_IN = 0.8
NULL = Scenario("null", "null: u = Phi(x)")
ALTERNATIVES = (
    Scenario("shift-all", f"(a) every element shifted: u = Phi(x + {SHIFT_ALL})", shift=SHIFT_ALL),
    Scenario(
        "shift-one",
        f"(b) element 1 alone badly wrong: u_1 = Phi(x_1 + {SHIFT_ONE}), the others null",
        SHIFT_ONE,
        first_only=True,
    ),
    Scenario(
        "scale-out",
        f"(c) every element overdispersed, ranks at both ends (posteriors too narrow): u = Phi({SCALE_OUT} x)",
        scale=SCALE_OUT,
    ),
    Scenario(
        "scale-in",
        f"(c') every element underdispersed, ranks in the middle (posteriors too wide): u = Phi({SCALE_IN} x)",
        scale=SCALE_IN,
    ),
)
WHOLE_VARIABLE = ("shift-all", "scale-out", "scale-in")
"""The alternatives a per-variable test should gain power on (the recommendation's criterion)."""


@dataclass(frozen=True)
class Setting:
    replicates: int
    elements: int
    rho: float

    @property
    def label(self) -> str:
        return f"R={self.replicates:<4d} J={self.elements:<4d} rho={self.rho:<3g}"


# --- binning: which interval between evaluation points each PIT falls in -------------------------


@dataclass(frozen=True)
class Binner:
    """``#{i : t_i < x}`` for sorted thresholds ``t``, by table lookup on a grid of ``x``.

    A grid cell holds at most one threshold, so ``bin = base[cell] + (x > next[cell])`` is exact; it is
    about twice as fast as ``np.searchsorted``.
    """

    low: float
    inverse_width: float
    base: np.ndarray
    next_threshold: np.ndarray

    @classmethod
    def for_thresholds(cls, thresholds: np.ndarray, low: float = -12.0, high: float = 12.0) -> Binner:
        width = min(0.01, float(np.diff(thresholds).min()) / 2) if thresholds.size > 1 else 0.01
        cells = math.ceil((high - low) / width)
        edges = low + np.arange(cells) * width
        base = np.searchsorted(thresholds, edges, side="left")
        following = np.full(cells, np.inf)
        inside = base < thresholds.size
        following[inside] = thresholds[base[inside]]
        following[following >= edges + width] = np.inf
        return cls(low, 1.0 / width, base.astype(np.int64), following)

    def __call__(self, x: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
        flat = x.reshape(-1)
        out = np.empty(flat.size, dtype=np.int64)
        cell = np.empty(chunk, dtype=np.int64)
        work = np.empty(chunk)
        above = np.empty(chunk, dtype=bool)
        last = self.base.size - 1
        for start in range(0, flat.size, chunk):
            values = flat[start : start + chunk]
            size = values.size
            c, w, a = cell[:size], work[:size], above[:size]
            np.subtract(values, self.low, out=w)
            w *= self.inverse_width
            np.clip(w, 0, last, out=w)
            c[...] = w
            np.take(self.next_threshold, c, out=w)
            np.greater(values, w, out=a)
            target = out[start : start + size]
            np.take(self.base, c, out=target)
            target += a
        return out.reshape(x.shape)


def evaluation_thresholds(k: int) -> np.ndarray:
    """``Phi^{-1}(i / K)``, ``i = 1..K-1``."""
    return ndtri(np.arange(1, k) / k)


# --- element p-values: the gamma test of each column, vectorized -------------------------------


@dataclass(frozen=True)
class GammaTest:
    """The gamma test of ``n`` PIT values at ``k`` points, for many columns at once (the product's)."""

    n: int
    k: int

    @classmethod
    def for_size(cls, n: int) -> GammaTest:
        uniformity.prepare_gamma_null(n)
        return cls(n, uniformity._num_points(n, None))

    def pvalues(self, cumulative: np.ndarray) -> np.ndarray:
        """p-values from ``N * ECDF`` at the ``K - 1`` points, shape ``(..., K - 1)``."""
        return uniformity.gamma_pvalues(self.n, cumulative)


def element_cumulative_counts(bins: np.ndarray, k: int) -> np.ndarray:
    """``(E, J, K - 1)``: per element, how many replicates have ``u <= z_i``."""
    e, _, j = bins.shape
    offsets = (np.arange(e)[:, None, None] * j + np.arange(j)[None, None, :]) * k
    counts = np.bincount((bins + offsets).reshape(-1), minlength=e * j * k).reshape(e, j, k)
    return np.cumsum(counts, axis=-1)[..., :-1]


def replicate_bin_counts(bins: np.ndarray, k: int) -> np.ndarray:
    """``(E, R, K)``: per replicate, how many elements fall in each interval."""
    e, r, _ = bins.shape
    offsets = (np.arange(e)[:, None, None] * r + np.arange(r)[None, :, None]) * k
    return np.bincount((bins + offsets).reshape(-1), minlength=e * r * k).reshape(e, r, k)


# --- candidate combinations ---------------------------------------------------------------------


def holm_elements(p: np.ndarray) -> np.ndarray:
    """Bonferroni over elements (Holm's first step, the only one for a single variable)."""
    return np.minimum(1.0, p.shape[1] * p.min(axis=1))


def harmonic_mean_vw(p: np.ndarray) -> np.ndarray:
    """Harmonic mean times ``e ln J`` (J >= 3; Bonferroni for J <= 2): valid under any dependence."""
    j = p.shape[1]
    if j <= 2:
        return np.minimum(1.0, j * p.min(axis=1))
    harmonic = j / (1.0 / p).sum(axis=1)
    return np.minimum(1.0, math.e * math.log(j) * harmonic)


def pooled_pvalues(bin_counts: np.ndarray, elements: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The pooled-ECDF tests' p-values from ``(E, R, K)`` bin counts, one per weighting of the deviations.

    ``pooled`` divides the deviation at ``z_i`` by its standard error (floored at the independent-elements
    value), ``pooled-ks`` by 1, ``pooled-ad`` by the fixed ``sqrt(z_i (1 - z_i))``. All share one
    Gaussian multiplier bootstrap with the replicates' covariance, scaled as a multivariate t with R - 1
    degrees of freedom.
    """
    e, r, k = bin_counts.shape
    z = np.arange(1, k) / k
    g = np.cumsum(bin_counts, axis=-1)[..., :-1] / elements
    mean = g.mean(axis=1)
    centered = g - mean[:, None, :]
    variance = np.maximum((centered**2).sum(axis=1) / (r - 1), z * (1 - z) / elements)
    scales = {
        "pooled": np.sqrt(variance / r),
        "pooled-ks": np.ones((e, k - 1)),
        "pooled-ad": np.broadcast_to(np.sqrt(z * (1 - z)), (e, k - 1)),
    }
    deviation = np.abs(mean - z)
    observed = {name: (deviation / scale).max(axis=1) for name, scale in scales.items()}
    # Y = xi' C / sqrt(R (R - 1)) with xi ~ N(0, I) has covariance Sigma_hat / R; for R > K - 1 a
    # K - 1 square root of C'C (QR) gives the same distribution more cheaply.
    root = centered if r <= k - 1 else np.linalg.qr(centered, mode="r")
    root = (root / math.sqrt(r * (r - 1))).astype(np.float32)  # float32: bootstrap draws need no more
    scales = {name: scale.astype(np.float32) for name, scale in scales.items()}
    chunk = max(1, POOLED_CHUNK_DRAWS // (BOOTSTRAP * (k - 1)))
    exceed = {name: np.empty(e) for name in scales}
    for start in range(0, e, chunk):
        part = slice(start, min(e, start + chunk))
        size = part.stop - part.start
        draws = rng.standard_normal((size, BOOTSTRAP, root.shape[1]), dtype=np.float32) @ root[part]
        draws /= np.sqrt(rng.chisquare(r - 1, size=(size, BOOTSTRAP, 1)) / (r - 1)).astype(np.float32)
        np.abs(draws, out=draws)
        for name, scale in scales.items():
            largest = draws.max(axis=2) if name == "pooled-ks" else (draws / scale[part, None, :]).max(axis=2)
            exceed[name][part] = (largest >= observed[name][part, None]).sum(axis=1)
    return {name: (1 + count) / (1 + BOOTSTRAP) for name, count in exceed.items()}


def pot_c(u: np.ndarray) -> np.ndarray:
    """POT-C p-values of each row of PIT values ``(E, n)`` (Tesso & Vehtari 2026, truncated Cauchy)."""
    n = u.shape[1]
    i = np.arange(1, n + 1)
    cdf = betainc(i, n + 1 - i, np.sort(u, axis=1))
    p = 2 * np.minimum(cdf, 1 - cdf)
    with np.errstate(divide="ignore"):
        terms = np.where(p < 0.5, 1.0 / np.tan(np.pi * p), 0.0)  # tan((0.5 - p) pi)
    statistic = terms.sum(axis=1) / n
    with np.errstate(divide="ignore"):
        return np.where(statistic > 0, np.arctan(1.0 / statistic) / np.pi, 0.5 - np.arctan(statistic) / np.pi)


POT_MAX_VALUES = 10_000
"""The pooled POT-C test is measured where R * J is at most this."""


def pot_c_false_alarms(settings: Sequence[Setting], trials: int, seed: int) -> list[tuple[Setting, float]]:
    """The false-alarm rate at LEVEL of POT-C on each setting's pooled PITs (R * J <= POT_MAX_VALUES)."""
    rates = []
    for setting in settings:
        r, j, rho = setting.replicates, setting.elements, setting.rho
        if j == 1 or r * j > POT_MAX_VALUES:
            continue
        rng = np.random.default_rng([seed, r, j, round(rho * 1000), 7])
        rejected = 0
        for start in range(0, trials, 200):
            e = min(200, trials - start)
            u = ndtr(correlated_normals(rng, e, r, j, rho)).reshape(e, r * j)
            rejected += int((pot_c(u) <= LEVEL).sum())
        rates.append((setting, rejected / trials))
    return rates


def print_pot_c(rates: Sequence[tuple[Setting, float]], trials: int) -> None:
    bound = false_alarm_bound(trials)
    print(
        f"\nPOT-C (Tesso & Vehtari 2026) on the pooled R x J PITs, false-alarm rate at level {LEVEL} over "
        f"{trials} null ensembles (R J <= {POT_MAX_VALUES:,}); * above the bound {bound:.4f}"
    )
    for setting, rate in rates:
        print(f"{setting.label:<24}{rate:>10.4f}{'*' if rate > bound else ''}")


def bonferroni(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Either test at half the level: ``min(1, 2 min(p1, p2))``."""
    return np.minimum(1.0, 2 * np.minimum(first, second))


def candidate_pvalues(
    p: np.ndarray, bin_counts: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Each candidate's p-value per ensemble from element p-values ``(E, J)`` and bin counts ``(E, R, K)``."""
    j = p.shape[1]
    holm = holm_elements(p)
    values = {"holm-elements": holm, "cauchy": cauchy_combination(p), "hmp-vw": harmonic_mean_vw(p)}
    if j == 1:  # every pooled test is the gamma test of the one element
        values.update(dict.fromkeys(CANDIDATES[3:], p[:, 0]))
    else:
        values.update(pooled_pvalues(bin_counts, j, rng))
        values["pooled+min"] = bonferroni(values["pooled"], holm)
        values["pooled-ad+min"] = bonferroni(values["pooled-ad"], holm)
        values["cauchy+pooled-ad"] = bonferroni(values["pooled-ad"], values["cauchy"])
    return {name: values[name] for name in CANDIDATES}


# --- one setting ----------------------------------------------------------------------------------


@dataclass
class SettingResult:
    setting: Setting
    trials: dict[str, int]
    rejections: dict[str, dict[str, int]]
    seconds: float
    element_tail: np.ndarray
    """Under the null, how many element p-values are at most each of ELEMENT_THRESHOLDS."""
    element_pvalues: int

    def rate(self, scenario: str, candidate: str) -> float:
        return self.rejections[scenario][candidate] / self.trials[scenario]


def correlated_normals(rng: np.random.Generator, e: int, r: int, j: int, rho: float) -> np.ndarray:
    """``(E, R, J)`` standard normals, equicorrelated ``rho`` within each replicate."""
    x = rng.standard_normal((e, r, j))
    if rho > 0:
        x *= math.sqrt(1 - rho)
        x += math.sqrt(rho) * rng.standard_normal((e, r, 1))
    return x


def summarize(bins: np.ndarray, test: GammaTest) -> tuple[np.ndarray, np.ndarray]:
    """Element p-values ``(E, J)`` and replicate bin counts ``(E, R, K)`` of binned PITs."""
    return test.pvalues(element_cumulative_counts(bins, test.k)), replicate_bin_counts(bins, test.k)


def shift_first(
    bins: np.ndarray, p: np.ndarray, counts: np.ndarray, first: np.ndarray, test: GammaTest
) -> tuple[np.ndarray, np.ndarray]:
    """Element p-values and bin counts when element 1's bins are ``first`` instead of ``bins[..., 0]``."""
    e, r, _ = bins.shape
    offsets = (np.arange(e)[:, None] * r + np.arange(r)[None, :]) * test.k

    def one_hot(column: np.ndarray) -> np.ndarray:
        return np.bincount((column + offsets).reshape(-1), minlength=e * r * test.k).reshape(e, r, test.k)

    shifted_p = p.copy()
    shifted_p[:, 0] = test.pvalues(element_cumulative_counts(first[:, :, None], test.k))[:, 0]
    return shifted_p, counts - one_hot(bins[..., 0]) + one_hot(first)


def run_setting(setting: Setting, null_trials: int, power_trials: int, seed: int) -> SettingResult:
    """False alarms and power of every candidate in one setting."""
    started = time.perf_counter()
    uniformity.use_gamma_null_cache(NULL_CACHE)
    r, j, rho = setting.replicates, setting.elements, setting.rho
    rng = np.random.default_rng([seed, r, j, round(rho * 1000)])
    test = GammaTest.for_size(r)
    base = evaluation_thresholds(test.k)
    binners = {s.name: Binner.for_thresholds(s.thresholds(base)) for s in (NULL, *ALTERNATIVES)}
    trials = {s.name: 0 for s in (NULL, *ALTERNATIVES)}
    rejections = {s.name: dict.fromkeys(CANDIDATES, 0) for s in (NULL, *ALTERNATIVES)}

    element_tail = np.zeros(len(ELEMENT_THRESHOLDS), dtype=np.int64)

    def tally(scenario: str, p: np.ndarray, counts: np.ndarray) -> None:
        trials[scenario] += p.shape[0]
        for name, value in candidate_pvalues(p, counts, rng).items():
            rejections[scenario][name] += int((value <= LEVEL).sum())

    batch = max(1, min(null_trials, BATCH_ELEMENTS // (r * j)))
    done = 0
    while done < null_trials:
        e = min(batch, null_trials - done)
        x = correlated_normals(rng, e, r, j, rho)
        bins = binners[NULL.name](x)
        p, counts = summarize(bins, test)
        tally(NULL.name, p, counts)
        element_tail += (p.reshape(-1, 1) <= np.asarray(ELEMENT_THRESHOLDS)).sum(axis=0)
        m = min(e, power_trials - done)
        for scenario in ALTERNATIVES if m > 0 else ():
            binner = binners[scenario.name]
            if scenario.first_only:
                shifted = shift_first(bins[:m], p[:m], counts[:m], binner(x[:m, :, 0]), test)
                tally(scenario.name, *shifted)
            else:
                tally(scenario.name, *summarize(binner(x[:m]), test))
        done += e
    seconds = time.perf_counter() - started
    return SettingResult(setting, trials, rejections, seconds, element_tail, null_trials * j)


# --- checks ---------------------------------------------------------------------------------------


def verify_against_module(sizes: Sequence[int], rng: np.random.Generator, columns: int = 6) -> None:
    """The vectorized element p-values equal ``gamma_uniformity_pvalue`` on a few columns per R."""
    for r in sizes:
        test = GammaTest.for_size(r)
        base = evaluation_thresholds(test.k)
        for scenario in (NULL, *ALTERNATIVES):
            x = correlated_normals(rng, 1, r, columns, 0.5)
            bins = Binner.for_thresholds(scenario.thresholds(base))(x)
            ours = test.pvalues(element_cumulative_counts(bins, test.k))[0]
            pit = ndtr(scenario.scale * x[0] + scenario.shift)
            theirs = np.array([uniformity.gamma_uniformity_pvalue(pit[:, c]) for c in range(columns)])
            if not np.array_equal(ours, theirs):
                raise SystemExit(
                    f"vectorized gamma p-values differ from the module's at R={r}: {ours} vs {theirs}"
                )
    print(
        f"checked: vectorized gamma p-values equal gamma_uniformity_pvalue (R in {list(sizes)})",
        file=sys.stderr,
    )


def verify_pooled_against_module(rng: np.random.Generator, r: int = 100, j: int = 20) -> None:
    """The study's ``pooled-ad`` p-value is the product's ``pooled_ecdf_test`` up to bootstrap error."""
    test = GammaTest.for_size(r)
    base = evaluation_thresholds(test.k)
    for scenario in (NULL, *ALTERNATIVES):
        x = correlated_normals(rng, 1, r, j, 0.5)
        bins = Binner.for_thresholds(scenario.thresholds(base))(x)
        ours = pooled_pvalues(replicate_bin_counts(bins, test.k), j, rng)["pooled-ad"][0]
        theirs = pooled_ecdf_test(ndtr(scenario.scale * x[0] + scenario.shift), seed=1).p_value
        # B = 999 against 19,999 draws: sd of the difference <= sqrt(0.25 / 999) ~ 0.016
        if abs(ours - theirs) > 0.07:
            raise SystemExit(
                f"pooled-ad p-value {ours:.4f} differs from the product's {theirs:.4f} ({scenario.name})"
            )
    print(
        f"checked: pooled-ad p-values match runtime.sbc.combination.pooled_ecdf_test (R={r}, J={j})",
        file=sys.stderr,
    )


def false_alarm_bound(trials: int) -> float:
    """The BOUND_QUANTILE quantile of the false-alarm rate of an exact level-LEVEL test."""
    return float(binom.ppf(BOUND_QUANTILE, trials, LEVEL)) / trials


# --- report ---------------------------------------------------------------------------------------


def print_false_alarms(results: Sequence[SettingResult]) -> dict[str, list[str]]:
    """The false-alarm table; returns, per candidate, the settings where its rate is above the bound."""
    flagged: dict[str, list[str]] = {c: [] for c in CANDIDATES}
    print(
        f"\nFalse-alarm rate at level {LEVEL} (null); ub = {BOUND_QUANTILE:.1%} binomial upper bound, * above it"
    )
    print(f"{'setting':<24}{'n':>6}{'ub':>8}" + "".join(f"{c:>{WIDTH}}" for c in CANDIDATES))
    for result in results:
        n = result.trials[NULL.name]
        bound = false_alarm_bound(n)
        cells = []
        for candidate in CANDIDATES:
            rate = result.rate(NULL.name, candidate)
            if rate > bound:
                flagged[candidate].append(f"{result.setting.label.strip()} ({rate:.4f})")
            cells.append(f"{rate:>{WIDTH - 1}.4f}{'*' if rate > bound else ' '}")
        print(f"{result.setting.label:<24}{n:>6}{bound:>8.4f}" + "".join(cells))
    return flagged


def print_element_sizes(results: Sequence[SettingResult]) -> None:
    """How often one element's gamma p-value is at most t under the null, over t (1 = exact)."""
    print(
        "\nOne element's gamma p-value under the null: P(p <= t) / t, all settings of each R pooled "
        "(exact below p ~ 0.015, so at most 1 up to simulation error, which is larger than binomial: the "
        "elements of an ensemble are correlated; holm-elements at J rejects when some p_j <= 0.01 / J)"
    )
    print(f"{'R':>6}{'p-values':>14}" + "".join(f"{'t=' + format(t, 'g'):>12}" for t in ELEMENT_THRESHOLDS))
    for r in sorted({result.setting.replicates for result in results}):
        same = [result for result in results if result.setting.replicates == r]
        count = sum(result.element_pvalues for result in same)
        tail = sum(result.element_tail for result in same)
        ratios = "".join(
            f"{hits / count / t:>12.2f}" for hits, t in zip(tail, ELEMENT_THRESHOLDS, strict=True)
        )
        print(f"{r:>6}{count:>14,}{ratios}")


def print_power(results: Sequence[SettingResult], scenario: Scenario) -> None:
    print(f"\nPower, {scenario.label}")
    print(f"{'setting':<24}{'n':>6}{'':>8}" + "".join(f"{c:>{WIDTH}}" for c in CANDIDATES))
    for result in results:
        cells = "".join(f"{result.rate(scenario.name, c):>{WIDTH - 1}.3f} " for c in CANDIDATES)
        print(f"{result.setting.label:<24}{result.trials[scenario.name]:>6}{'':>8}{cells}")


def mean_power(results: Sequence[SettingResult], scenarios: Sequence[str], candidate: str) -> float:
    return float(np.mean([r.rate(s, candidate) for r in results for s in scenarios]))


def recommend(
    results: Sequence[SettingResult], flagged: dict[str, list[str]], tolerance: float = 0.1
) -> None:
    """The candidate that keeps the false-alarm goal everywhere and beats holm-elements at J >= 100."""
    wide = [r for r in results if r.setting.elements >= 100]
    every = [s.name for s in ALTERNATIVES]
    shift, dispersion = ["shift-all"], ["scale-out", "scale-in"]
    print(
        f"\nRecommendation rule: no false-alarm flag in any setting; at J >= 100, mean power above {BASELINE}'s "
        f"on (a) and on (c, c'), and in no setting of (a, c, c') more than {tolerance} below it; among those, "
        "the best mean power over all four alternatives at J >= 100."
    )
    for candidate, where in flagged.items():
        if where:
            print(f"  {candidate} above the bound in {len(where)} setting(s): {'; '.join(where)}")
    if flagged[BASELINE]:
        print(
            f"  note: {BASELINE} (today's verdict) is itself above the bound; see the single-element table for "
            "the gamma p-value's own size at 0.01 / J"
        )
    if not wide:
        print("Recommendation: none (no setting with J >= 100 was run)")
        return
    print(f"  {'candidate':<17}{'false alarms':<14}{'(a)':>7}{'(c,cp)':>8}{'(b)':>7}{'all':>7}{'worst':>8}")
    qualified = []
    for candidate in CANDIDATES:
        means = [
            mean_power(wide, scenarios, candidate) for scenarios in (shift, dispersion, ["shift-one"], every)
        ]
        worst = min(r.rate(s, candidate) - r.rate(s, BASELINE) for r in wide for s in WHOLE_VARIABLE)
        beats = all(
            mean_power(wide, scenarios, candidate) > mean_power(wide, scenarios, BASELINE)
            for scenarios in (shift, dispersion)
        )
        ok = not flagged[candidate] and beats and worst >= -tolerance
        print(
            f"  {candidate:<17}{'flagged' if flagged[candidate] else 'ok':<14}"
            + "".join(f"{m:>7.3f} " for m in means)
            + f"{worst:>+7.3f}{'  qualifies' if ok else ''}"
        )
        if ok:
            qualified.append((means[-1], candidate))
    print(
        "  (mean power at J >= 100; worst = lowest power difference to holm-elements over (a, c, c') settings)"
    )
    if qualified:
        print(f"Recommendation: {max(qualified)[1]}")
    else:
        print(f"Recommendation: no candidate qualifies; keep {BASELINE}")


# --- main -----------------------------------------------------------------------------------------


def settings_for(quick: bool) -> list[Setting]:
    rs, js, rhos = (QUICK_R_SIZES, QUICK_J_SIZES, QUICK_RHOS) if quick else (R_SIZES, J_SIZES, RHOS)
    return [Setting(r, j, rho) for r in rs for j in js for rho in rhos]


def run_all(
    settings: Sequence[Setting], null_trials: int, power_trials: int, seed: int, jobs: int
) -> list[SettingResult]:
    """Every setting, largest first across ``jobs`` processes; results in the settings' order."""
    order = sorted(settings, key=lambda s: -s.replicates * s.elements)
    results: dict[Setting, SettingResult] = {}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_setting, s, null_trials, power_trials, seed): s for s in order}
        for future in as_completed(futures):
            result = future.result()
            results[result.setting] = result
            print(
                f"[{len(results):>2}/{len(settings)}] {result.setting.label} {result.seconds:7.1f} s "
                f"(elapsed {time.perf_counter() - started:7.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return [results[s] for s in settings]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--simulations", type=int, default=None, help="null ensembles per setting (default 2000, --quick 300)"
    )
    parser.add_argument(
        "--power-simulations",
        type=int,
        default=None,
        help="ensembles per alternative (default: --simulations)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer settings and simulations (smoke run)")
    parser.add_argument("--seed", type=int, default=20_250_120)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="parallel processes")
    args = parser.parse_args(argv)
    null_trials = args.simulations or (300 if args.quick else 2000)
    power_trials = args.power_simulations if args.power_simulations is not None else null_trials
    power_trials = min(power_trials, null_trials)
    settings = settings_for(args.quick)

    started = time.perf_counter()
    uniformity.use_gamma_null_cache(NULL_CACHE)
    sizes = sorted({s.replicates for s in settings})
    for r in sizes:
        uniformity.prepare_gamma_null(r)
    verify_against_module(sizes, np.random.default_rng(args.seed))
    verify_pooled_against_module(np.random.default_rng(args.seed))
    results = run_all(settings, null_trials, power_trials, args.seed, args.jobs)
    pot_rates = pot_c_false_alarms(settings, null_trials, args.seed)
    elapsed = time.perf_counter() - started

    print(
        f"SBC verdict per variable: {len(settings)} settings, {null_trials} null and {power_trials} power "
        f"ensembles each, level {LEVEL}, {BOOTSTRAP} bootstrap draws for the pooled tests, seed {args.seed}"
    )
    print("PIT u_rj = Phi(x_rj), x_r ~ N(0, equicorrelation rho); alternatives (same draws as the null):")
    for scenario in ALTERNATIVES:
        print(f"  {scenario.label}")
    flagged = print_false_alarms(results)
    print_element_sizes(results)
    for scenario in ALTERNATIVES:
        print_power(results, scenario)
    print_pot_c(pot_rates, null_trials)
    recommend(results, flagged)
    print(f"\nruntime {elapsed:.0f} s with {args.jobs} process(es)")


if __name__ == "__main__":
    main()
