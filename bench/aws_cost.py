"""Estimate what R = 1000 fits of the bundled Poisson example cost on the deployed stack, all costs in.

An estimate under stated assumptions, not a bill. It

1. measures the worker's time per fit: N replicates (default 40) fitted by the real worker on one core
   (``taskset -c 0``, when available), ``python -m runtime.submit ... --workers 1 --engine cmdstanpy
   --store TMP`` (CmdStanPy is the worker image's engine), reading each result's ``total_seconds`` (fit +
   scoring; the 4 chains of a fit run in the one job, so on one vCPU they share it) and ``sample_seconds``;
2. measures an array child's fixed cost and the compile job with bench/child_startup.py: the worker
   entrypoint run as a Batch child against moto's server, from a copy of runtime/ laid out as the image
   has it. Ours: spawn to the first fit's start, the first fit's excess, last fit to exit (median of
   ``--startup-runs``). AWS's: the container's start, assumed ``--container-start-seconds`` per job;
3. lays out the run the submitter makes by default (``--wait``): a manifest each time the published
   inputs have doubled (for R = 1000: at 100, 300, 700 and 1000 replicates), each taken by one trigger
   Lambda invocation, which submits a compile job (its marker is not there yet: every compile job waits
   for capacity with the others, so each compiles) and array children over the replicates new in it,
   ``--replicates-per-child auto``: floor(180 s / sample_seconds) each (runtime.aws.manifest);
   ``--no-wait``: one manifest, then ``python -m runtime.collect``;
4. counts that run's S3 requests from the code's access pattern, results written in batches of 100 or
   30 s (runtime.fitting.worker_interface.ARRAY_CHILD_WINDOW); bench/aws_calls.py checks this model
   against the requests of a whole run in moto;
5. prices it: vCPU-seconds at the assumed spot price (0.02 USD per vCPU-hour; range 0.016-0.024), S3
   Standard requests ($0.005 per 1000 PUT/LIST, $0.0004 per 1000 GET/HEAD), the trigger Lambda (arm64,
   256 MB: $0.20 per million requests + $0.0000133334 per GB-second, ``--lambda-seconds`` billed per
   invocation).

Printed per 1000 fits: compute, per-child overhead, compile job(s), S3 PUT/LIST, S3 GET/HEAD, Lambda and
the total, next to the goal: $0.005 for the measured Poisson fit, $0.01 for a fit of 1 s (``--fit-seconds``,
default 1; each value adds a column).

    .venv/bin/python bench/aws_cost.py [--measure 40] [--replicates 1000] [--fit-seconds 1]
        [--container-start-seconds 10] [--startup-runs 5] [--no-wait]
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import child_startup  # noqa: E402  (bench/, this script's directory)

from runtime.aws.manifest import TARGET_CHILD_SECONDS, replicates_per_child  # noqa: E402
from runtime.engines.choice import cmdstan_available  # noqa: E402
from runtime.ensemble.cost import ASSUMED_SPOT_PRICE_PER_VCPU_HOUR  # noqa: E402
from runtime.ensemble.prepare import chunk_sizes  # noqa: E402
from runtime.executors.batch import POLL_SECONDS  # noqa: E402
from runtime.fitting.worker_interface import ARRAY_CHILD_WINDOW  # noqa: E402
from runtime.store.keys import INPUT_BLOCK_SIZE  # noqa: E402
from tests.runtime.helpers.poisson_example import submit_command  # noqa: E402

BASELINE_2018_USD_PER_1000 = 0.97
POISSON_GOAL = 0.005
"""USD per 1000 fits of the bundled example (issue 21)."""
STATED_GOALS = {1.0: 0.01}
"""USD per 1000 fits for a stated fit time (issue 21: a 1 s fit)."""
SPOT_RANGE = (0.016, 0.024)
S3_PUT_LIST_PER_1000 = 0.005
S3_GET_PER_1000 = 0.0004
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000133334
"""arm64 (the trigger's architecture, stacks/trigger.py), us-east-1."""
LAMBDA_MEMORY_GB = 256 / 1024
LIST_PAGE = 1000
CAPACITY_SECONDS = 120.0
"""Assumed wait for capacity (a spot instance launched and registered with ECS) before the first job starts;
only the submitter's polling grows with it here (the instance's own boot is left out, see the end)."""


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
class Scenario:
    """One column of the estimate: a fit time, measured or stated, and its goal."""

    title: str
    fit_seconds: float
    sample_seconds: float
    goal: float | None


@dataclass(frozen=True)
class Overheads:
    """Fixed costs per job, in seconds of the job's vCPUs."""

    container_start: float
    """AWS's: assumed per job (compile job and every array child)."""
    child_ours: float
    """Ours per array child: spawn to first fit, the first fit's excess, last fit to exit."""
    compile_job: float
    """The compile job from spawn to exit (imports, CmdStan build, upload)."""
    measured: child_startup.StartupMeasurement | None


@dataclass(frozen=True)
class Submission:
    """One manifest upload and what the trigger submits for it: array children over new replicates."""

    upto: int
    children: list[range]


@dataclass(frozen=True)
class RunLayout:
    """The jobs of a first submission of R replicates."""

    replicates: int
    per_child: int
    wait: bool
    submissions: list[Submission]
    packs: list[range]
    """The input packs' replicates (a pack per chunk of 1, 2, 4, ... up to 20 blocks)."""
    compile_per_upload: bool = False
    """False: one compile job, which later uploads' arrays wait for (the trigger since 2026-12-07);
    True: a compile job per manifest upload until a build is published (the trigger before)."""

    @property
    def children(self) -> list[range]:
        return [child for submission in self.submissions for child in submission.children]

    @property
    def compile_jobs(self) -> int:
        return len(self.submissions) if self.compile_per_upload else 1


@dataclass(frozen=True)
class Settings:
    """What the estimate is for, apart from the fit time: the run's shape and the prices."""

    replicates: int
    per_child: int | None
    """Replicates per array child; None: auto, as the submitter."""
    wait: bool
    vcpus: float
    spot_price: float
    lambda_seconds: float
    compile_per_upload: bool = False


@dataclass(frozen=True)
class S3Requests:
    """S3 requests of one run by who makes them, in the two price classes."""

    rows: list[tuple[str, int, int]]
    """(who, PUT+LIST requests, GET+HEAD requests)."""

    @property
    def put_list(self) -> int:
        return sum(row[1] for row in self.rows)

    @property
    def get_head(self) -> int:
        return sum(row[2] for row in self.rows)


@dataclass(frozen=True)
class Estimate:
    """USD of one scenario's run, by part."""

    scenario: Scenario
    layout: RunLayout
    requests: S3Requests
    parts: dict[str, float]
    vcpu_seconds: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def per_1000(self, usd: float) -> float:
        return usd / self.layout.replicates * 1000


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
            *("--replicates", str(replicates), "--seed", str(seed), "--workers", "1", "--engine", engine),
            *("--store", str(store), "--out", str(tmp / "out"), "--no-progress"),
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
        results = [
            result for path in sorted(store.glob("ensembles/*/results/*")) for result in read_results(path)
        ]
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


def read_results(path: Path) -> list[dict[str, Any]]:
    """The results one stored object holds: one result, or a batch of them, one per line."""
    payload = path.read_bytes()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in payload.splitlines()]
    return [json.loads(payload)]


