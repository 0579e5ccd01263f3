"""StanFleet on the local backend against the loop a user writes by hand, for each engine present.

R = 200 replicates of the bundled Poisson example (``--case poisson``; ``--case wide``: the
non-centered hierarchical model of tests/data with 100 groups, 102 scalars) on 2 workers, every Stan
program compiled beforehand,
4 chains of ``--iterations`` warmup and sampling iterations (default 1000, Stan's; fewer make the fits
fast, where fixed costs show), each side timed ``--rounds`` times in the
order hand, StanFleet, StanFleet, hand. For PyStan and, where CmdStan is
installed, CmdStanPy, prints both wall times and their ratio (goal <= 1.10), then where a replicate's
time goes inside the worker (from a profile of one worker fitting ``--profile`` replicates) and the
time per replicate outside the sampler (goal < 10% of a fit).

    .venv/bin/python bench/local_overhead.py [--case poisson|wide] [--replicates 200] [--workers 2]
        [--engine pystan ...]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.engines.choice import cmdstan_available  # noqa: E402
from runtime.ensemble.stored_results import load_results  # noqa: E402
from runtime.fitting.session import run_worker  # noqa: E402
from runtime.store.choice import open_store  # noqa: E402
from runtime.store.keys import results_prefix  # noqa: E402

EXAMPLE = ROOT / "examples" / "poisson"
TEST_DATA = ROOT / "tests" / "data"


@dataclass(frozen=True)
class Case:
    """A model to measure: its program, generator and data, the parameters the hand loop ranks, the
    generator's output that is the data, and the ratio goal."""

    title: str
    model: Path
    generator: Path
    data: Path
    parameters: tuple[str, ...]
    observed: str
    observed_type: type
    goal: float


CASES = {
    "poisson": Case(
        "Poisson example",
        EXAMPLE / "fit_data.stan",
        EXAMPLE / "generative_ensemble.stan",
        EXAMPLE / "data.json",
        ("lambda",),
        "y",
        int,
        1.10,
    ),
    "wide": Case(
        "non-centered hierarchical model, 102 scalars",
        TEST_DATA / "wide_noncentered.stan",
        TEST_DATA / "wide_noncentered_generator.stan",
        TEST_DATA / "wide_noncentered.json",
        ("mu", "tau", "z"),
        "y",
        float,
        1.15,
    ),
}

#: Where a worker's time goes, by the function that spends it (cumulative time in the profile).
BREAKDOWN = {
    "sampling (engine)": "sample",
    "log_lik at the true values": "quantities_at",
    "scoring (ranks, ESS, R-hat)": "score_fit",
    "reading inputs": "replicate",
    "writing the result": "put",
}


def fleet_command(
    case: Case, engine: str, iterations: int, replicates: int, workers: int, store: Path, out: Path
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runtime.submit",
        str(case.model),
        "--generator",
        str(case.generator),
        "--data",
        str(case.data),
        "--replicates",
        str(replicates),
        "--workers",
        str(workers),
        "--engine",
        engine,
        "--warmup",
        str(iterations),
        "--samples",
        str(iterations),
        "--store",
        str(store),
        "--out",
        str(out),
        "--no-progress",
    ]


def simulate_with_pystan(generator: Path, base: dict, replicates: int) -> dict[str, np.ndarray]:
    """Every generated quantity of a fixed_param run, one row per replicate (vectors and scalars only)."""
    import stan

    output = stan.build(generator.read_text(), data=base, random_seed=1).fixed_param(
        num_chains=1, num_samples=replicates
    )
    return {name: np.asarray(output[name]).reshape(-1, replicates).T for name in output.param_names}


def simulate_with_cmdstanpy(generator: Path, base: dict, replicates: int) -> dict[str, np.ndarray]:
    """Every generated quantity of a fixed_param run, shaped ``(replicates, *dims)``."""
    import cmdstanpy

    cmdstanpy.disable_logging()
    output = cmdstanpy.CmdStanModel(stan_file=generator).sample(
        data=base, fixed_param=True, chains=1, iter_sampling=replicates, seed=1, show_progress=False
    )
    return output.stan_variables()


