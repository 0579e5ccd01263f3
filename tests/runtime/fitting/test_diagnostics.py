import math

import numpy as np
import pytest

from runtime.fitting.diagnostics import ebfmi, rank_normalized_diagnostics


def _ar1(rng: np.random.Generator, chains: int, draws: int, phi: float) -> np.ndarray:
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = rng.normal(size=(chains, draws)) * math.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def test_diagnostics_on_known_cases() -> None:
    rng = np.random.default_rng(10)
    rhat, bulk, tail = rank_normalized_diagnostics(rng.normal(size=(4, 1000)))
    assert rhat < 1.01
    assert 3000 < bulk < 5000
    assert 3000 < tail < 5000
    _, bulk_ar, _ = rank_normalized_diagnostics(_ar1(rng, 4, 1000, 0.9))
    assert 100 < bulk_ar < 400  # AR(1) with phi 0.9: ESS ~ S (1 - phi) / (1 + phi) ~ 210
    stuck = rng.normal(size=(4, 300)) + np.array([0.0, 0.0, 0.0, 3.0])[:, None]
    assert rank_normalized_diagnostics(stuck)[0] > 1.1


def test_undefined_cases_are_nan() -> None:
    rng = np.random.default_rng(11)
    assert all(math.isnan(v) for v in rank_normalized_diagnostics(np.zeros((4, 3))))
    draws = rng.normal(size=(4, 100))
    draws[0, 0] = math.nan
    assert all(math.isnan(v) for v in rank_normalized_diagnostics(draws))


def test_ebfmi() -> None:
    rng = np.random.default_rng(12)
    iid = rng.normal(size=(1, 4000))
    walk = np.cumsum(rng.normal(size=(1, 4000)), axis=1)
    values = ebfmi(np.vstack([iid, walk]))
    assert values[0] == pytest.approx(2.0, abs=0.15)  # E(dE^2) / var(E) = 2 for iid energies
    assert values[1] < 0.01
    expected = np.mean(np.diff(walk[0]) ** 2) / np.var(walk[0], ddof=1)
    assert values[1] == pytest.approx(expected)
