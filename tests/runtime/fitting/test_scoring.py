import math

import numpy as np
import pytest
from scipy import stats as sps

from runtime.engines.base import Draws
from runtime.errors import StanFleetError
from runtime.fitting.diagnostics import ebfmi
from runtime.fitting.scoring import (
    LOG_LIK_NAME,
    ThinningWarning,
    draws_of_test_quantities,
    fit_diagnostics,
    score_fit,
    sum_test_quantity,
)
from runtime.sbc.ranks import auto_thin_factors
from runtime.sbc.results import VariableScore
from runtime.sbc.uniformity import gamma_uniformity_pvalue, randomized_pit

CHAINS, DRAWS = 4, 1000


def _draws(variables: dict[str, np.ndarray], rng: np.random.Generator, **sampler: np.ndarray) -> Draws:
    shape = (CHAINS, next(iter(variables.values())).shape[1]) if variables else (CHAINS, DRAWS)
    return Draws(
        variables=variables,
        divergent=sampler.get("divergent", np.zeros(shape, dtype=bool)),
        treedepth=sampler.get("treedepth", np.full(shape, 3)),
        energy=sampler.get("energy", rng.normal(size=shape)),
        max_treedepth=10,
    )


def test_normal_draws_give_known_summaries_and_rank() -> None:
    rng = np.random.default_rng(0)
    mu_draws = rng.normal(2.0, 0.5, size=(CHAINS, DRAWS))
    draws = _draws({"mu": mu_draws}, rng)
    variables, test_quantities, _ = score_fit(draws, {"mu": np.array(2.1)}, {}, 10, rng)
    assert set(variables) == {"mu"}
    assert test_quantities == {}
    score = variables["mu"]
    assert score.true_value == 2.1
    assert score.max_rank == 400
    assert score.rank == int(np.sum(mu_draws[:, ::10] < 2.1))
    assert score.mean == pytest.approx(2.0, abs=0.03)
    assert score.sd == pytest.approx(0.5, abs=0.02)
    assert score.q5 == pytest.approx(2.0 - 1.645 * 0.5, abs=0.05)
    assert score.median == pytest.approx(2.0, abs=0.03)
    assert score.q95 == pytest.approx(2.0 + 1.645 * 0.5, abs=0.05)
    assert score.rhat < 1.01
    assert score.ess_bulk > 3000
    assert score.ess_tail > 3000


def test_matrix_and_vector_parameters_are_scored_per_element() -> None:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 1.0], [10.0, 11.0]])  # element [i, j] is centred at 10 i + j
    sigma = centres + 0.1 * rng.normal(size=(CHAINS, DRAWS, 2, 2))
    beta = np.arange(3.0) + rng.normal(size=(CHAINS, DRAWS, 3))
    truth = {"Sigma": centres + 0.05, "beta": np.array([100.0, -100.0, 2.0])}
    variables, _, _ = score_fit(_draws({"Sigma": sigma, "beta": beta}, rng), truth, {}, 10, rng)
    assert set(variables) == {
        "Sigma[1,1]",
        "Sigma[1,2]",
        "Sigma[2,1]",
        "Sigma[2,2]",
        "beta[1]",
        "beta[2]",
        "beta[3]",
    }
    for i in range(2):
        for j in range(2):
            score = variables[f"Sigma[{i + 1},{j + 1}]"]
            assert score.true_value == pytest.approx(10 * i + j + 0.05)
            assert score.mean == pytest.approx(10 * i + j, abs=0.01)
    assert variables["beta[1]"].rank == variables["beta[1]"].max_rank  # above every draw
    assert variables["beta[2]"].rank == 0
    assert variables["beta[3]"].mean == pytest.approx(2.0, abs=0.05)


