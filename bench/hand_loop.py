"""The loop a user would write by hand: compile once, then fit shares of the replicates in plain OS
processes, ranking every scalar of the parameters in each fit's thinned draws. Used by
bench/local_overhead.py as the baseline.

    python bench/hand_loop.py ENGINE ITERATIONS MODEL.stan DATASETS.json WORKERS            (parent)
    python bench/hand_loop.py ENGINE ITERATIONS MODEL.stan DATASETS.json --share K N SEED   (one worker)

DATASETS.json lists ``{"truth": {parameter: value}, "data": {...}}``. ENGINE is ``pystan`` or
``cmdstanpy``; both run 4 chains of ITERATIONS warmup and ITERATIONS sampling iterations (1000 is
Stan's default).
Each run draws fresh seeds: httpstan keeps every seeded PyStan fit in its cache, so a rerun with the
same seeds would read fits instead of sampling.
"""

import json
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

Fit = Callable[[dict, int, list[str]], dict[str, np.ndarray]]
"""Fits one dataset with a seed; returns the named parameters' draws, shaped ``(draws, scalars)``."""


def pystan_fitter(model_file: str, first_data: dict, iterations: int, *, compile_only: bool = False) -> Fit:
    import stan

    model_code = Path(model_file).read_text()
    if compile_only:
        stan.build(model_code, data=first_data)  # a cache hit when warm

    def fit(data: dict, seed: int, names: list[str]) -> dict[str, np.ndarray]:
        posterior = stan.build(model_code, data=data, random_seed=seed)
        draws = posterior.sample(num_chains=4, num_samples=iterations, num_warmup=iterations)
        return {name: np.asarray(draws[name]).reshape(-1, draws[name].shape[-1]).T for name in names}

    return fit


def cmdstanpy_fitter(
    model_file: str, first_data: dict, iterations: int, *, compile_only: bool = False
) -> Fit:
    import cmdstanpy

    cmdstanpy.disable_logging()
    model = cmdstanpy.CmdStanModel(stan_file=model_file)  # compile once (reused when up to date)

    def fit(data: dict, seed: int, names: list[str]) -> dict[str, np.ndarray]:
        posterior = model.sample(
            data=data,
            chains=4,
            seed=seed,
            iter_warmup=iterations,
            iter_sampling=iterations,
            show_progress=False,
        )
        return {name: posterior.stan_variable(name).reshape(4 * iterations, -1) for name in names}

    return fit


FITTERS = {"pystan": pystan_fitter, "cmdstanpy": cmdstanpy_fitter}


def fit_share(fit: Fit, datasets: list[dict], share: int, shares: int, seed: int) -> None:
    for index in range(share, len(datasets), shares):
        item = datasets[index]
        draws = fit(item["data"], seed + index, list(item["truth"]))
        ranks = {
            name: np.sum(draws[name][::10] < np.ravel(truth), axis=0).tolist()
            for name, truth in item["truth"].items()
        }
        print(json.dumps({"replicate": index, "ranks": ranks}), flush=True)


def main() -> None:
    engine, iterations, model_file, datasets_file = sys.argv[1], int(sys.argv[2]), *sys.argv[3:5]
    datasets = json.loads(Path(datasets_file).read_text())
    if sys.argv[5] == "--share":
        fit = FITTERS[engine](model_file, datasets[0]["data"], iterations)
        fit_share(fit, datasets, int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]))
        return
    FITTERS[engine](model_file, datasets[0]["data"], iterations, compile_only=True)  # before the shares
    workers = int(sys.argv[5])
    seed = secrets.randbelow(2**30)
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                engine,
                str(iterations),
                model_file,
                datasets_file,
                "--share",
                str(k),
                str(workers),
                str(seed),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for k in range(workers)
    ]
    if any(process.wait() != 0 for process in processes):
        sys.exit("a hand-loop worker failed")


if __name__ == "__main__":
    main()
