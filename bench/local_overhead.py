"""Issue 2's performance figures: StanFleet on the local backend against a hand-written loop.

R = 200 replicates of the bundled Poisson example on 2 workers, every Stan program compiled
beforehand. Prints both wall times and their ratio (goal <= 1.10), and the per-replicate time spent
outside sampling (goal < 10% of a fit).

    .venv/bin/python bench/local_overhead.py [--replicates 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import stan

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.runtime.poisson_example import example_arguments  # noqa: E402

EXAMPLE = ROOT / "examples" / "poisson"
MODEL = EXAMPLE / "fit_data.stan"
GENERATOR = EXAMPLE / "generative_ensemble.stan"


def submit_command(replicates: int, workers: int, store: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runtime.submit",
        *example_arguments(),
        "--replicates",
        str(replicates),
        "--workers",
        str(workers),
        "--engine",
        "pystan",
        "--store",
        str(store),
        "--out",
        str(out),
        "--no-progress",
    ]


def hand_loop_datasets(replicates: int, path: Path) -> None:
    """Simulate the hand loop's datasets the way a user would: one fixed_param run of the generator."""
    base = json.loads((EXAMPLE / "data.json").read_text())
    output = stan.build(GENERATOR.read_text(), data=base, random_seed=1).fixed_param(num_samples=replicates)
    datasets = [
        {
            "lambda": float(output["lambda"][0, r]),
            "data": {**base, "y": output["y"][:, r].astype(int).tolist()},
        }
        for r in range(replicates)
    ]
    path.write_text(json.dumps(datasets))


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Warm every compile cache: a 2-replicate StanFleet run builds the model and the generator.
        timed(submit_command(2, 1, tmp / "warm-store", tmp / "warm-out"))

        started = time.perf_counter()
        hand_loop_datasets(args.replicates, tmp / "datasets.json")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "hand_loop.py"),
                str(MODEL),
                str(tmp / "datasets.json"),
                str(args.workers),
            ],
            check=True,
        )
        hand_seconds = time.perf_counter() - started

        store = tmp / "store"
        fleet_seconds = timed(submit_command(args.replicates, args.workers, store, tmp / "out"))

        results = [json.loads(p.read_bytes()) for p in store.glob("ensembles/*/results/*.json")]
        sample = np.array([r["sample_seconds"] for r in results])
        outside = np.array([r["total_seconds"] - r["sample_seconds"] for r in results])
        fleet_per_fit = fleet_seconds * args.workers / args.replicates
        print(
            f"replicates: {args.replicates} on {args.workers} workers (Poisson example, PyStan, warm caches)"
        )
        print(f"hand loop wall time:   {hand_seconds:7.2f} s")
        print(f"StanFleet wall time:   {fleet_seconds:7.2f} s  (whole command: simulate, fit, score, report)")
        print(f"ratio StanFleet/hand:  {fleet_seconds / hand_seconds:7.3f}  (goal <= 1.10)")
        print(f"mean sampling time per fit:            {sample.mean() * 1000:7.1f} ms")
        print(
            f"mean in-worker time outside sampling:  {outside.mean() * 1000:7.1f} ms "
            f"({outside.mean() / sample.mean():.1%} of a fit; goal < 10%)"
        )
        print(
            f"whole-command time per fit-slot:       {fleet_per_fit * 1000:7.1f} ms "
            f"(outside sampling: {(fleet_per_fit - sample.mean()) / sample.mean():.1%} of a fit)"
        )


if __name__ == "__main__":
    main()