SIMULATORS = {"pystan": simulate_with_pystan, "cmdstanpy": simulate_with_cmdstanpy}


def hand_loop_datasets(case: Case, engine: str, generator: Path, replicates: int, path: Path) -> None:
    """Simulate the hand loop's datasets the way a user would: one fixed_param run of the generator."""
    base = json.loads(case.data.read_text())
    draws = SIMULATORS[engine](generator, base, replicates)
    observed = draws[case.observed]
    if (
        observed.dtype.kind == "f"
        and np.array_equal(observed, np.round(observed))
        and case.observed == "y"
        and case.title.startswith("Poisson")
    ):
        observed = observed.astype(int)
    datasets = [
        {
            "truth": {name: np.asarray(draws[name][r]).tolist() for name in case.parameters},
            "data": {**base, case.observed: observed[r].tolist()},
        }
        for r in range(replicates)
    ]
    path.write_text(json.dumps(datasets))


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Measurement:
    engine: str
    hand_seconds: list[float]
    fleet_seconds: list[float]
    fit_seconds_per_worker: float
    per_replicate: dict[str, float]
    replicate_seconds: float
    profiled: int


def profile_worker(store: Path, ensemble_id: str, replicates: list[int]) -> tuple[dict[str, float], float]:
    """Refit ``replicates`` in this process under cProfile: seconds per replicate by activity, and in all."""
    object_store = open_store(str(store))
    for key in list(object_store.list_keys(results_prefix(ensemble_id))):  # every result: refit the first
        object_store.delete(key)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(run_worker, object_store, ensemble_id, replicates)
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_name: dict[str, float] = {}
    for (filename, _, function), (_, _, _, cumulative, _) in stats.items():
        if filename.startswith(str(ROOT / "runtime")):
            by_name[function] = max(by_name.get(function, 0.0), cumulative)
    fits = by_name["fit_replicate"]
    breakdown = {label: by_name.get(function, 0.0) / len(replicates) for label, function in BREAKDOWN.items()}
    breakdown["other work in fit_replicate"] = (
        fits - sum(by_name.get(f, 0.0) for f in ("sample", "quantities_at", "score_fit"))
    ) / len(replicates)
    return breakdown, elapsed / len(replicates)


def measure(
    case: Case,
    engine: str,
    iterations: int,
    replicates: int,
    workers: int,
    rounds: int,
    profiled: int,
    tmp: Path,
) -> Measurement:
    # Warm every compile cache: Python's bytecode (a machine with PYTHONDONTWRITEBYTECODE set, as the
    # development VM, would compile every module of both sides at every start), a 2-replicate StanFleet
    # run builds the model and the generator, a 2-replicate hand loop the hand loop's copies (CmdStanPy
    # builds next to the program: not in the repo).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "runtime"), str(ROOT / "bench")], check=True
    )
    timed(fleet_command(case, engine, iterations, 2, 1, tmp / "warm-store", tmp / "warm-out"))
    hand = tmp / "hand"
    hand.mkdir()
    model, generator = Path(shutil.copy(case.model, hand)), Path(shutil.copy(case.generator, hand))
    hand_command = [sys.executable, str(ROOT / "bench" / "hand_loop.py"), engine, str(iterations), str(model)]
    hand_loop_datasets(case, engine, generator, 2, tmp / "warm.json")
    subprocess.run([*hand_command, str(tmp / "warm.json"), "1"], check=True)

    def hand_loop() -> float:
        started = time.perf_counter()
        hand_loop_datasets(case, engine, generator, replicates, tmp / "datasets.json")
        subprocess.run([*hand_command, str(tmp / "datasets.json"), str(workers)], check=True)
        return time.perf_counter() - started

    def stanfleet(run: int) -> float:
        return timed(
            fleet_command(
                case, engine, iterations, replicates, workers, tmp / f"store-{run}", tmp / f"out-{run}"
            )
        )

    # In the order hand, StanFleet, StanFleet, hand, ...: a machine that slows down or speeds up during
    # the bench (a shared VM does) weighs on both sides alike.
    hand_seconds, fleet_seconds = [], []
    for run in range(rounds):
        if run % 2 == 0:
            hand_seconds.append(hand_loop())
            fleet_seconds.append(stanfleet(run))
        else:
            fleet_seconds.append(stanfleet(run))
            hand_seconds.append(hand_loop())
    store = tmp / "store-0"
    (ensemble_dir,) = (store / "ensembles").iterdir()
    results = load_results(open_store(str(store)), ensemble_dir.name, replicates)
    per_worker = sum(result.total_seconds for result in results) / workers
    per_replicate, replicate_seconds = profile_worker(store, ensemble_dir.name, list(range(profiled)))
    return Measurement(
        engine, hand_seconds, fleet_seconds, per_worker, per_replicate, replicate_seconds, profiled
    )


