import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from runtime.sbc import uniformity
from runtime.sbc.ranks import break_ties, rank_counts

L = 99  # kept draws per replicate: ranks lie in 0..99
R = 100  # replicates per ensemble


def _conjugate_ensemble(
    rng: np.random.Generator, shift: float = 0.0, scale: float = 1.0, replicates: int = R
) -> np.ndarray:
    """SBC ranks of theta ~ N(0, 1), y_i ~ N(theta, 1) (5 obs), from an exact or distorted sampler.

    The exact posterior is N(sum(y) / 6, 1 / 6); the "sampler" draws from it shifted by ``shift``
    posterior sds and with its sd scaled by ``scale``.
    """
    theta = rng.normal(size=replicates)
    y = theta[:, None] + rng.normal(size=(replicates, 5))
    post_mean, post_sd = y.sum(axis=1) / 6, 1 / math.sqrt(6)
    draws = post_mean[:, None] + post_sd * (shift + scale * rng.normal(size=(replicates, L)))
    return break_ties(*rank_counts(draws.T, theta), rng)


def _pvalue(ranks: np.ndarray, rng: np.random.Generator) -> float:
    return uniformity.gamma_uniformity_pvalue(uniformity.randomized_pit(ranks, L, rng))


# --- randomized PIT ----------------------------------------------------------------------------


def test_randomized_pit_of_mixed_max_ranks_is_uniform() -> None:
    rng = np.random.default_rng(3)
    max_ranks = rng.choice([0, 1, 4, 99, 399], size=20_000)
    ranks = rng.integers(0, max_ranks + 1)
    pit = uniformity.randomized_pit(ranks, max_ranks, rng)
    assert pit.shape == ranks.shape
    assert np.all((pit >= 0) & (pit <= 1))
    assert sps.kstest(pit, "uniform").pvalue > 0.01
    assert uniformity.gamma_uniformity_pvalue(pit) > 0.01
    # Without the jitter, ranks / max_rank from coarse fits are far from uniform.
    naive = ranks / np.maximum(max_ranks, 1)
    assert sps.kstest(naive, "uniform").pvalue < 1e-6


def test_randomized_pit_stays_inside_its_rank_cell() -> None:
    rng = np.random.default_rng(4)
    pit = uniformity.randomized_pit(np.array([0, 3, 9]), 9, rng)
    np.testing.assert_array_less([0.0, 0.3, 0.9], pit)
    np.testing.assert_array_less(pit, [0.1, 0.4, 1.0])


def test_randomized_pit_rejects_ranks_above_max_rank() -> None:
    with pytest.raises(ValueError, match=r"0\.\.max_rank"):
        uniformity.randomized_pit(np.array([5]), np.array([4]), np.random.default_rng(0))


# --- gamma statistic and test ----------------------------------------------------------------


def test_gamma_statistic_matches_its_definition() -> None:
    pit = np.array([0.05, 0.1, 0.15, 0.6, 0.62, 0.9])
    n = k = pit.size
    expected = min(
        2 * min(sps.binom.cdf(c, n, i / k), 1 - sps.binom.cdf(c - 1, n, i / k))
        for i in range(1, k)
        for c in [np.sum(pit <= i / k)]
    )
    assert uniformity.gamma_statistic(pit) == pytest.approx(expected, rel=1e-12)


def test_gamma_statistic_is_small_for_clustered_values() -> None:
    even = (np.arange(100) + 0.5) / 100
    clustered = np.full(100, 0.5)
    assert uniformity.gamma_statistic(even) > 0.5
    assert uniformity.gamma_statistic(clustered) < 1e-10