def input_packs(replicates: int) -> list[range]:
    """The replicates of each input pack a first submission publishes (runtime.ensemble.prepare)."""
    packs, block = [], 0
    for size in chunk_sizes(math.ceil(replicates / INPUT_BLOCK_SIZE)):
        packs.append(range(block * INPUT_BLOCK_SIZE, min(replicates, (block + size) * INPUT_BLOCK_SIZE)))
        block += size
    return packs


def manifest_uploads(packs: list[range], replicates: int, wait: bool) -> list[int]:
    """How far each manifest the submitter uploads reaches (runtime.executors.batch.BatchExecutor.run).

    With --wait, one whenever the published replicates have doubled since the last upload, and one at
    the end if the last did not cover them all; without, one once everything is published.
    """
    if not wait:
        return [replicates]
    uploads: list[int] = []
    ready = covered = 0
    for pack in packs:
        ready += len(pack)
        if ready >= 2 * covered:
            uploads.append(pack.stop)
            covered = ready
    if covered < ready:
        uploads.append(replicates)
    return uploads


def run_layout(replicates: int, per_child: int, wait: bool, compile_per_upload: bool = False) -> RunLayout:
    """Manifests and array children of a first submission (each trigger takes what is new in its manifest)."""
    packs = input_packs(replicates)
    submissions, start = [], 0
    for upto in manifest_uploads(packs, replicates, wait):
        children = [range(first, min(upto, first + per_child)) for first in range(start, upto, per_child)]
        submissions.append(Submission(upto, children))
        start = upto
    return RunLayout(replicates, per_child, wait, submissions, packs, compile_per_upload)