def test_log_lik_is_summed_and_scored_as_a_test_quantity() -> None:
    rng = np.random.default_rng(2)
    log_lik = rng.normal(-1.0, 0.2, size=(CHAINS, DRAWS, 5))
    draws = _draws({"mu": rng.normal(size=(CHAINS, DRAWS)), LOG_LIK_NAME: log_lik}, rng)
    at_truth = {LOG_LIK_NAME: np.array([-1.0, -1.0, -1.0, -1.0, -1.1])}
    quantities = draws_of_test_quantities(draws, at_truth, (), log_lik_sum=True)
    variables, test_quantities, _ = score_fit(draws, {"mu": np.array(0.0)}, quantities, 10, rng)
    assert set(variables) == {"mu"}
    assert set(test_quantities) == {LOG_LIK_NAME}
    score = test_quantities[LOG_LIK_NAME]
    total = log_lik.sum(axis=2)
    assert score.true_value == pytest.approx(-5.1)
    assert score.mean == pytest.approx(total.mean())
    assert score.sd == pytest.approx(total.std(ddof=1))
    assert score.rank == int(np.sum(total[:, ::10] < -5.1))
    assert score.max_rank == 400


def test_named_test_quantities_are_ranked_element_by_element() -> None:
    rng = np.random.default_rng(7)
    log_lik = rng.normal(-1.0, 0.2, size=(CHAINS, DRAWS, 2))
    mu_squared = rng.normal(4.0, 1.0, size=(CHAINS, DRAWS))
    draws = _draws({LOG_LIK_NAME: log_lik, "mu_squared": mu_squared}, rng)
    at_truth = {LOG_LIK_NAME: np.array([-0.9, -1.3]), "mu_squared": np.array(3.0)}
    quantities = draws_of_test_quantities(draws, at_truth, ["mu_squared", LOG_LIK_NAME], log_lik_sum=True)
    assert list(quantities) == [LOG_LIK_NAME, "mu_squared", "log_lik[1]", "log_lik[2]"]
    np.testing.assert_array_equal(quantities["log_lik[2]"][0], log_lik[..., 1])
    assert quantities["log_lik[2]"][1] == -1.3
    assert quantities[LOG_LIK_NAME][1] == pytest.approx(-2.2)
    _, scored, _ = score_fit(draws, {}, quantities, 10, rng)
    assert scored["mu_squared"].rank == int(np.sum(mu_squared[:, ::10] < 3.0))
    assert scored["log_lik[1]"].mean == pytest.approx(log_lik[..., 0].mean())
    with pytest.raises(StanFleetError, match="no value of 'mu_squared' at the true parameters"):
        draws_of_test_quantities(draws, {}, ["mu_squared"], log_lik_sum=False)
    with pytest.raises(StanFleetError, match="true value has shape"):
        draws_of_test_quantities(draws, {"mu_squared": np.zeros(2)}, ["mu_squared"], log_lik_sum=False)


def test_sum_test_quantity() -> None:
    values = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(sum_test_quantity(values, 2), values.sum(axis=2))
    np.testing.assert_array_equal(sum_test_quantity(values, 1), values.sum(axis=(1, 2)))
    assert float(sum_test_quantity(np.array([1.0, 2.5]), 0)) == 3.5
    np.testing.assert_array_equal(sum_test_quantity(values[..., 0], 2), values[..., 0])
    with pytest.raises(ValueError, match="sample axes"):
        sum_test_quantity(np.zeros(3), 2)


def test_sampler_diagnostics() -> None:
    rng = np.random.default_rng(3)
    divergent = np.zeros((CHAINS, DRAWS), dtype=bool)
    divergent[0, :5] = True
    divergent[3, 7] = True
    treedepth = np.full((CHAINS, DRAWS), 5)
    treedepth[1, :3] = 10
    treedepth[2, 0] = 11
    treedepth[2, 1] = 9
    energy = rng.normal(size=(CHAINS, DRAWS))
    energy[2] = np.cumsum(rng.normal(size=DRAWS))  # a chain whose energy barely moves between draws
    draws = _draws(
        {"mu": rng.normal(size=(CHAINS, DRAWS))}, rng, divergent=divergent, treedepth=treedepth, energy=energy
    )
    _, _, diagnostics = score_fit(draws, {"mu": np.array(0.0)}, {}, 10, rng)
    assert diagnostics == fit_diagnostics(draws)
    assert diagnostics.divergences == 6
    assert diagnostics.max_treedepth_hits == 4
    assert diagnostics.num_draws == CHAINS * DRAWS
    assert diagnostics.min_ebfmi == pytest.approx(float(ebfmi(energy)[2]))
    assert diagnostics.min_ebfmi < 0.3
    assert float(np.max(ebfmi(energy))) > 1.5


