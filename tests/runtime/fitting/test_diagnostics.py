"""The vectorized summaries and diagnostics against ArviZ's and NumPy's, scalar by scalar.

ArviZ computes R-hat and ESS one scalar at a time; ``summarize_scalars`` does all scalars at once and
must give the same numbers (to rounding) on real draws and on the edge cases: constant and stuck
chains, ties, discrete draws, slow mixing, heavy tails, huge values, one chain, odd and very short
chains, NaN and infinity.
"""

import math
import warnings
from dataclasses import astuple

import numpy as np
import pytest

from runtime.arviz_quiet import arviz as az
from runtime.engines.choice import get_engine
from runtime.engines.settings import SamplerSettings
from runtime.fitting.diagnostics import MIN_DRAWS, QUANTILES, ebfmi, summarize_block, summarize_scalars
from tests.runtime.helpers.engines_present import ENGINES

WIDE_MODEL = """
data { int<lower=1> J; array[J] real y; }
parameters { real mu; real<lower=0> tau; vector[J] z; }
model { mu ~ normal(0, 1); tau ~ normal(0, 1); z ~ std_normal(); y ~ normal(mu + tau * z, 1); }
"""


def arviz_reference(draws: np.ndarray) -> np.ndarray:
    """Per scalar: ArviZ's rank R-hat, bulk ESS and tail ESS, then NumPy's mean, sd and quantiles."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(draws.shape[2]):
            x = draws[:, :, k]
            rows.append(
                [
                    float(az.rhat(x, method="rank")),
                    float(az.ess(x, method="bulk")),
                    float(az.ess(x, method="tail")),
                    np.mean(x),
                    np.std(x, ddof=1),
                    *np.quantile(x, QUANTILES),
                ]
            )
    return np.array(rows)


def ours(draws: np.ndarray) -> np.ndarray:
    s = summarize_scalars(draws)
    return np.stack([s.rhat, s.ess_bulk, s.ess_tail, s.mean, s.sd, s.q5, s.median, s.q95], axis=1)


def ar1(rng: np.random.Generator, chains: int, draws: int, phi: float) -> np.ndarray:
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = rng.normal(size=(chains, draws)) * math.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def edge_cases(rng: np.random.Generator, chains: int, draws: int) -> np.ndarray:
    cases = [
        rng.normal(size=(chains, draws)),
        np.cumsum(rng.normal(size=(chains, draws)), axis=1),  # a random walk: R-hat far above 1
        np.full((chains, draws), 3.0),  # constant: ESS is the number of draws, R-hat undefined
        np.round(rng.normal(size=(chains, draws))),  # many ties
        np.where(rng.random((chains, draws)) < 0.97, 0.0, 1.0),  # rare ones: a tail quantile ties
        rng.normal(size=(chains, draws)) + 4.0 * (np.arange(chains) == 0)[:, None],  # one stuck chain
        rng.poisson(2.0, size=(chains, draws)).astype(float),
        *(ar1(rng, chains, draws, phi) for phi in (0.3, 0.6, 0.9, 0.97)),  # truncation past the direct lags
        rng.standard_cauchy(size=(chains, draws)),  # heavy tails: the sort's keys clip them
        4e307 * rng.normal(size=(chains, draws)),  # near the float limits: the sort's keys overflow
    ]
    return np.stack(cases, axis=2)


@pytest.mark.parametrize(
    ("chains", "draws"),
    [(4, 1000), (4, 1001), (1, 200), (2, 4), (3, 7), (4, 5), (2, 9)],
    ids=lambda v: str(v),
)
def test_every_scalar_matches_arviz_on_constructed_cases(chains: int, draws: int) -> None:
    draws_array = edge_cases(np.random.default_rng(chains * 1000 + draws), chains, draws)
    np.testing.assert_allclose(ours(draws_array), arviz_reference(draws_array), rtol=1e-9, atol=1e-12)


def test_too_few_draws_give_nan_diagnostics_and_numpy_summaries() -> None:
    draws = np.random.default_rng(3).normal(size=(4, MIN_DRAWS - 1, 2))
    s = summarize_scalars(draws)
    assert np.isnan(s.rhat).all() and np.isnan(s.ess_bulk).all() and np.isnan(s.ess_tail).all()
    np.testing.assert_allclose(s.median, np.median(draws.reshape(-1, 2), axis=0))


def test_a_non_finite_draw_makes_only_its_scalar_nan() -> None:
    draws = np.random.default_rng(4).normal(size=(4, 100, 3))
    draws[1, 5, 0] = np.nan
    draws[2, 7, 1] = np.inf
    s = summarize_scalars(draws)
    assert np.isnan([s.rhat[0], s.ess_bulk[0], s.ess_tail[0], s.rhat[1], s.ess_bulk[1], s.ess_tail[1]]).all()
    assert math.isnan(s.mean[0]) and s.mean[1] == math.inf
    np.testing.assert_allclose(ours(draws[:, :, 2:]), arviz_reference(draws[:, :, 2:]), rtol=1e-9)


def test_scalars_are_independent_of_the_others_in_the_batch() -> None:
    draws = edge_cases(np.random.default_rng(5), 4, 400)
    together = ours(np.concatenate([draws] * 30, axis=2))  # more than one block of scalars
    np.testing.assert_array_equal(together, np.tile(ours(draws), (30, 1)))


def test_a_block_of_scalars_is_summarized_as_in_the_whole() -> None:
    draws = edge_cases(np.random.default_rng(8), 4, 300)
    block = summarize_block(np.ascontiguousarray(draws.transpose(2, 0, 1)))
    for whole_field, block_field in zip(astuple(summarize_scalars(draws)), astuple(block), strict=True):
        np.testing.assert_array_equal(block_field, whole_field)
    with pytest.raises(ValueError, match="C-contiguous float64 draws"):
        summarize_block(draws.transpose(2, 0, 1))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_every_scalar_of_a_real_hierarchical_fit_matches_arviz(
    engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    program = tmp_path_factory.mktemp("wide") / "wide.stan"
    program.write_text(WIDE_MODEL)
    rng = np.random.default_rng(6)
    data = {"J": 50, "y": list(rng.normal(size=50))}
    fit = get_engine(engine).compile(program).sample(data, SamplerSettings(warmup=300, samples=300), seed=7)
    draws = np.concatenate(
        [np.asarray(fit.variables[name]).reshape(4, 300, -1) for name in ("mu", "tau", "z")], axis=2
    )
    assert draws.shape == (4, 300, 52)
    np.testing.assert_allclose(ours(draws), arviz_reference(draws), rtol=1e-9, atol=1e-12)


def test_ebfmi() -> None:
    rng = np.random.default_rng(12)
    iid = rng.normal(size=(1, 4000))
    walk = np.cumsum(rng.normal(size=(1, 4000)), axis=1)
    values = ebfmi(np.vstack([iid, walk]))
    assert values[0] == pytest.approx(2.0, abs=0.15)  # E(dE^2) / var(E) = 2 for iid energies
    assert values[1] < 0.01
    np.testing.assert_allclose(values, az.bfmi(np.vstack([iid, walk])), rtol=1e-12)