def results_per_object(fit_seconds: float) -> int:
    """Results in one batch object of an array child: the window's count, or what 30 s of fits hold."""
    window = ARRAY_CHILD_WINDOW
    return max(1, min(window.max_results, math.floor(window.max_seconds / fit_seconds) + 1))


def result_objects(child: range, fit_seconds: float) -> int:
    return math.ceil(len(child) / results_per_object(fit_seconds))


def packs_touched(child: range, packs: list[range]) -> int:
    return sum(1 for pack in packs if pack.start < child.stop and child.start < pack.stop)


def s3_requests(layout: RunLayout, fit_seconds: float, wait_seconds: float) -> S3Requests:
    """S3 requests of a first submission (CmdStanPy), from the code's access pattern.

    Submitter: lists results and input packs, HEADs the two specs, PUTs the specs, each input pack, the
    run record and each manifest; with --wait, GETs each upload's claim twice (before and after the
    trigger wrote it), lists the results once per poll, and reads every result object for the report.
    Without, ``python -m runtime.collect`` later reads the manifest, spec and run record, lists the
    results and reads every result object. Trigger, per manifest: GETs the manifest, the spec and every
    earlier claim; lists the claims, the results and the compile marker; PUTs the lease and releases
    it, the claim and its rewrite (a later upload: one more PUT and a GET, taking over the released
    lease). Compile job: GETs the spec and the build (a miss), HEADs the build, PUTs it and the marker.
    Array child: GETs its plan, the spec and the build, lists results and input packs, reads a header
    and a byte range per input pack it touches, and PUTs one object per batch window.
    """
    objects = sum(result_objects(child, fit_seconds) for child in layout.children)
    pages = max(1, math.ceil(objects / LIST_PAGE))
    manifests = len(layout.submissions)
    packs = len(layout.packs)
    polls = 1 + math.floor(wait_seconds / POLL_SECONDS)
    rows = [("submitter: plan and publish", 2 + 2 + packs + 1 + manifests, 2)]
    if layout.wait:
        rows.append(
            (f"submitter: waiting ({polls} polls of {POLL_SECONDS:.0f} s)", polls * pages, 2 * manifests)
        )
        rows.append(("submitter: the report", pages, objects))
    else:
        rows.append(("python -m runtime.collect", pages, 3 + objects))
    lease_takeovers = manifests - 1
    rows.append(
        (
            f"trigger Lambda ({manifests} invocations)",
            4 * manifests + lease_takeovers + 3 * manifests,
            2 * manifests + manifests * (manifests - 1) // 2 + lease_takeovers,
        )
    )
    rows.append((f"compile jobs ({layout.compile_jobs})", 2 * layout.compile_jobs, 3 * layout.compile_jobs))
    children = layout.children
    rows.append(
        (
            f"array children ({len(children)}; {objects} result objects)",
            2 * len(children) + objects,
            sum(3 + 2 * packs_touched(child, layout.packs) for child in children),
        )
    )
    return S3Requests(rows)


