"""Estimate what R = 1000 fits of the bundled Poisson example cost on the deployed stack.

An estimate under stated assumptions, not a bill. It

1. measures the worker's time per fit by running N replicates (default 40) with the real worker on
   one core (``taskset -c 0``, when available): ``python -m runtime.submit ... --workers 1
   --engine cmdstanpy --store TMP`` (CmdStanPy is what the worker image runs; ``--engine pystan`` to
   compare), then reads each result's ``total_seconds`` (fit + scoring; the 4
   chains of a fit run inside the one job, so on one vCPU they share it);
2. turns that into vCPU-seconds for R fits x the fit job's vCPUs (``workerVcpus`` in cdk.json, else 1),
   plus a per-array-child overhead (container start and compiled-model fetch, default 30 s per child
   of 20 replicates) and one compile job (default 90 s), priced with ``runtime.ensemble.cost`` at the assumed
   spot price (0.02 USD per vCPU-hour) and over the range 0.016-0.024;
3. counts the S3 requests of the run from the code's access pattern and prices them
   ($0.005 per 1000 PUT/LIST, $0.0004 per 1000 GET/HEAD);

and compares the total with the 2018 post's ~$0.97 per 1000 fits and the goal (< $0.01).

    .venv/bin/python bench/aws_cost.py [--measure 40] [--replicates 1000] [--overhead-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.aws.manifest import replicates_per_child  # noqa: E402
from runtime.engines.choice import cmdstan_available  # noqa: E402
from runtime.ensemble.cost import ASSUMED_SPOT_PRICE_PER_VCPU_HOUR, estimate_cost  # noqa: E402
from tests.runtime.helpers.poisson_example import submit_command  # noqa: E402

BASELINE_2018_USD_PER_1000 = 0.97
GOAL_USD_PER_1000 = 0.01
SPOT_RANGE = (0.016, 0.024)
S3_PUT_LIST_PER_1000 = 0.005
S3_GET_PER_1000 = 0.0004
LIST_PAGE = 1000
POLL_SECONDS = 15.0
"""runtime.executors.batch.BatchExecutor's default poll interval."""


@dataclass(frozen=True)
class FitTimes:
    """Per-fit worker seconds measured on one core."""

    seconds: list[float]
    sample_seconds: list[float]
    failed: int
    command_seconds: float
    command_cpu_seconds: float
    pinned: bool

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)


@dataclass(frozen=True)
class S3Requests:
    """S3 requests of one ensemble by who makes them, split into the two price classes."""

    rows: list[tuple[str, int, int]]
    """(who, PUT+LIST requests, GET+HEAD requests)."""

    @property
    def put_list(self) -> int:
        return sum(row[1] for row in self.rows)

    @property
    def get_head(self) -> int:
        return sum(row[2] for row in self.rows)

    @property
    def usd(self) -> float:
        return self.put_list / 1000 * S3_PUT_LIST_PER_1000 + self.get_head / 1000 * S3_GET_PER_1000


def default_vcpus() -> int:
    """The fit job's vCPUs: cdk.json's ``workerVcpus`` context, else 1."""
    try:
        context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
        return int(context.get("workerVcpus", 1))
    except (OSError, ValueError, TypeError):
        return 1