def test_gamma_pvalue_of_an_impossible_sample_is_the_bonferroni_bound_and_reproducible() -> None:
    clustered = np.full(50, 0.01)
    gamma = uniformity.gamma_statistic(clustered)
    assert gamma < 1e-30  # all 50 values in the first of 50 cells
    # Far below the exact range the p-value is the bound (K - 1) max(gamma, 1e-30), not 1 / (1 + S).
    assert uniformity.gamma_uniformity_pvalue(clustered) == pytest.approx(49 * 1e-30, rel=1e-12)
    pit = np.random.default_rng(5).random(40)
    first = uniformity.gamma_uniformity_pvalue(pit, np.random.default_rng(7))
    assert first == uniformity.gamma_uniformity_pvalue(pit, np.random.default_rng(7))
    assert 0 < first <= 1
    assert uniformity.gamma_uniformity_pvalue(pit) == uniformity.gamma_uniformity_pvalue(pit)


def test_a_sample_and_its_mirror_image_tie_exactly() -> None:
    # All of 3 values in the first cell or all in the last: gamma is 2 / 27 for both (rounding must not
    # split the tie), so p = P(gamma <= 2 / 27) = 2 / 27.
    for value in (0.0, 0.999):
        assert uniformity.gamma_uniformity_pvalue(np.full(3, value)) == pytest.approx(2 / 27, rel=1e-12)
    rng = np.random.default_rng(14)
    for skew in (1.0, 1.6, 3.0):
        pit = rng.uniform(size=57) ** skew
        assert uniformity.gamma_statistic(1 - pit) == uniformity.gamma_statistic(pit)
        assert uniformity.gamma_uniformity_pvalue(1 - pit) == uniformity.gamma_uniformity_pvalue(pit)


def test_gamma_on_empty_sample_is_nan() -> None:
    assert math.isnan(uniformity.gamma_statistic(np.array([])))
    assert math.isnan(uniformity.gamma_uniformity_pvalue(np.array([])))


def test_gamma_rejects_values_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        uniformity.gamma_statistic(np.array([0.2, 1.5]))


def test_gamma_false_alarm_rate_of_a_correct_sampler_is_nominal() -> None:
    rng = np.random.default_rng(6)
    ensembles = 2000
    # With iid posterior draws, rank | theta ~ Binomial(L, F_post(theta)): exact and cheap.
    theta = rng.normal(size=(ensembles, R))
    y_sum = (theta[..., None] + rng.normal(size=(ensembles, R, 5))).sum(axis=-1)
    ranks = rng.binomial(L, sps.norm.cdf((theta - y_sum / 6) * math.sqrt(6)))
    p_values = np.array([_pvalue(r, rng) for r in ranks])
    rate = float(np.mean(p_values <= 0.05))
    assert 0.03 <= rate <= 0.07  # 2000 ensembles: sd of the rate is 0.005
    assert sps.kstest(p_values, "uniform").pvalue > 0.001


def test_ranks_from_an_exact_sampler_pass() -> None:
    rng = np.random.default_rng(8)
    ranks = _conjugate_ensemble(rng)
    assert ranks.min() >= 0
    assert ranks.max() <= L
    assert _pvalue(ranks, rng) > 0.05


@pytest.mark.parametrize(
    ("shift", "scale"),
    [(1.0, 1.0), (-1.0, 1.0), (0.0, 2.0), (0.0, 0.5)],
    ids=["shifted_up", "shifted_down", "overdispersed", "underdispersed"],
)
def test_ranks_from_a_miscalibrated_sampler_are_flagged(shift: float, scale: float) -> None:
    rng = np.random.default_rng(9)
    flagged = [_pvalue(_conjugate_ensemble(rng, shift, scale), rng) < 0.05 for _ in range(5)]
    assert all(flagged)


def _no_simulation(*args: object) -> np.ndarray:
    raise AssertionError("the null was simulated again")


def test_a_prepared_null_is_the_one_the_test_then_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uniformity, "_nulls", {})
    monkeypatch.setattr(uniformity, "_null_directory", None)
    n = 37
    uniformity.prepare_gamma_null(n)
    monkeypatch.setattr(uniformity, "_simulate_gamma_null", _no_simulation)
    p_value = uniformity.gamma_uniformity_pvalue(np.linspace(0.01, 0.99, n))
    assert p_value == pytest.approx(1.0, abs=0.01)  # evenly spaced PIT values: as uniform as can be