def wait_seconds(layout: RunLayout, overheads: Overheads, fit_seconds: float) -> float:
    """How long the submitter polls: capacity, the compile job, then the longest child."""
    longest = max(len(child) for child in layout.children)
    return (
        CAPACITY_SECONDS
        + 2 * overheads.container_start
        + overheads.compile_job
        + overheads.child_ours
        + longest * fit_seconds
    )


def estimate(scenario: Scenario, settings: Settings, overheads: Overheads) -> Estimate:
    """The run's cost by part, for one scenario's fit time."""
    per_child = settings.per_child or replicates_per_child(scenario.sample_seconds)
    layout = run_layout(settings.replicates, per_child, settings.wait, settings.compile_per_upload)
    vcpus = settings.vcpus
    vcpu_seconds = {
        "compute": settings.replicates * scenario.fit_seconds * vcpus,
        "per-child overhead": len(layout.children)
        * (overheads.container_start + overheads.child_ours)
        * vcpus,
        "compile job": layout.compile_jobs * (overheads.container_start + overheads.compile_job) * vcpus,
    }
    waiting = wait_seconds(layout, overheads, scenario.fit_seconds)
    requests = s3_requests(layout, scenario.fit_seconds, waiting)
    invocations = len(layout.submissions)
    parts = {name: seconds / 3600 * settings.spot_price for name, seconds in vcpu_seconds.items()}
    parts["S3 PUT/LIST"] = requests.put_list / 1000 * S3_PUT_LIST_PER_1000
    parts["S3 GET/HEAD"] = requests.get_head / 1000 * S3_GET_PER_1000
    billed = LAMBDA_MEMORY_GB * settings.lambda_seconds * LAMBDA_PER_GB_SECOND
    parts["Lambda"] = invocations * (LAMBDA_PER_REQUEST + billed)
    return Estimate(scenario, layout, requests, parts, vcpu_seconds)


def measure_overheads(args: argparse.Namespace) -> Overheads:
    """The child's and the compile job's fixed costs: measured in moto unless both are given."""
    measured = None
    child, compile_job = args.child_overhead_seconds, args.compile_seconds
    if child is None or compile_job is None:
        measured = child_startup.measure(runs=args.startup_runs, layouts=("image",))
        image = measured.layouts["image"]
        child = image.fixed if child is None else child
        compile_job = measured.compile_job_seconds if compile_job is None else compile_job
    return Overheads(args.container_start_seconds, child, compile_job, measured)


def print_fit_times(times: FitTimes, args: argparse.Namespace) -> None:
    print("Measured worker time per fit (Poisson)")
    print(
        f"  {args.measure} replicates, --engine {args.engine}, 1 local worker"
        + (", pinned to core 0 (taskset -c 0)" if times.pinned else ", NOT pinned to one core")
        + f"; {times.failed} failed; 4 chains x (1000 warmup + 1000 sampling) in one job on one vCPU"
    )
    seconds = sorted(times.seconds)
    print(
        f"  total_seconds per fit: mean {times.mean:.3f} s, median {statistics.median(seconds):.3f} s, "
        f"min {seconds[0]:.3f} s, max {seconds[-1]:.3f} s (sampling alone: mean "
        f"{statistics.fmean(times.sample_seconds):.3f} s)"
    )
    print(
        f"  whole measuring command: {times.command_seconds:.1f} s wall, {times.command_cpu_seconds:.1f} s CPU\n"
    )


