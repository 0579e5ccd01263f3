"""The loop a user would write by hand: compile once, then fit shares of the replicates in plain OS
processes with PyStan. Used by bench/local_overhead.py as the baseline.

    python bench/hand_loop.py MODEL.stan DATASETS.json WORKERS        (parent)
    python bench/hand_loop.py MODEL.stan DATASETS.json --share K N    (one worker)
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import stan


def fit_share(model_code: str, datasets: list[dict], share: int, shares: int) -> None:
    for index in range(share, len(datasets), shares):
        item = datasets[index]
        posterior = stan.build(model_code, data=item["data"], random_seed=index + 1)
        fit = posterior.sample(num_chains=4, num_samples=1000, num_warmup=1000)
        draws = fit["lambda"].ravel()[::10]
        rank = int(np.sum(draws < item["lambda"]))
        print(json.dumps({"replicate": index, "rank": rank}), flush=True)


def main() -> None:
    model_file, datasets_file = sys.argv[1], sys.argv[2]
    model_code = Path(model_file).read_text()
    datasets = json.loads(Path(datasets_file).read_text())
    if sys.argv[3] == "--share":
        fit_share(model_code, datasets, int(sys.argv[4]), int(sys.argv[5]))
        return
    workers = int(sys.argv[3])
    stan.build(model_code, data=datasets[0]["data"])  # compile once (a cache hit when warm)
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, model_file, datasets_file, "--share", str(k), str(workers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for k in range(workers)
    ]
    if any(process.wait() != 0 for process in processes):
        sys.exit("a hand-loop worker failed")


if __name__ == "__main__":
    main()