def test_a_stored_null_is_read_back_by_a_later_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(uniformity, "_nulls", {})
    uniformity.use_gamma_null_cache(tmp_path)
    monkeypatch.setattr(uniformity, "_null_directory", tmp_path)  # restored after the test
    pit = np.random.default_rng(3).uniform(size=41)
    first = uniformity.gamma_uniformity_pvalue(pit)
    (stored,) = tmp_path.glob("gamma-null-v*-n41-*.npy")
    assert [path.name for path in tmp_path.iterdir()] == [stored.name]  # no temporary file left
    monkeypatch.setattr(uniformity, "_nulls", {})  # a new process: nothing in memory
    monkeypatch.setattr(uniformity, "_simulate_gamma_null", _no_simulation)
    assert uniformity.gamma_uniformity_pvalue(pit) == first


def test_a_damaged_stored_null_is_simulated_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(uniformity, "_nulls", {})
    monkeypatch.setattr(uniformity, "_null_directory", tmp_path)
    pit = np.random.default_rng(4).uniform(size=43)
    expected = uniformity.gamma_uniformity_pvalue(pit)
    (stored,) = tmp_path.glob("gamma-null-v*-n43-*.npy")
    stored.write_bytes(b"half a file")
    monkeypatch.setattr(uniformity, "_nulls", {})
    assert uniformity.gamma_uniformity_pvalue(pit) == expected
    assert np.load(stored).shape == (uniformity.GAMMA_NULL_SIMULATIONS,)  # rewritten whole


def test_a_cache_that_cannot_be_written_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(uniformity, "_nulls", {})
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setattr(uniformity, "_null_directory", blocked)
    assert uniformity.gamma_uniformity_pvalue(np.random.default_rng(5).uniform(size=47)) > 0.01
    assert [path.name for path in tmp_path.iterdir()] == ["not-a-directory"]


@pytest.mark.parametrize("n", [10, 57, 200])
@pytest.mark.parametrize("level", [0.01, 0.0025])
def test_an_ecdf_leaves_the_gamma_band_exactly_when_the_test_rejects(n: int, level: float) -> None:
    rng = np.random.default_rng(n)
    z, lower, upper = uniformity.gamma_band(n, level)
    assert np.all(lower <= z) and np.all(z <= upper)
    outcomes = set()
    for trial in range(400):
        skew = (1.0, 1.4, 2.0, 0.6)[trial % 4]  # uniform, then ever more miscalibrated samples
        pit = rng.uniform(size=n) ** skew
        ecdf = np.searchsorted(np.sort(pit), z, side="right") / n
        outside = bool(np.any((ecdf < lower) | (ecdf > upper)))
        rejected = uniformity.gamma_uniformity_pvalue(pit) <= level
        assert outside == rejected, (trial, skew)
        outcomes.add(outside)
    assert outcomes == {True, False}  # both sides of the boundary were seen


@pytest.mark.parametrize(("n", "skews"), [(20, (1.0, 2.5, 3.0, 0.3)), (100, (1.0, 1.8, 2.0, 0.5))])
def test_the_gamma_band_agrees_with_the_test_at_a_tiny_level(n: int, skews: tuple[float, ...]) -> None:
    level = 1e-6  # 10,000 quantities sharing a family-wise level of 0.01
    rng = np.random.default_rng(n + 1)
    z, lower, upper = uniformity.gamma_band(n, level)
    assert np.all(lower <= z) and np.all(z <= upper)
    assert np.all(lower <= uniformity.gamma_band(n, 0.01)[1])  # a wider band than at 0.01
    outcomes = set()
    for trial in range(200):
        pit = rng.uniform(size=n) ** skews[trial % 4]
        ecdf = np.searchsorted(np.sort(pit), z, side="right") / n
        outside = bool(np.any((ecdf < lower) | (ecdf > upper)))
        p_value = uniformity.gamma_uniformity_pvalue(pit)
        assert outside == (p_value <= level), (trial, p_value)
        outcomes.add(outside)
    assert outcomes == {True, False}


