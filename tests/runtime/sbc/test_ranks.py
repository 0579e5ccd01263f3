import math

import numpy as np
import pytest
from scipy import stats as sps

from runtime.sbc import ranks

# --- ranks -------------------------------------------------------------------------------------


def ranked(draws: np.ndarray, true_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ranks.break_ties(*ranks.rank_counts(draws, true_values), rng)


def rank(draws: np.ndarray, true_value: float, rng: np.random.Generator) -> int:
    """One scalar's rank: a column of its own."""
    return int(ranked(np.asarray(draws).reshape(-1, 1), np.array([true_value]), rng)[0])


def test_rank_counts_draws_below_the_true_value() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([0.3, 0.1, 0.2, 0.5])
    assert rank(draws, 0.25, rng) == 2
    assert rank(draws, -1.0, rng) == 0
    assert rank(draws, 9.0, rng) == 4


def test_each_column_is_ranked_against_its_own_true_value() -> None:
    draws = np.array([[0.3, 5.0, 1.0], [0.1, 6.0, 1.0], [0.2, 7.0, 1.0], [0.5, 8.0, 1.0]])
    found = ranked(draws, np.array([0.25, 7.5, 0.0]), np.random.default_rng(0))
    np.testing.assert_array_equal(found, [2, 3, 0])


def test_ties_are_broken_uniformly_at_random() -> None:
    rng = np.random.default_rng(1)
    draws = np.full(9, 0.5)  # every draw equals the true value: rank uniform on 0..9
    drawn = np.array([rank(draws, 0.5, rng) for _ in range(5000)])
    counts = np.bincount(drawn, minlength=10)
    assert counts.size == 10
    assert np.all(counts > 0)
    assert sps.chisquare(counts).pvalue > 0.001


def test_ties_draw_from_the_generator_scalar_by_scalar_in_order() -> None:
    draws = np.array([[1.0, 0.0, 2.0], [1.0, 0.0, 2.0], [1.0, 5.0, 2.0]])
    truth = np.array([1.0, 3.0, 2.0])  # the first and the last scalar tie with every draw
    found = ranked(draws, truth, np.random.default_rng(9))
    expected_rng = np.random.default_rng(9)
    expected = [int(expected_rng.integers(0, 4)), 2, int(expected_rng.integers(0, 4))]
    np.testing.assert_array_equal(found, expected)


def test_partial_ties_stay_within_the_tied_block() -> None:
    rng = np.random.default_rng(2)
    drawn = {rank(np.array([1.0, 2.0, 2.0, 3.0]), 2.0, rng) for _ in range(200)}
    assert drawn == {1, 2, 3}


def test_nan_true_value_cannot_be_ranked() -> None:
    with pytest.raises(ValueError, match="cannot rank a NaN true value"):
        rank(np.zeros(3), math.nan, np.random.default_rng(0))


def test_draws_and_true_values_must_line_up() -> None:
    with pytest.raises(
        ValueError, match=r"expected draws \(S, K\) and K true values, got \(3, 2\) and \(3,\)"
    ):
        ranked(np.zeros((3, 2)), np.zeros(3), np.random.default_rng(0))


# --- thinning ----------------------------------------------------------------------------------


def thinned(scalar_draws: np.ndarray, true_values: list[float], factors: list[int]) -> list[tuple[int, int]]:
    """``(below, ties)`` of each scalar of ``(K, chains, draws)`` draws."""
    below, ties = ranks.thinned_rank_counts(scalar_draws, np.array(true_values), np.array(factors))
    return list(zip(below.tolist(), ties.tolist(), strict=True))


def test_thinning_keeps_every_factor_th_draw_of_each_chain() -> None:
    scalar_draws = np.arange(20.0).reshape(1, 2, 10)  # chain 0 holds 0..9, chain 1 holds 10..19
    assert thinned(scalar_draws, [100.0], [3]) == [(8, 0)]  # kept: 0, 3, 6, 9, 10, 13, 16, 19
    assert thinned(scalar_draws, [13.0], [3]) == [(5, 1)]  # 0, 3, 6, 9, 10 below; 13 equal
    assert thinned(scalar_draws, [13.0], [1]) == [(13, 1)]
    assert thinned(np.zeros((1, 4, 1000)), [1.0], [10]) == [(400, 0)]


def test_each_scalar_is_thinned_by_its_own_factor() -> None:
    rng = np.random.default_rng(3)
    scalar_draws = np.round(rng.normal(size=(4, 3, 50)), 1)  # ties with the true values too
    true_values, factors = [0.0, 0.1, -0.5, 0.0], [1, 3, 4, 7]
    kept = [draws[:, ::f] for draws, f in zip(scalar_draws, factors, strict=True)]
    expected = [(int(np.sum(x < t)), int(np.sum(x == t))) for x, t in zip(kept, true_values, strict=True)]
    assert thinned(scalar_draws, true_values, factors) == expected


@pytest.mark.parametrize("factor", [0, -2, 1.5])
def test_thinning_rejects_bad_factors(factor: float) -> None:
    with pytest.raises(ValueError, match="positive integers"):
        ranks.thinned_rank_counts(np.zeros((1, 2, 10)), np.zeros(1), np.array([factor]))


def test_thinning_requires_scalars_by_chains_by_draws() -> None:
    with pytest.raises(ValueError, match=r"expected draws \(K, chains, draws\), K true values and K factors"):
        ranks.thinned_rank_counts(np.zeros((2, 10)), np.zeros(2), np.ones(2, dtype=int))


def auto(ess_bulk: float, ess_tail: float) -> int:
    return int(ranks.auto_thin_factors(4000, np.array([ess_bulk]), np.array([ess_tail]))[0])


def test_auto_thin_factor_is_draws_over_the_smaller_ess() -> None:
    assert auto(400.0, 1000.0) == 10
    assert auto(1000.0, 400.0) == 10
    assert auto(401.0, 500.0) == 10  # 9.98 rounds up
    assert auto(399.0, 500.0) == 11
    assert auto(5000.0, 9000.0) == 1  # antithetic chains: keep all
    factors = ranks.auto_thin_factors(
        4000, np.array([400.0, 1000.0, 399.0]), np.array([1000.0, 400.0, 500.0])
    )
    np.testing.assert_array_equal(factors, [10, 10, 11])


def test_auto_thin_factor_edge_cases() -> None:
    assert auto(math.nan, 300.0) == 1
    assert auto(300.0, math.nan) == 14  # as Python's min(): the bulk unless the tail is smaller
    assert auto(0.0, 300.0) == 1
    assert auto(0.5, 300.0) == 4000  # never thins below one draw
    assert auto(math.inf, math.inf) == 1
    assert ranks.auto_thin_factors(0, np.array([10.0]), np.array([10.0])).tolist() == [1]
