"""Tests of the per-variable combination: variable names, the Cauchy combination and the pooled-ECDF test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from runtime.sbc.combination import (
    BOOTSTRAP_DRAWS,
    bonferroni_pair,
    bootstrap_seed,
    cauchy_combination,
    pooled_ecdf_test,
    variable_name,
)


@pytest.mark.parametrize(
    ("quantity", "variable"),
    [("mu", "mu"), ("z[3]", "z"), ("Sigma[2,1]", "Sigma"), ("log_lik[10]", "log_lik")],
)
def test_an_element_belongs_to_the_variable_its_name_starts_with(quantity: str, variable: str) -> None:
    assert variable_name(quantity) == variable


def test_the_cauchy_combination_of_one_p_value_or_of_equal_ones_is_that_p_value() -> None:
    for p in (0.9, 0.3, 1e-3, 1e-9):
        assert cauchy_combination([p]) == pytest.approx(p, rel=1e-9)
        assert cauchy_combination([p] * 7) == pytest.approx(p, rel=1e-9)


def test_the_cauchy_combination_keeps_tiny_p_values_and_survives_p_equal_to_one() -> None:
    # One tiny p among J: T ~ 1 / (J pi p), so the combination is about J p, not lost to rounding.
    assert cauchy_combination([1e-20, 0.5, 0.5, 0.5]) == pytest.approx(4e-20, rel=1e-6)
    assert cauchy_combination([1e-300, 0.5]) > 0
    assert cauchy_combination([0.0, 0.5]) == 0.0
    combined = cauchy_combination([1.0, 1e-6, 0.5])
    assert math.isfinite(combined) and 0 < combined < 1
    assert math.isnan(cauchy_combination([]))


def test_the_cauchy_combination_of_independent_uniform_p_values_holds_its_level() -> None:
    rng = np.random.default_rng(1)
    p = rng.random((20_000, 10))
    rejected = sum(cauchy_combination(row) <= 0.01 for row in p)
    assert rejected / 20_000 == pytest.approx(0.01, abs=0.004)  # sd of the rate: 0.0007


def test_bonferroni_pair_is_either_test_at_half_the_level() -> None:
    assert bonferroni_pair(0.004, 0.3) == pytest.approx(0.008)
    assert bonferroni_pair(0.7, 0.9) == 1.0


def correlated_pits(
    rng: np.random.Generator, replicates: int, elements: int, rho: float, shift: float = 0.0
) -> np.ndarray:
    shared = rng.normal(size=(replicates, 1))
    x = math.sqrt(1 - rho) * rng.normal(size=(replicates, elements)) + math.sqrt(rho) * shared
    return ndtr(x + shift)


def test_the_pooled_test_holds_its_level_with_dependent_elements() -> None:
    rng = np.random.default_rng(2)
    runs = 200
    rejected = sum(
        pooled_ecdf_test(correlated_pits(rng, 40, 20, 0.7), seed=i).p_value <= 0.1 for i in range(runs)
    )
    # Binomial(200, 0.1): mean 20, sd 4.2
    assert 6 <= rejected <= 34, rejected


def test_the_pooled_test_sees_a_small_lean_of_every_element_that_no_element_shows_alone() -> None:
    from runtime.sbc.uniformity import gamma_uniformity_pvalue

    rng = np.random.default_rng(3)
    pit = correlated_pits(rng, 100, 100, 0.0, shift=0.1)
    pooled = pooled_ecdf_test(pit, seed=1)
    assert pooled.p_value == 1 / (1 + BOOTSTRAP_DRAWS)  # no bootstrap draw reaches the statistic
    smallest = min(gamma_uniformity_pvalue(pit[:, j]) for j in range(100))
    assert smallest > 0.01 / 100  # Holm over the 100 elements flags none of them


def test_the_pooled_band_is_the_test_a_pooled_ecdf_outside_it_is_rejected() -> None:
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.05, 0.1, 0.15, 0.3):
        pooled = pooled_ecdf_test(correlated_pits(rng, 60, 15, 0.3, shift=shift), seed=5)
        for level in (0.2, 0.05, 0.01, 1e-3, 1e-4):
            lower, upper = pooled.band(level)
            outside = bool(np.any((pooled.ecdf < lower) | (pooled.ecdf > upper)))
            assert outside == (pooled.p_value <= level), (shift, level, pooled.p_value)


def test_the_pooled_test_is_reproducible_from_its_seed_and_needs_two_replicates() -> None:
    pit = correlated_pits(np.random.default_rng(6), 30, 5, 0.5)
    seed = bootstrap_seed("ens", "parameter", "z")
    assert seed == bootstrap_seed("ens", "parameter", "z") != bootstrap_seed("ens", "parameter", "w")
    first, second = pooled_ecdf_test(pit, seed), pooled_ecdf_test(pit, seed)
    assert first.p_value == second.p_value
    np.testing.assert_array_equal(first.bootstrap, second.bootstrap)
    with pytest.raises(ValueError, match="at least two replicates"):
        pooled_ecdf_test(pit[:1], seed)
