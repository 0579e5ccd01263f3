"""The per-replicate work outside the sampler, per scalar, for models with K = 10 to 10,000 scalars.

For each K, builds one fit's draws (4 chains x 1000 draws, AR(1) chains with autocorrelations 0 to
0.9, so Geyer's truncation varies as in real fits) and times what a worker does with them after
sampling: ``runtime.fitting.scoring.score_fit`` (summaries, rank-normalized R-hat, bulk and tail ESS,
automatic thinning, ranks) plus E-BFMI, and the replicate's result serialized to JSON. Prints
milliseconds per scalar next to the goal (<= 0.5 ms) and next to ArviZ's per-scalar loop
(``arviz.rhat``/``arviz.ess`` on each scalar, timed on up to 100 scalars), which the worker called
before.

    .venv/bin/python bench/wide_model.py [--sizes 10 100 1000 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.arviz_quiet import arviz as az  # noqa: E402
from runtime.engines.base import Draws  # noqa: E402
from runtime.fitting.scoring import score_fit  # noqa: E402
from runtime.sbc.results import ReplicateResult  # noqa: E402

GOAL_MS_PER_SCALAR = 0.5
CHAINS, DRAWS = 4, 1000
ARVIZ_SAMPLE = 100


def ar1_draws(rng: np.random.Generator, scalars: int) -> np.ndarray:
    """``(chains, draws, scalars)`` AR(1) chains, scalar k with autocorrelation ``0.9 * k / scalars``."""
    phi = 0.9 * np.arange(scalars) / max(scalars, 1)
    noise = rng.normal(size=(CHAINS, DRAWS, scalars)) * np.sqrt(1 - phi**2)
    x = np.empty_like(noise)
    x[:, 0] = rng.normal(size=(CHAINS, scalars))
    for t in range(1, DRAWS):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def fit_of(draws: np.ndarray, rng: np.random.Generator) -> Draws:
    return Draws(
        variables={"theta": draws},
        divergent=np.zeros((CHAINS, DRAWS), dtype=bool),
        treedepth=np.full((CHAINS, DRAWS), 3),
        energy=rng.normal(size=(CHAINS, DRAWS)),
        max_treedepth=10,
    )


def time_scoring(fit: Draws, truth: np.ndarray, rounds: int) -> float:
    """Best of ``rounds`` seconds for scoring the fit and serializing its result."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        variables, _, diagnostics = score_fit(fit, {"theta": truth}, {}, "auto", np.random.default_rng(1))
        ReplicateResult(
            replicate=0, seed=1, status="ok", engine="bench", variables=variables, diagnostics=diagnostics
        ).to_json()
        best = min(best, time.perf_counter() - start)
    return best


def time_arviz(draws: np.ndarray) -> float:
    """Seconds per scalar for ArviZ's rank R-hat, bulk ESS and tail ESS, one scalar at a time."""
    sample = draws[:, :, :ARVIZ_SAMPLE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for k in range(sample.shape[2]):
            az.rhat(sample[:, :, k], method="rank")
            az.ess(sample[:, :, k], method="bulk")
            az.ess(sample[:, :, k], method="tail")
    return (time.perf_counter() - start) / sample.shape[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"scoring one fit ({CHAINS} chains x {DRAWS} draws) outside the sampler, best of {args.rounds}")
    print(
        f"{'K':>7}  {'ms per scalar':>13}  {'goal':>6}  {'ms per fit':>10}  {'ArviZ loop, ms per scalar':>25}"
    )
    for scalars in args.sizes:
        draws = ar1_draws(rng, scalars)
        truth = rng.normal(size=scalars)
        seconds = time_scoring(fit_of(draws, rng), truth, args.rounds)
        per_scalar = 1000 * seconds / scalars
        verdict = "ok" if per_scalar <= GOAL_MS_PER_SCALAR else "OVER"
        print(
            f"{scalars:>7}  {per_scalar:>13.3f}  {GOAL_MS_PER_SCALAR:>4} {verdict:<2}  {1000 * seconds:>10.1f}  "
            f"{1000 * time_arviz(draws):>25.3f}"
        )


if __name__ == "__main__":
    main()