def auto_thin_factor(score: VariableScore) -> int:
    return int(auto_thin_factors(CHAINS * DRAWS, np.array([score.ess_bulk]), np.array([score.ess_tail]))[0])


def test_auto_thinning_uses_the_variables_own_ess() -> None:
    rng = np.random.default_rng(4)
    phi = 0.9
    x = np.empty((CHAINS, DRAWS))
    x[:, 0] = rng.normal(size=CHAINS)
    for t in range(1, DRAWS):
        x[:, t] = phi * x[:, t - 1] + math.sqrt(1 - phi**2) * rng.normal(size=CHAINS)
    iid = rng.normal(size=(CHAINS, DRAWS))
    variables, _, _ = score_fit(
        _draws({"ar": x, "iid": iid}, rng), {"ar": np.array(0.3), "iid": np.array(0.3)}, {}, "auto", rng
    )
    ar = variables["ar"]
    factor = auto_thin_factor(ar)
    assert factor > 10
    assert ar.max_rank == CHAINS * math.ceil(DRAWS / factor)
    assert ar.rank == int(np.sum(x[:, ::factor] < 0.3))
    iid_score = variables["iid"]
    iid_factor = auto_thin_factor(iid_score)
    assert iid_factor <= 2
    assert iid_score.max_rank == CHAINS * math.ceil(DRAWS / iid_factor)


def test_too_few_kept_draws_warn() -> None:
    rng = np.random.default_rng(5)
    draws = _draws({"mu": rng.normal(size=(CHAINS, 100))}, rng)
    with pytest.warns(ThinningWarning, match="keeps 40 draws"):
        variables, _, _ = score_fit(draws, {"mu": np.array(0.0)}, {}, 10, rng)
    assert variables["mu"].max_rank == 40


def test_bad_inputs_raise_stanfleet_errors() -> None:
    rng = np.random.default_rng(6)
    draws = _draws({"mu": rng.normal(size=(CHAINS, DRAWS)), "beta": rng.normal(size=(CHAINS, DRAWS, 3))}, rng)
    with pytest.raises(StanFleetError, match="no variable 'tau'"):
        score_fit(draws, {"tau": np.array(1.0)}, {}, 10, rng)
    with pytest.raises(StanFleetError, match="no variable 'log_lik'"):
        draws_of_test_quantities(draws, {LOG_LIK_NAME: np.zeros(3)}, (), log_lik_sum=True)
    with pytest.raises(StanFleetError, match="true value has shape"):
        score_fit(draws, {"beta": np.zeros(2)}, {}, 10, rng)
    with pytest.raises(StanFleetError, match="thin"):
        score_fit(draws, {"mu": np.array(0.0)}, {}, 0, rng)
    with pytest.raises(StanFleetError, match="thin"):
        score_fit(draws, {"mu": np.array(0.0)}, {}, "sometimes", rng)


def test_ranks_of_an_exact_sampler_through_score_fit_are_uniform() -> None:
    rng = np.random.default_rng(7)
    ranks, max_ranks = [], []
    for _ in range(100):
        theta = rng.normal()
        y = theta + rng.normal(size=4)
        post_mean, post_sd = y.sum() / 5, 1 / math.sqrt(5)
        draws = _draws({"theta": post_mean + post_sd * rng.normal(size=(CHAINS, 250))}, rng)
        variables, _, _ = score_fit(draws, {"theta": np.array(theta)}, {}, 10, rng)
        ranks.append(variables["theta"].rank)
        max_ranks.append(variables["theta"].max_rank)
    assert set(max_ranks) == {100}
    pit = randomized_pit(np.array(ranks), np.array(max_ranks), rng)
    assert gamma_uniformity_pvalue(pit) > 0.01
    assert sps.kstest(pit, "uniform").pvalue > 0.01
