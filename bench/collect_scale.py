"""``runtime.collect`` at scale: its wall time and peak memory on synthetic stored results.

Two sizes, each next to its goal:

- ``wide``: R = 10,000 replicates of a model with K = 1000 scalars (10^7 rows of replicate x quantity);
  goal: under 60 s and under 2 GiB.
- ``poisson``: R = 10^6 replicates of the bundled example (``lambda`` and the ``log_lik`` test quantity);
  goal: under 5 minutes and under 2 GiB.

The results are written as workers write them (``ReplicateResult.to_json``, in batches of
``ARRAY_CHILD_WINDOW.max_results`` = 100 at ``result_batch_key``) into a local store, with calibrated ranks, in worker processes; they are kept under ``--dir`` and reused by the
next run (delete the directory to regenerate). Then ``python -m runtime.collect ID --store DIR`` runs as a
user runs it, and the bench prints its wall time and peak resident memory (``ru_maxrss`` of the child),
then the time of each stage, measured in a second process that runs them one by one.

    .venv/bin/python bench/collect_scale.py [--case wide poisson] [--dir /tmp/stanfleet-collect-bench]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.engines.settings import SamplerSettings  # noqa: E402
from runtime.ensemble.spec import DatasetSpec, EnsembleSpec, GeneratorSource  # noqa: E402
from runtime.ensemble.stored_results import batch_payload  # noqa: E402
from runtime.fitting.worker_interface import ARRAY_CHILD_WINDOW  # noqa: E402
from runtime.sbc.results import FitDiagnostics, ReplicateResult, VariableScore  # noqa: E402
from runtime.store.keys import result_batch_key, spec_key  # noqa: E402
from runtime.store.local import LocalDirectoryStore  # noqa: E402

MAX_RANK = 999
SHARD = 2_000


@dataclass(frozen=True)
class Case:
    name: str
    replicates: int
    parameters: tuple[str, ...]
    test_quantities: tuple[str, ...]
    model: Path
    goal_seconds: float
    goal_gib: float = 2.0


CASES = {
    "wide": Case(
        "wide",
        10_000,
        (*(f"z[{j}]" for j in range(1, 999)), "mu", "tau"),
        (),
        ROOT / "tests" / "data" / "wide_noncentered.stan",
        60.0,
    ),
    "poisson": Case(
        "poisson",
        1_000_000,
        ("lambda",),
        ("log_lik",),
        ROOT / "examples" / "poisson" / "fit_data.stan",
        300.0,
    ),
}


def spec_of(case: Case) -> EnsembleSpec:
    """The ensemble the synthetic results belong to (collect reads its spec, never its inputs)."""
    return EnsembleSpec(
        model_name=case.model.stem,
        model_code=case.model.read_text(),
        dataset=DatasetSpec(
            GeneratorSource(kind="python", code="# synthetic", target="bench:synthetic"), {}, 1
        ),
        base_data={},
        settings=SamplerSettings(chains=4, warmup=1000, samples=1000, thin=4),
        engine="cmdstanpy",
    )


def _scores(rng: np.random.Generator, names: tuple[str, ...]) -> dict[str, VariableScore]:
    """Calibrated scores: the truth is a draw from the posterior N(mean, sd), its rank uniform."""
    k = len(names)
    mean, sd = rng.normal(size=k), rng.uniform(0.2, 1.0, size=k)
    true = rng.normal(mean, sd)
    ranks = rng.integers(0, MAX_RANK + 1, size=k)
    rhat, ess = rng.uniform(0.999, 1.008, size=k), rng.uniform(500, 4000, size=(2, k))
    return {
        name: VariableScore(
            true_value=float(true[i]),
            rank=int(ranks[i]),
            max_rank=MAX_RANK,
            mean=float(mean[i]),
            sd=float(sd[i]),
            q5=float(mean[i] - 1.645 * sd[i]),
            median=float(mean[i]),
            q95=float(mean[i] + 1.645 * sd[i]),
            rhat=float(rhat[i]),
            ess_bulk=float(ess[0, i]),
            ess_tail=float(ess[1, i]),
        )
        for i, name in enumerate(names)
    }


def write_shard(root: str, ensemble_id: str, case_name: str, start: int, stop: int) -> None:
    """Write the results of replicates ``start..stop-1`` in batches, as workers do (no fsync: a bench)."""
    case = CASES[case_name]
    rng = np.random.default_rng(start)
    batch: list[ReplicateResult] = []
    for replicate in range(start, stop):
        result = ReplicateResult(
            replicate=replicate,
            seed=replicate,
            status="ok",
            engine="cmdstanpy",
            variables=_scores(rng, case.parameters),
            test_quantities=_scores(rng, case.test_quantities),
            diagnostics=FitDiagnostics(0, 0, float(rng.uniform(0.6, 1.2)), 4000),
            sample_seconds=0.5,
            total_seconds=0.6,
        )
        batch.append(result)
        if len(batch) == ARRAY_CHILD_WINDOW.max_results or replicate == stop - 1:
            key = result_batch_key(ensemble_id, [r.replicate for r in batch], "bench")
            path = Path(root) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(batch_payload([r.to_json() for r in batch]))
            batch = []


def prepare(case: Case, root: Path) -> str:
    """The ensemble's spec and results under ``root`` (written once, reused after)."""
    spec = spec_of(case)
    store = LocalDirectoryStore(root)
    if not store.exists(spec_key(spec.ensemble_id)):
        store.put(spec_key(spec.ensemble_id), spec.to_json())
    done = root / "complete-in-batches"  # results of the layout before batches are written again
    if not done.exists():
        started = time.perf_counter()
        shards = [(start, min(start + SHARD, case.replicates)) for start in range(0, case.replicates, SHARD)]
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            for future in [
                pool.submit(write_shard, str(root), spec.ensemble_id, case.name, a, b) for a, b in shards
            ]:
                future.result()
        done.write_text(spec.ensemble_id)
        print(f"  wrote {case.replicates:,} results in {time.perf_counter() - started:.0f} s")
    return spec.ensemble_id