def measure_fit_times(replicates: int, engine: str, pin: bool, seed: int) -> FitTimes:
    """Fit ``replicates`` replicates with one local worker (pinned to core 0) and read their times."""
    pinned = pin and shutil.which("taskset") is not None
    with tempfile.TemporaryDirectory(prefix="stanfleet-cost-") as tmp_name:
        tmp = Path(tmp_name)
        store = tmp / "store"
        command = [
            *(["taskset", "-c", "0"] if pinned else []),
            *submit_command(),
            "--replicates",
            str(replicates),
            "--seed",
            str(seed),
            "--workers",
            "1",
            "--engine",
            engine,
            "--store",
            str(store),
            "--out",
            str(tmp / "out"),
            "--no-progress",
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if completed.returncode not in (0, 3):  # 3: miscalibrated, still a full set of fits
            raise SystemExit(
                f"the measuring run failed (exit {completed.returncode}):\n{completed.stderr[-2000:]}"
            )
        results = [json.loads(p.read_bytes()) for p in sorted(store.glob("ensembles/*/results/*.json"))]
    if len(results) != replicates:
        raise SystemExit(f"expected {replicates} results, found {len(results)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return FitTimes(
        seconds=[float(r["total_seconds"]) for r in results],
        sample_seconds=[float(r["sample_seconds"]) for r in results],
        failed=sum(r["status"] != "ok" for r in results),
        command_seconds=elapsed,
        command_cpu_seconds=cpu,
        pinned=pinned,
    )


def s3_requests(replicates: int, per_child: int, run_seconds: float) -> S3Requests:
    """S3 requests of a first submission with --wait, from the code's access pattern (CmdStanPy engine).

    Submitter (runtime.ensemble.prepare, runtime.executors.batch): a results listing, an input-pack listing, a
    HEAD for the spec, PUTs of the spec, the one input pack, the run record and the manifest; while
    waiting, a results listing per poll and a few claim GETs; at the end a listing plus a GET per result
    (the report and the cost estimate share one read). Trigger (runtime.aws.trigger): manifest and spec GET;
    claims, results and compile-marker listings; the lease taken and released, claim PUT and rewrite.
    Compile job (runtime.worker,
    runtime.fitting.shared_builds): spec GET, build GET (a miss), HEAD, build PUT, marker PUT. Each array child: spec, plan and build GET, one results listing and one
    input-pack listing, the pack's header and its blocks' byte range (two ranged GETs); per replicate
    the result PUT.
    """
    children = math.ceil(replicates / per_child)
    pages = max(1, math.ceil(replicates / LIST_PAGE))
    polls = math.ceil(run_seconds / POLL_SECONDS)
    claim_polls = 3
    return S3Requests(
        rows=[
            ("submitter: plan, publish, manifest", 2 + 4, 1),
            (f"submitter: waiting ({polls} polls of {POLL_SECONDS:.0f} s)", polls * pages, claim_polls),
            ("submitter: cost estimate + report", pages, replicates),
            ("trigger Lambda", 3 + 4, 2),
            ("compile job", 2, 3),
            (f"{children} array children", replicates + 2 * children, children * 5),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="An estimate, not a bill: see the module docstring and the printed assumptions.",
    )
    parser.add_argument(
        "--measure", type=int, default=40, metavar="N", help="replicates fitted to measure (default: 40)"
    )
    parser.add_argument(
        "--replicates", type=int, default=1000, metavar="R", help="ensemble size to cost (default: 1000)"
    )
    parser.add_argument(
        "--engine",
        default="cmdstanpy",
        help="engine of the measuring run (default: %(default)s, the worker image's)",
    )
    parser.add_argument(
        "--vcpus",
        type=float,
        default=default_vcpus(),
        help="vCPUs per fit job (default: cdk.json's, %(default)s)",
    )
    parser.add_argument(
        "--replicates-per-child",
        type=int,
        default=None,
        help="replicates per array child (default: what the submitter's --replicates-per-child auto picks "
        "for the measured fit time)",
    )
    parser.add_argument(
        "--overhead-seconds",
        type=float,
        default=30.0,
        help="per array child: container start and compiled-model fetch (default: %(default)s)",
    )
    parser.add_argument(
        "--compile-seconds",
        type=float,
        default=90.0,
        help="the one compile job (CmdStan build of the model) (default: %(default)s)",
    )
    parser.add_argument(
        "--spot-price",
        type=float,
        default=ASSUMED_SPOT_PRICE_PER_VCPU_HOUR,
        help="assumed spot USD per vCPU-hour (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=7, help="ensemble seed of the measuring run")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the measuring run to core 0 with taskset"
    )
    args = parser.parse_args(argv)
    if args.measure < 1 or args.replicates < 1 or (args.replicates_per_child or 1) < 1:
        parser.error("--measure, --replicates and --replicates-per-child must be positive")
    if args.engine == "cmdstanpy" and not cmdstan_available():
        parser.error(
            "CmdStan is not installed: `make cmdstan` and export CMDSTAN, or measure with --engine pystan"
        )

    started = time.perf_counter()
    times = measure_fit_times(args.measure, args.engine, not args.no_pin, args.seed)
    per_fit = times.mean
    if args.replicates_per_child is None:
        args.replicates_per_child = replicates_per_child(per_fit)
    children = math.ceil(args.replicates / args.replicates_per_child)

    fit_seconds = per_fit * args.replicates
    overhead_seconds = children * args.overhead_seconds + args.compile_seconds
    fits = estimate_cost(fit_seconds, args.vcpus, args.spot_price)
    overhead = estimate_cost(overhead_seconds, args.vcpus, args.spot_price)
    child_run_seconds = args.overhead_seconds + args.replicates_per_child * per_fit
    requests = s3_requests(
        args.replicates, args.replicates_per_child, args.compile_seconds + child_run_seconds
    )
    compute_usd = fits.usd + overhead.usd
    total_usd = compute_usd + requests.usd
    per_1000 = total_usd / args.replicates * 1000

    print(
        f"Estimated AWS cost of R = {args.replicates} fits of the bundled Poisson example (an estimate, not a bill)\n"
    )
    print("Measured worker time per fit")
    print(
        f"  {args.measure} replicates, --engine {args.engine}, 1 local worker"
        + (", pinned to core 0 (taskset -c 0)" if times.pinned else ", NOT pinned to one core")
        + f"; {times.failed} failed"
    )
    print("  each fit: 4 chains x (1000 warmup + 1000 sampling), run inside one job, sharing its vCPU(s)")
    seconds = sorted(times.seconds)
    print(
        f"  total_seconds per fit: mean {per_fit:.3f} s, median {statistics.median(seconds):.3f} s, "
        f"min {seconds[0]:.3f} s, max {seconds[-1]:.3f} s (sampling alone: mean "
        f"{statistics.fmean(times.sample_seconds):.3f} s)"
    )
    print(
        f"  whole measuring command: {times.command_seconds:.1f} s wall, {times.command_cpu_seconds:.1f} s CPU "
        "(imports, simulation, worker start, fits, report)"
    )

    print("\nAssumptions")
    print(f"  fit job vCPUs: {args.vcpus:g} (cdk.json workerVcpus); spot ${args.spot_price}/vCPU-hour")
    print(
        f"  {children} array children of {args.replicates_per_child} replicates, each + {args.overhead_seconds:g} s "
        f"(container start, compiled-model fetch); one compile job of {args.compile_seconds:g} s"
    )
    if args.engine != "cmdstanpy":
        print(f"  AWS fits with CmdStanPy by default; the per-fit time measured here is {args.engine}'s")

    print("\nCompute (vCPU-seconds x price, via runtime.ensemble.cost.estimate_cost)")
    print(
        f"  fits:      {fit_seconds:9,.0f} s x {args.vcpus:g} vCPU = {fits.vcpu_seconds:9,.0f} vCPU-s  ${fits.usd:.4f}"
    )
    print(
        f"  overhead:  {overhead_seconds:9,.0f} s x {args.vcpus:g} vCPU = {overhead.vcpu_seconds:9,.0f} vCPU-s  "
        f"${overhead.usd:.4f}"
    )
    low, high = ((fits.vcpu_seconds + overhead.vcpu_seconds) / 3600 * price for price in SPOT_RANGE)
    print(
        f"  compute total ${compute_usd:.4f}  (range ${low:.4f}-${high:.4f} at ${SPOT_RANGE[0]}-{SPOT_RANGE[1]}/vCPU-hour)"
    )

    print("\nS3 requests (counted from the code's access pattern, first submission with --wait)")
    for who, put_list, get_head in requests.rows:
        print(f"  {who:<44} PUT/LIST {put_list:6,}  GET/HEAD {get_head:6,}")
    print(
        f"  total PUT/LIST {requests.put_list:,} x ${S3_PUT_LIST_PER_1000}/1000 + GET/HEAD {requests.get_head:,} x "
        f"${S3_GET_PER_1000}/1000 = ${requests.usd:.4f}"
    )

    print("\nEstimate")
    print(f"  total: ${total_usd:.4f} for {args.replicates} fits = ${per_1000:.4f} per 1000 fits")
    range_low = (low + requests.usd) / args.replicates * 1000
    range_high = (high + requests.usd) / args.replicates * 1000
    print(f"  range over the spot price: ${range_low:.4f}-${range_high:.4f} per 1000 fits")
    print(
        f"  2018 post: ~${BASELINE_2018_USD_PER_1000:.2f} per 1000 fits -> this is "
        f"{per_1000 / BASELINE_2018_USD_PER_1000:.2%} of it ({BASELINE_2018_USD_PER_1000 / per_1000:,.0f}x cheaper)"
    )
    verdict = "meets" if per_1000 < GOAL_USD_PER_1000 else "MISSES"
    print(f"  goal: < ${GOAL_USD_PER_1000} per 1000 fits -> {verdict} it")
    budget_vcpu_seconds = (GOAL_USD_PER_1000 * args.replicates / 1000 - requests.usd) * 3600 / args.spot_price
    break_even = (budget_vcpu_seconds / args.vcpus - overhead_seconds) / args.replicates
    print(
        f"  break-even: the goal holds while a fit (sampling + scoring) takes under {break_even:.3f} s of one "
        f"vCPU\n  with these children, overheads and S3 requests (measured here with {args.engine}: {per_fit:.3f} s)"
    )

    print(
        "\nSensitivity (USD per 1000 fits at the assumed price, S3 included): replicates per child x overhead"
    )
    overheads = (10.0, 30.0, 60.0)
    print("  per child " + "".join(f"{f'{o:g} s':>10}" for o in overheads))
    for per_child in (10, 20, 50, 100):
        n_children = math.ceil(args.replicates / per_child)
        cells = []
        for o in overheads:
            vcpu_s = (fit_seconds + n_children * o + args.compile_seconds) * args.vcpus
            s3 = s3_requests(args.replicates, per_child, args.compile_seconds + o + per_child * per_fit).usd
            cells.append((vcpu_s / 3600 * args.spot_price + s3) / args.replicates * 1000)
        print(f"  {per_child:>9} " + "".join(f"{f'${c:.4f}':>10}" for c in cells))

    print(
        "\nLeft out (so the real bill is higher): EC2 instance boot and image pull before the first job, "
        "and idle time\n"
        "until Batch scales the compute environment back to 0 vCPUs (Batch bills nothing itself; EC2 bills\n"
        "the instance-seconds), spot interruptions and retried fits, CloudWatch Logs ingestion, the trigger\n"
        "Lambda invocation (~$0.0000002 + its GB-seconds), S3 storage (kilobytes per result), ECR storage,\n"
        "data transfer. Not left out: the S3 requests above."
    )
    print(f"\nbench wall time: {time.perf_counter() - started:.1f} s (cpu count here: {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