def report(case: Case, m: Measurement, iterations: int, replicates: int, workers: int) -> None:
    sampling = m.per_replicate["sampling (engine)"]
    outside = m.replicate_seconds - sampling
    print(
        f"\n== {m.engine}: R = {replicates} on {workers} workers ({case.title}, "
        f"{iterations} + {iterations} iterations per chain, warm caches)"
    )
    hand, fleet = sum(m.hand_seconds), sum(m.fleet_seconds)
    print(f"hand loop wall time:   {_seconds(m.hand_seconds)}  (simulate, then fit in {workers} processes)")
    print(
        f"StanFleet wall time:   {_seconds(m.fleet_seconds)}  (whole command: simulate, fit, score, report)"
    )
    print(
        f"ratio StanFleet/hand:  {fleet / hand:7.3f}  (sums of {len(m.hand_seconds)} runs each; goal <= {case.goal:.2f})"
    )
    print(
        f"outside the workers:   {m.fleet_seconds[0] - m.fit_seconds_per_worker:7.2f} s  "
        "(start-up, simulation, checks, report; wall time minus a worker's share of the fit time, first run)"
    )
    print(f"one worker, {m.profiled} replicates under cProfile, per replicate:")
    for label, seconds in m.per_replicate.items():
        print(f"  {label:32s} {seconds * 1000:8.1f} ms")
    print(f"  {'in all (start to last result)':32s} {m.replicate_seconds * 1000:8.1f} ms")
    print(
        f"time per replicate outside the sampler: {outside * 1000:.1f} ms = {outside / sampling:.1%} "
        "of a fit (goal < 10%)"
    )


def _seconds(runs: list[float]) -> str:
    return " + ".join(f"{seconds:.2f}" for seconds in runs) + " s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="poisson")
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument(
        "--iterations",
        type=int,
        default=1000,
        help="warmup and sampling iterations per chain on both sides (fewer: fast fits, where fixed costs show)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each side, interleaved")
    parser.add_argument("--profile", type=int, default=20, help="replicates refitted under the profiler")
    parser.add_argument(
        "--engine",
        action="append",
        choices=sorted(SIMULATORS),
        help="engine to measure (repeatable; default: pystan, and cmdstanpy where CmdStan is installed)",
    )
    args = parser.parse_args()
    engines = args.engine or ["pystan", *(["cmdstanpy"] if cmdstan_available() else [])]
    for engine in engines:
        with tempfile.TemporaryDirectory() as tmp_name:
            measurement = measure(
                CASES[args.case],
                engine,
                args.iterations,
                args.replicates,
                args.workers,
                args.rounds,
                args.profile,
                Path(tmp_name),
            )
        report(CASES[args.case], measurement, args.iterations, args.replicates, args.workers)


if __name__ == "__main__":
    main()