def run_collect(ensemble_id: str, root: Path, out: Path, replicates: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of ``python -m runtime.collect`` on the stored ensemble."""
    command = [sys.executable, "-m", "runtime.collect", ensemble_id, "--store", str(root), "--out", str(out)]
    command += ["--replicates", str(replicates)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"collect failed: {child.stderr.read().decode() if child.stderr else ''}")
    return seconds, usage.ru_maxrss / 2**20


STAGES = """
import resource, sys, time
from pathlib import Path
from runtime.ensemble.stored_results import load_score_table
from runtime.report.files import keep_nulls_on_disk
from runtime.report.pngs import render_pngs
from runtime.report.replicates_table import write_replicate_files
from runtime.sbc.verdict import summarize
from runtime.store.local import LocalDirectoryStore

root, ensemble_id, replicates, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
keep_nulls_on_disk()
clock = time.perf_counter()
def lap(label):
    global clock
    now = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"    {label:<34} {now - clock:6.1f} s   peak RSS so far {peak:.2f} GiB")
    clock = now
table = load_score_table(LocalDirectoryStore(Path(root)), ensemble_id, replicates)
lap("read results into the score table")
summary = summarize(table, ensemble_id=ensemble_id, requested=replicates, reused=0)
lap("verdict (gamma tests, Holm)")
out.mkdir(parents=True, exist_ok=True)
write_replicate_files(table, out)
lap("replicates.parquet")
render_pngs(summary, table)
lap("figures (PNG, 2 processes)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", nargs="+", choices=sorted(CASES), default=["wide", "poisson"])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/stanfleet-collect-bench"))
    args = parser.parse_args()
    for name in args.case:
        case = CASES[name]
        k = len(case.parameters) + len(case.test_quantities)
        print(
            f"{name}: R = {case.replicates:,} replicates x K = {k} quantities = {case.replicates * k:,} rows"
        )
        root = args.dir / name
        ensemble_id = prepare(case, root)
        seconds, gib = run_collect(ensemble_id, root, args.dir / f"{name}-report", case.replicates)
        verdict = "met" if seconds < case.goal_seconds and gib < case.goal_gib else "NOT met"
        print(
            f"  runtime.collect: {seconds:.1f} s, peak RSS {gib:.2f} GiB "
            f"(goal: under {case.goal_seconds:.0f} s and {case.goal_gib:.0f} GiB: {verdict})"
        )
        print("  its stages, one by one in another process:")
        subprocess.run(
            [
                sys.executable,
                "-c",
                STAGES,
                str(root),
                ensemble_id,
                str(case.replicates),
                str(args.dir / "stages"),
            ],
            cwd=ROOT,
            check=True,
        )


if __name__ == "__main__":
    main()
