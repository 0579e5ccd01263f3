import math

import numpy as np
import pytest
from scipy import stats as sps

from runtime.sbc import ranks

# --- ranks -------------------------------------------------------------------------------------


def test_rank_counts_draws_below_the_true_value() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([0.3, 0.1, 0.2, 0.5])
    assert ranks.sbc_rank(draws, 0.25, rng) == 2
    assert ranks.sbc_rank(draws, -1.0, rng) == 0
    assert ranks.sbc_rank(draws, 9.0, rng) == 4
    assert ranks.sbc_rank(draws.reshape(2, 2), 0.25, rng) == 2


def test_ties_are_broken_uniformly_at_random() -> None:
    rng = np.random.default_rng(1)
    draws = np.full(9, 0.5)  # every draw equals the true value: rank uniform on 0..9
    drawn = np.array([ranks.sbc_rank(draws, 0.5, rng) for _ in range(5000)])
    counts = np.bincount(drawn, minlength=10)
    assert counts.size == 10
    assert np.all(counts > 0)
    assert sps.chisquare(counts).pvalue > 0.001


def test_partial_ties_stay_within_the_tied_block() -> None:
    rng = np.random.default_rng(2)
    drawn = {ranks.sbc_rank(np.array([1.0, 2.0, 2.0, 3.0]), 2.0, rng) for _ in range(200)}
    assert drawn == {1, 2, 3}


def test_nan_true_value_cannot_be_ranked() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ranks.sbc_rank(np.zeros(3), math.nan, np.random.default_rng(0))


# --- thinning ----------------------------------------------------------------------------------


def test_thin_keeps_every_factor_th_draw_of_each_chain() -> None:
    chain_draws = np.arange(20).reshape(2, 10)
    np.testing.assert_array_equal(ranks.thin_chains(chain_draws, 3), [0, 3, 6, 9, 10, 13, 16, 19])
    np.testing.assert_array_equal(ranks.thin_chains(chain_draws, 1), np.arange(20))
    assert ranks.thin_chains(np.zeros((4, 1000)), 10).size == 400


@pytest.mark.parametrize("factor", [0, -2, 1.5])
def test_thin_rejects_bad_factors(factor: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        ranks.thin_chains(np.zeros((2, 10)), factor)


def test_thin_requires_chains_by_draws() -> None:
    with pytest.raises(ValueError, match="chains, draws"):
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
