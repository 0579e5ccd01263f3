"""The Dask backend against the local backend on the same cores: the overhead of the engine.

R = 200 replicates of the bundled Poisson example, 4 chains of ``--iterations`` warmup and sampling
iterations each (default 1000, Stan's; fewer make the fits fast, where fixed costs show), each engine
present. The local side is ``python -m runtime.submit --backend local
--workers 2``; the Dask side is ``--backend dask --scheduler ADDRESS`` against a standing cluster of
``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` started beforehand, as a user's cluster
stands (README: Running on a Dask or Slurm cluster). Every program is compiled beforehand; each command
gets a fresh store and is timed end to end (simulation, fits, report), ``--rounds`` times in the order
local, Dask, Dask, local, .... Prints the wall times, the ratio of the fastest of each (goal <= 1.15),
the mean fit time, and each side's time beyond its fits (wall time less the fits' summed time over the
workers): this machine's fit times vary by 10-20 % from run to run, the time beyond the fits less so.

    .venv/bin/python bench/dask_overhead.py [--replicates 200] [--iterations 1000] [--rounds 3]
        [--engine pystan ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.engines.choice import cmdstan_available  # noqa: E402
from runtime.ensemble.stored_results import load_results  # noqa: E402
from runtime.store.local import LocalDirectoryStore  # noqa: E402
from tests.runtime.helpers.dask_clusters import process_cluster  # noqa: E402
from tests.runtime.helpers.poisson_example import submit_command  # noqa: E402

WORKERS = 2


def timed(command: list[str]) -> float:
    """Run ``command`` from the project's folder; its wall time in seconds (it must succeed)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return seconds


def fit_seconds(store: Path, replicates: int) -> tuple[float, float]:
    """The stored fits' mean sampler time, and their summed time (sampling and scoring) per worker."""
    (ensemble,) = (path.name for path in (store / "ensembles").iterdir())
    results = load_results(LocalDirectoryStore(store), ensemble, replicates)
    mean_sample = sum(result.sample_seconds for result in results) / len(results)
    return mean_sample, sum(result.total_seconds for result in results) / WORKERS


def measure(
    engine: str, replicates: int, iterations: int, rounds: int, scheduler: str, scratch: Path
) -> None:
    """Time both backends ``rounds`` times each and print the comparison."""
    runs: dict[str, list[float]] = {"local": [], "dask": []}
    beyond_fits: dict[str, list[float]] = {"local": [], "dask": []}
    mean_fits: list[float] = []
    backends = {
        "local": ["--backend", "local", "--workers", str(WORKERS)],
        "dask": ["--backend", "dask", "--scheduler", scheduler],
    }
    order = ["local", "dask", "dask", "local"] * rounds
    for index, backend in enumerate(order[: 2 * rounds]):
        store = scratch / f"{engine}-{backend}-{index}"
        command = [
            *submit_command("--replicates", str(replicates), "--engine", engine, "--no-progress"),
            *("--warmup", str(iterations), "--samples", str(iterations)),
            "--store",
            str(store),
            "--out",
            str(store / "report"),
            *backends[backend],
        ]
        wall = timed(command)
        mean_fit, fits_per_worker = fit_seconds(store, replicates)
        runs[backend].append(wall)
        beyond_fits[backend].append(wall - fits_per_worker)
        mean_fits.append(mean_fit)
        shutil.rmtree(store)
    local, dask = min(runs["local"]), min(runs["dask"])
    print(
        f"{engine:>9}  R = {replicates}, {iterations} + {iterations} iterations, {WORKERS} workers, mean fit {sum(mean_fits) / len(mean_fits):.3f} s: "
        f"local {local:.1f} s ({_all(runs['local'])}), Dask {dask:.1f} s ({_all(runs['dask'])}), "
        f"ratio {dask / local:.3f} (goal <= 1.15); beyond the fits: local {_all(beyond_fits['local'])} s, "
        f"Dask {_all(beyond_fits['dask'])} s"
    )


def _all(runs: list[float]) -> str:
    return ", ".join(f"{seconds:.1f}" for seconds in runs)


def warm_up(engine: str, scratch: Path) -> None:
    """Compile the model and the generator once, so neither side times a compile."""
    store = scratch / f"{engine}-warm-up"
    timed([*submit_command("--replicates", "2", "--engine", engine, "--no-progress"), "--store", str(store)])
    shutil.rmtree(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=1000, help="warmup and sampling iterations")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each backend (default: 3)")
    parser.add_argument("--engine", nargs="+", default=None, help="default: every engine present")
    args = parser.parse_args()
    engines = args.engine or (["pystan", "cmdstanpy"] if cmdstan_available() else ["pystan"])
    with tempfile.TemporaryDirectory(prefix="dask-overhead-") as directory:
        scratch = Path(directory)
        with process_cluster(scratch, workers=WORKERS) as scheduler:
            print(f"a standing Dask cluster at {scheduler}: {WORKERS} worker processes of 1 thread each")
            for engine in engines:
                warm_up(engine, scratch)
                measure(engine, args.replicates, args.iterations, args.rounds, scheduler, scratch)


if __name__ == "__main__":
    main()