def test_a_level_no_sample_can_reach_gives_a_band_holding_every_ecdf() -> None:
    z, lower, upper = uniformity.gamma_band(50, 1e-30)  # the smallest p-value is 49 * 1e-30
    np.testing.assert_array_equal(lower, 0.0)
    np.testing.assert_array_equal(upper, 1.0)
    assert z[0] == pytest.approx(1 / 50)
    with pytest.raises(ValueError, match="level"):
        uniformity.gamma_band(50, 1.5)


# --- the exact tail ---------------------------------------------------------------------------


def _compositions(n: int, k: int) -> np.ndarray:
    """Every way to put n values into k cells (stars and bars)."""
    rows = []
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        edges = np.array((-1, *bars, n + k - 1))
        rows.append(np.diff(edges) - 1)
    return np.array(rows)


def _enumerated_null(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gamma and probability of every cell-count vector of n uniform values in k equal cells."""
    cells = _compositions(n, k)
    log_prob = math.lgamma(n + 1) - special.gammaln(cells + 1).sum(axis=1) - n * math.log(k)
    gamma = uniformity._gamma_from_counts(uniformity._gamma_table(n, k), np.cumsum(cells[:, :-1], axis=1))
    return gamma, np.exp(log_prob)


@pytest.mark.parametrize(("n", "k"), [(3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8), (8, 3), (2, 5)])
def test_the_exact_recursion_matches_enumerating_every_sample(n: int, k: int) -> None:
    gamma, prob = _enumerated_null(n, k)
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)
    thresholds = np.unique(gamma)
    expected = np.array([prob[gamma <= t].sum() for t in thresholds])
    exact = uniformity._exact_cdf(n, k, thresholds)
    np.testing.assert_allclose(exact, expected, rtol=1e-9, atol=1e-12)  # rtol: the rarest outcomes
    # gamma_pvalues gives that probability wherever it computes it (the tail, as in the product).
    cells = _compositions(n, k)
    p_values = uniformity.gamma_pvalues(n, np.cumsum(cells[:, :-1], axis=1))
    tail = uniformity._tail(n, k, uniformity._switch(uniformity._default_gamma_null(n, k)))
    assert tail is not None
    in_tail = (gamma > tail.floor) & (gamma <= tail.switch)
    assert in_tail.any()
    exact_at = dict(zip(thresholds.tolist(), expected.tolist(), strict=True))
    np.testing.assert_allclose(p_values[in_tail], [exact_at[g] for g in gamma[in_tail]], rtol=1e-9)


@pytest.mark.parametrize("n", [100, 200])
def test_the_exact_distribution_agrees_with_the_monte_carlo_null_in_the_body(n: int) -> None:
    k = uniformity._num_points(n, None)
    null = uniformity._default_gamma_null(n, k)
    thresholds = null[[1_000, 5_000, 30_000, 70_000]]
    exact = uniformity._exact_cdf(n, k, thresholds)
    simulated = np.searchsorted(null, thresholds, side="right") / null.size
    sd = np.sqrt(exact * (1 - exact) / null.size)
    assert np.all(np.abs(simulated - exact) < 4 * sd + 1 / null.size), (exact, simulated)


def test_tail_pvalues_are_exact_below_the_monte_carlo_floor() -> None:
    n, k = 100, 100
    rng = np.random.default_rng(11)
    null = uniformity._default_gamma_null(n, k)
    seen = []
    for skew in np.linspace(1.4, 1.8, 12):
        pit = rng.uniform(size=n) ** skew
        p_value = uniformity.gamma_uniformity_pvalue(pit)
        gamma = uniformity.gamma_statistic(pit)
        if 1e-7 <= p_value <= 1e-4:
            # The recursion run afresh (not the memoized value) gives the same probability.
            assert p_value == pytest.approx(uniformity._exact_cdf(n, k, np.array([gamma]))[0], rel=1e-12)
            seen.append((p_value, (1 + np.searchsorted(null, gamma, side="right")) / (1 + null.size)))
    assert len(seen) >= 3
    # The old Monte Carlo p-value cannot go below 1 / (1 + S) ~ 1e-5; the exact one does.
    assert min(p for p, _ in seen) < 1 / (1 + null.size) <= min(old for _, old in seen)


def test_the_pvalue_never_decreases_as_gamma_grows() -> None:
    n, k = 20, 20
    values = np.unique(uniformity._gamma_table(n, k).values)
    p_values = uniformity._pvalues(n, k, values, uniformity._default_gamma_null(n, k))
    assert np.all(np.diff(p_values) >= 0)
    assert p_values[0] > 0 and p_values[-1] <= 1
    assert p_values[0] == pytest.approx((k - 1) * max(values[0], 1e-30))  # the Bonferroni bound


def test_gamma_pvalues_is_gamma_uniformity_pvalue_for_many_samples_at_once() -> None:
    n = 57
    rng = np.random.default_rng(12)
    pits = rng.uniform(size=(3, 4, n)) ** rng.choice([1.0, 1.5, 2.5], size=(3, 4, 1))
    z = uniformity.gamma_points(n)
    counts = (np.sort(pits, axis=-1)[..., None] <= z).sum(axis=-2)
    p_values = uniformity.gamma_pvalues(n, counts)
    assert p_values.shape == (3, 4)
    expected = [[uniformity.gamma_uniformity_pvalue(pit) for pit in row] for row in pits]
    np.testing.assert_array_equal(p_values, expected)
    assert p_values.min() < 1e-3 < p_values.max()  # both the tail and the body
    with pytest.raises(ValueError, match="integer"):
        uniformity.gamma_pvalues(n, counts / n)


def test_where_the_recursion_costs_too_much_the_pvalue_is_monte_carlo_capped_by_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = 57
    rng = np.random.default_rng(13)
    pits = [rng.uniform(size=n) ** skew for skew in (1.0, 1.5, 3.0)]
    exact = [uniformity.gamma_uniformity_pvalue(pit) for pit in pits]
    monkeypatch.setattr(uniformity, "_EXACT_MAX_WORK", 0.0)
    uniformity._tail.cache_clear()
    try:
        null = uniformity._default_gamma_null(n, n)
        for pit, p_exact in zip(pits, exact, strict=True):
            gamma = uniformity.gamma_statistic(pit)
            monte_carlo = (1 + np.searchsorted(null, gamma, side="right")) / (1 + null.size)
            p_value = uniformity.gamma_uniformity_pvalue(pit)
            assert p_value == min(monte_carlo, (n - 1) * max(gamma, 1e-30))
            assert p_value >= p_exact * 0.5  # never far below the exact value (bound or Monte Carlo)
    finally:
        uniformity._tail.cache_clear()


def test_interval_coverage_counts_pits_within_half_the_width_of_one_half() -> None:
    pit = np.array([0.5, 0.45, 0.3, 0.05, 0.99])
    coverage, low, high = uniformity.interval_coverage(pit, np.array([0.0, 0.1, 0.5, 1.0]), 0.95)
    np.testing.assert_allclose(coverage, [0.2, 0.4, 0.6, 1.0])  # |pit - 0.5| <= w / 2
    assert np.all(low <= coverage) and np.all(coverage <= high)
    assert high[-1] == 1.0 and low[-1] == pytest.approx(sps.beta.ppf(0.025, 5, 1))
    uniform = np.random.default_rng(5).uniform(size=4000)
    coverage, low, high = uniformity.interval_coverage(uniform, np.linspace(0, 1, 11), 0.95)
    assert np.all(np.abs(coverage - np.linspace(0, 1, 11)) < 0.03)
    assert np.all(high - low < 0.04)
