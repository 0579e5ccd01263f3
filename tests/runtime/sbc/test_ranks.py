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


def test_thin_keeps_every_factor_th_draw_of_each_chain() -> None:
    chain_draws = np.arange(20).reshape(2, 10)
    np.testing.assert_array_equal(ranks.thin_chains(chain_draws, 3), [0, 3, 6, 9, 10, 13, 16, 19])
    np.testing.assert_array_equal(ranks.thin_chains(chain_draws, 1), np.arange(20))
    assert ranks.thin_chains(np.zeros((4, 1000)), 10).size == 400
    many = np.arange(60).reshape(2, 10, 3)  # (chains, draws, K): every scalar thinned alike
    np.testing.assert_array_equal(ranks.thin_chains(many, 3)[:, 1], ranks.thin_chains(many[:, :, 1], 3))


@pytest.mark.parametrize("factor", [0, -2, 1.5])
def test_thin_rejects_bad_factors(factor: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        ranks.thin_chains(np.zeros((2, 10)), factor)


def test_thin_requires_chains_by_draws() -> None:
    with pytest.raises(ValueError, match=r"expected \(chains, draws, \.\.\.\), got shape \(10,\)"):
        ranks.thin_chains(np.zeros(10), 2)


def test_auto_thin_factor_is_draws_over_the_smaller_ess() -> None:
    assert ranks.auto_thin_factor(4000, 400.0, 1000.0) == 10
    assert ranks.auto_thin_factor(4000, 1000.0, 400.0) == 10
    assert ranks.auto_thin_factor(4000, 401.0, 500.0) == 10  # 9.98 rounds up
    assert ranks.auto_thin_factor(4000, 399.0, 500.0) == 11
    assert ranks.auto_thin_factor(4000, 5000.0, 9000.0) == 1  # antithetic chains: keep all


def test_auto_thin_factor_edge_cases() -> None:
    assert ranks.auto_thin_factor(4000, math.nan, 300.0) == 1
    assert ranks.auto_thin_factor(4000, 0.0, 300.0) == 1
    assert ranks.auto_thin_factor(4000, 0.5, 300.0) == 4000  # never thins below one draw