def print_overheads(overheads: Overheads) -> None:
    print("Fixed costs per job (seconds of the job's vCPUs)")
    measured = overheads.measured
    if measured is not None:
        image = measured.layouts["image"]
        print(
            f"  array child, ours: {overheads.child_ours:.2f} s, measured (bench/child_startup.py, median of "
            f"{measured.runs} children run as Batch runs them, against moto's server, from runtime/ laid out "
            "as the image has it):"
        )
        print(
            f"    spawn -> first fit {image.startup:.2f} s ({image.startup_cpu:.2f} s CPU), first fit's excess "
            f"{image.first_fit_excess:+.2f} s, last fit -> exit {image.end:.2f} s; before the first fit:"
        )
        for name, wall, _ in sorted(image.breakdown, key=lambda row: -row[1])[:6]:
            print(f"      {name:<58} {wall:6.3f} s")
        print(
            f"  compile job: {overheads.compile_job:.1f} s ({measured.compile_job_cpu:.1f} s CPU), measured the "
            f"same way (spawn to exit: imports, CmdStan build, {measured.executable_bytes / 1e6:.1f} MB upload)"
        )
    else:
        print(
            f"  array child, ours: {overheads.child_ours:.2f} s; compile job: {overheads.compile_job:.1f} s (given)"
        )
    print(
        f"  container start, AWS's: {overheads.container_start:g} s per job, assumed: the image is cached on the "
        "instance (ECS's default pull\n    behaviour still asks the registry for the manifest), container "
        "create and start, and the job's vCPU idle\n    while Batch places the next child; the image's first "
        "pull on a new instance is left out (below)\n"
    )


def print_layouts(estimates: list[Estimate]) -> None:
    print("The run (first submission; the submitter's default --wait unless --no-wait)")
    for e in estimates:
        layout = e.layout
        sizes = ", ".join(str(len(child)) for child in layout.children)
        uploads = ", ".join(str(s.upto) for s in layout.submissions)
        print(
            f"  {e.scenario.title}: {layout.per_child} replicates per child "
            f"(auto: {TARGET_CHILD_SECONDS:.0f} s / {e.scenario.sample_seconds:.3f} s sampling); manifests up to "
            f"{uploads};\n    {len(layout.children)} array children ({sizes}); {layout.compile_jobs} compile "
            f"job(s); {results_per_object(e.scenario.fit_seconds)} results per object"
        )
    print()


def print_requests(estimates: list[Estimate]) -> None:
    print("S3 requests (the code's access pattern; bench/aws_calls.py checks it against a whole run in moto)")
    for e in estimates:
        print(f"  {e.scenario.title}")
        for who, put_list, get_head in e.requests.rows:
            print(f"    {who:<52} PUT/LIST {put_list:5,}  GET/HEAD {get_head:5,}")
        print(
            f"    {'total':<52} PUT/LIST {e.requests.put_list:5,}  GET/HEAD {e.requests.get_head:5,}  "
            f"(PUTs of results per 1000 fits: "
            f"{sum(result_objects(c, e.scenario.fit_seconds) for c in e.layout.children) / e.layout.replicates * 1000:.0f})"
        )
    print()


def print_table(estimates: list[Estimate], vcpus: float) -> None:
    print(f"USD per 1000 fits (R = {estimates[0].layout.replicates}, {vcpus:g} vCPU per job)")
    width = 30
    print(f"  {'':<22}" + "".join(f"{e.scenario.title:>{width}}" for e in estimates))
    for name in estimates[0].parts:
        cells = []
        for e in estimates:
            seconds = e.vcpu_seconds.get(name)
            detail = f" ({seconds:,.0f} vCPU-s)" if seconds is not None else ""
            cells.append(f"${e.per_1000(e.parts[name]):.5f}{detail}")
        print(f"  {name:<22}" + "".join(f"{cell:>{width}}" for cell in cells))
    print(f"  {'total':<22}" + "".join(f"{f'${e.per_1000(e.total):.5f}':>{width}}" for e in estimates))
    goals = [f"<= ${e.scenario.goal}" if e.scenario.goal is not None else "-" for e in estimates]
    print(f"  {'goal':<22}" + "".join(f"{goal:>{width}}" for goal in goals))
    verdicts = [
        "-"
        if e.scenario.goal is None
        else ("meets it" if e.per_1000(e.total) <= e.scenario.goal else "MISSES it")
        for e in estimates
    ]
    print(f"  {'':<22}" + "".join(f"{v:>{width}}" for v in verdicts))


