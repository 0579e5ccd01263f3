"""Synthetic replicate results for the summary and report tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runtime.sbc.results import FitDiagnostics, ReplicateResult, VariableScore
from runtime.sbc.score_table import ScoreTable
from runtime.sbc.verdict import QuantityScores, iter_quantities

MAX_RANK = 99


def score(
    true: float, rank: int, *, mean: float = 0.0, sd: float = 1.0, rhat: float = 1.0, ess: float = 1000.0
) -> VariableScore:
    return VariableScore(
        true_value=true,
        rank=rank,
        max_rank=MAX_RANK,
        mean=mean,
        sd=sd,
        q5=mean - 1.645 * sd,
        median=mean,
        q95=mean + 1.645 * sd,
        rhat=rhat,
        ess_bulk=ess,
        ess_tail=ess,
    )


def ok_result(
    replicate: int,
    variables: dict[str, VariableScore],
    test_quantities: dict[str, VariableScore] | None = None,
    diagnostics: FitDiagnostics | None = None,
) -> ReplicateResult:
    return ReplicateResult(
        replicate=replicate,
        seed=1000 + replicate,
        status="ok",
        engine="cmdstan",
        variables=variables,
        test_quantities=test_quantities or {},
        diagnostics=diagnostics
        or FitDiagnostics(divergences=0, max_treedepth_hits=0, min_ebfmi=1.0, num_draws=100),
    )


def failed_result(replicate: int, error: str) -> ReplicateResult:
    return ReplicateResult(
        replicate=replicate, seed=1000 + replicate, status="failed", engine="cmdstan", error=error
    )


def ensemble(
    replicates: int, rank: Callable[[np.random.Generator], int], seed: int = 0
) -> list[ReplicateResult]:
    """Replicates scoring ``lambda``, ``beta[1]`` and test quantity ``log_lik`` with ranks from ``rank``."""
    rng = np.random.default_rng(seed)
    results = []
    for r in range(replicates):
        true = rng.normal(size=3)
        sd = 0.4
        mean = true + sd * rng.normal(size=3)
        scores = [score(float(t), rank(rng), mean=float(m), sd=sd) for t, m in zip(true, mean, strict=True)]
        results.append(ok_result(r, {"lambda": scores[0], "beta[1]": scores[1]}, {"log_lik": scores[2]}))
    return results


def uniform_rank(rng: np.random.Generator) -> int:
    return int(rng.integers(0, MAX_RANK + 1))


def high_rank(rng: np.random.Generator) -> int:
    return int(rng.integers(MAX_RANK - 5, MAX_RANK + 1))


def tiny_ensemble(n_ok: int) -> list[ReplicateResult]:
    """``n_ok`` succeeded replicates (too few for statistics when below two) and one failed one."""
    results = [ok_result(r, {"lambda": score(0.5, 3)}, {"log_lik": score(-10.0, 50)}) for r in range(n_ok)]
    results.append(failed_result(5, "ValueError: bad init"))
    return results


def many_quantities(count: int, replicates: int) -> list[ReplicateResult]:
    """``theta[1..count]``; every fifth one has ranks piled up at the top."""
    rng = np.random.default_rng(3)
    return [
        ok_result(
            r,
            {
                f"theta[{i}]": score(float(rng.normal()), high_rank(rng) if i % 5 == 0 else uniform_rank(rng))
                for i in range(1, count + 1)
            },
        )
        for r in range(replicates)
    ]


def table_of(results: list[ReplicateResult]) -> ScoreTable:
    """The score table the report reads, built from the results' stored JSON."""
    return ScoreTable.from_results(results)


def all_quantities(results: list[ReplicateResult]) -> list[QuantityScores]:
    """Every quantity's scores across the succeeded replicates."""
    table = table_of(results)
    return list(iter_quantities(table, table.ok))


def leaning_vector(elements: int, replicates: int, shift: float, seed: int = 7) -> list[ReplicateResult]:
    """``z[1..elements]`` whose ranks all lean the same way: ``u = Phi(x + shift)``, ``rank = floor(100 u)``.

    ``shift = 0`` gives uniform ranks. The elements are independent within a replicate.
    """
    from scipy.special import ndtr

    rng = np.random.default_rng(seed)
    ranks = np.minimum(
        (ndtr(rng.normal(size=(replicates, elements)) + shift) * (MAX_RANK + 1)).astype(int), MAX_RANK
    )
    return [
        ok_result(r, {f"z[{j + 1}]": score(float(rng.normal()), int(ranks[r, j])) for j in range(elements)})
        for r in range(replicates)
    ]