def print_spot_range(estimates: list[Estimate], spot_price: float) -> None:
    for e in estimates:
        compute = sum(e.parts[name] for name in e.vcpu_seconds)
        rest = e.total - compute
        low, high = (e.per_1000(compute / spot_price * price + rest) for price in SPOT_RANGE)
        print(
            f"  {e.scenario.title}: ${low:.5f}-${high:.5f} per 1000 fits at ${SPOT_RANGE[0]}-{SPOT_RANGE[1]}"
            f"/vCPU-hour; {BASELINE_2018_USD_PER_1000 / e.per_1000(e.total):,.0f}x cheaper than the 2018 post's "
            f"~${BASELINE_2018_USD_PER_1000}"
        )


def break_even(goal: float, settings: Settings, overheads: Overheads) -> float:
    """The longest fit (seconds on one vCPU) whose run still costs at most ``goal`` per 1000 fits."""

    def cost(fit_seconds: float) -> float:
        found = estimate(Scenario("break-even", fit_seconds, fit_seconds, goal), settings, overheads)
        return found.per_1000(found.total)

    low, high = 0.001, 60.0
    if cost(low) > goal:
        return 0.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if cost(middle) <= goal else (low, middle)
    return low


def print_break_even(estimates: list[Estimate], settings: Settings, overheads: Overheads) -> None:
    for goal in sorted({e.scenario.goal for e in estimates if e.scenario.goal is not None}):
        seconds = break_even(goal, settings, overheads)
        print(
            f"  break-even: <= ${goal} per 1000 fits holds for a fit (sampling + scoring) of up to {seconds:.2f} s "
            "of one vCPU, with these overheads"
        )


def print_what_if(estimates: list[Estimate], settings: Settings, overheads: Overheads) -> None:
    """The run's shape: a compile job per upload (the trigger before), and one manifest (--no-wait)."""
    changes: dict[str, dict[str, bool]] = {
        "a compile job per manifest upload (the trigger before 2026-12-07)": {"compile_per_upload": True}
    }
    if settings.wait:
        changes["one manifest upload (--no-wait, then python -m runtime.collect)"] = {"wait": False}
    print("\nThe run's shape: USD per 1000 fits if ...")
    for title, change in changes.items():
        cells = []
        for e in estimates:
            other = estimate(e.scenario, replace(settings, **change), overheads)
            saved = e.per_1000(e.total) - other.per_1000(other.total)
            sign = "-" if saved >= 0 else "+"
            cells.append(f"${other.per_1000(other.total):.5f} ({sign}${abs(saved):.5f})")
        print(f"  {title}\n  {'':<22}" + "".join(f"{cell:>30}" for cell in cells))


def print_sensitivity(estimates: list[Estimate], settings: Settings, overheads: Overheads) -> None:
    starts = (5.0, 10.0, 30.0, 60.0)
    print("\nSensitivity: USD per 1000 fits against the assumed container start per job")
    print(f"  {'':<30}" + "".join(f"{f'{s:g} s':>10}" for s in starts))
    for e in estimates:
        cells = []
        for start in starts:
            varied = replace(overheads, container_start=start, measured=None)
            other = estimate(e.scenario, settings, varied)
            cells.append(f"${other.per_1000(other.total):.5f}")
        print(f"  {e.scenario.title:<30}" + "".join(f"{c:>10}" for c in cells))


def print_left_out() -> None:
    print(
        "\nLeft out (the real bill is higher): each new instance's boot and its first pull of the worker image\n"
        "(CmdStan and a C++ toolchain: about a gigabyte) before its first job, and its idle time until Batch\n"
        "scales the compute environment back to 0 vCPUs; EC2 bills these instance-seconds, shared by every\n"
        "job the instance runs meanwhile. Also spot interruptions and retried fits, CloudWatch Logs ingestion,\n"
        "S3 storage (kilobytes per result), ECR storage. No data transfer: S3 is reached through the VPC's\n"
        "gateway endpoint."
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
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
        "--fit-seconds",
        type=float,
        nargs="*",
        default=[1.0],
        metavar="S",
        help="also cost a model whose fit takes S seconds on one vCPU (default: 1; none: only the measured fit)",
    )
    parser.add_argument(
        "--engine", default="cmdstanpy", help="engine of the measuring run (default: %(default)s)"
    )
    parser.add_argument(
        "--vcpus",
        type=float,
        default=default_vcpus(),
        help="vCPUs per job (default: cdk.json's, %(default)s)",
    )
    parser.add_argument(
        "--replicates-per-child",
        type=int,
        default=None,
        help="replicates per array child (default: auto, as the submitter)",
    )
    parser.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the submission's --wait (default: %(default)s)",
    )
    parser.add_argument(
        "--container-start-seconds",
        type=float,
        default=10.0,
        help="AWS's part of each job's fixed cost (default: %(default)s)",
    )
    parser.add_argument(
        "--child-overhead-seconds", type=float, help="our fixed cost per array child (default: measured)"
    )
    parser.add_argument(
        "--compile-seconds", type=float, help="the compile job, spawn to exit (default: measured)"
    )
    parser.add_argument(
        "--startup-runs",
        type=int,
        default=5,
        help="children run to measure the fixed cost (default: %(default)s)",
    )
    parser.add_argument(
        "--lambda-seconds",
        type=float,
        default=1.0,
        help="billed seconds per trigger invocation (default: %(default)s)",
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
    if any(s <= 0 for s in args.fit_seconds):
        parser.error("--fit-seconds must be positive")
    if args.engine == "cmdstanpy" and not cmdstan_available():
        parser.error(
            "CmdStan is not installed: `make cmdstan` and export CMDSTAN, or measure with --engine pystan"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    load_at_start = child_startup.load_average()
    times = measure_fit_times(args.measure, args.engine, not args.no_pin, args.seed)
    overheads = measure_overheads(args)
    sample = statistics.fmean(times.sample_seconds)
    scenarios = [Scenario(f"Poisson, {times.mean:.3f} s/fit measured", times.mean, sample, POISSON_GOAL)]
    scenarios += [Scenario(f"{s:g} s/fit stated", s, s, STATED_GOALS.get(s)) for s in args.fit_seconds]
    settings = Settings(
        args.replicates,
        args.replicates_per_child,
        args.wait,
        args.vcpus,
        args.spot_price,
        args.lambda_seconds,
    )
    estimates = [estimate(scenario, settings, overheads) for scenario in scenarios]

    print(f"Estimated AWS cost of R = {args.replicates} fits, all costs in (an estimate, not a bill)\n")
    print_fit_times(times, args)
    print_overheads(overheads)
    print_layouts(estimates)
    print_requests(estimates)
    print_table(estimates, args.vcpus)
    print(
        f"  (spot ${args.spot_price}/vCPU-hour; Lambda: {args.lambda_seconds:g} s billed per invocation at "
        f"{LAMBDA_MEMORY_GB * 1024:.0f} MB arm64)"
    )
    print_spot_range(estimates, args.spot_price)
    print_break_even(estimates, settings, overheads)
    print_what_if(estimates, settings, overheads)
    print_sensitivity(estimates, settings, overheads)
    print_left_out()
    print(
        f"\nbench wall time: {time.perf_counter() - started:.1f} s (cpu count here: {os.cpu_count()}; load average "
        f"{load_at_start} at the start, {child_startup.load_average()} at the end)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
