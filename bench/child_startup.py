"""Measure an AWS Batch array child's fixed cost: what it spends before its first fit and after its last.

Everything runs against moto's server (a thread of this process; its Batch, without Docker, records
jobs and runs nothing). The bench deploys the stack's stand-ins (tests/runtime/helpers/batch_runner.py),
submits the bundled Poisson example with ``--backend aws --no-wait --engine cmdstanpy`` (default sampler
settings, ``--children`` x ``--fits`` replicates, ``--fits`` per child), hands the manifest upload's S3
event to the real trigger handler, and runs the jobs it submitted as their containers would: the
command of the job definition after the image's ENTRYPOINT, ``python -m runtime.worker --store
s3://BUCKET --ensemble-id ID --plan CLAIM`` (the compile job: ``--compile-only``), with the child's
environment (AWS_BATCH_JOB_ID, AWS_BATCH_JOB_ARRAY_INDEX, an empty STANFLEET_CACHE_DIR, the moto endpoint
and fake credentials), one process at a time, from a copy of runtime/ laid out as the image holds it.

Two layouts of that copy are measured:

- ``image``: sources only and PYTHONDONTWRITEBYTECODE=1, as container/Dockerfile has it today (the
  .dockerignore admits ``runtime/**/*.py``), so every child compiles the modules it imports;
- ``pyc``: the same after ``python -m compileall runtime`` (a candidate line for the Dockerfile).

Each layout's children run ``--runs`` times plain (the real entrypoint; the parent timestamps the
worker's ``replicate N: fitted (ok, S s)`` lines as they arrive, so a fit started S seconds before its
line) and ``--runs`` times under bench/child_probe.py (the same ``runtime.worker.main`` with timers
around its steps, for the breakdown). The results are deleted before each run, so every run fits the
same replicates. Printed: medians of the fixed cost before the first fit (from process spawn to the
first fit's start; container start is AWS's and not in it), of the first fit's excess over the later
ones, of the time between fits, and of the end (last fit to process exit: the last batch's PUT and the
interpreter's exit), then the breakdown of the probed runs (wall and CPU seconds per step: the CPU
column is the steadier one on a shared machine) and the compile job's. bench/aws_cost.py takes its
figures from :func:`measure`; bench/aws_calls.py reuses :func:`moto_server` and its request counter.

    .venv/bin/python bench/child_startup.py [--runs 5] [--children 3] [--fits 3]
        [--runtime-dir DIR] [--layouts image pyc]

``--runtime-dir`` measures another copy of the runtime package (a candidate change) in place of ./runtime.
Needs CmdStan (``export CMDSTAN=...``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moto.server import ThreadedMotoServer  # noqa: E402

from runtime.aws import trigger  # noqa: E402
from runtime.engines.choice import cmdstan_available  # noqa: E402
from runtime.store.keys import results_prefix  # noqa: E402
from runtime.submit import main as submit_main  # noqa: E402
from tests.runtime.helpers.batch_runner import (  # noqa: E402
    CREDENTIALS,
    BatchRunner,
    Child,
    deploy_fake_stack,
    manifest_events,
)
from tests.runtime.helpers.poisson_example import example_arguments  # noqa: E402

PROBE = ROOT / "bench" / "child_probe.py"
PROBE_PREFIX = "@probe "
FITTED = re.compile(r"replicate (\d+): fitted \((\w+), ([\d.]+) s\)")
LAYOUTS = ("image", "pyc")
CONTAINER_WORKDIR = "opt-stanfleet"
"""The copy's directory, as the image's WORKDIR /opt/stanfleet holds runtime/."""


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: how much else ran meanwhile."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


@dataclass(frozen=True)
class Event:
    """One timed call reported by the probe (monotonic seconds)."""

    name: str
    start: float
    end: float
    cpu: float
    detail: dict[str, Any]

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class ChildRun:
    """One child process: spawn and exit times, its fits (line time, seconds) and probe events."""

    layout: str
    probed: bool
    spawned: float
    exited: float = 0.0
    returncode: int = 0
    fits: list[tuple[float, float]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def first_fit_start(self) -> float:
        line_time, seconds = self.fits[0]
        return line_time - seconds

    @property
    def startup(self) -> float:
        """Spawn to the first fit's start: the fixed cost before any fit."""
        return self.first_fit_start - self.spawned

    @property
    def end(self) -> float:
        """The last fit's end to the process's exit."""
        return self.exited - self.fits[-1][0]

    @property
    def first_fit_excess(self) -> float:
        later = [seconds for _, seconds in self.fits[1:]]
        return self.fits[0][1] - statistics.median(later) if later else 0.0

    @property
    def gap_per_fit(self) -> float:
        """Worker time between fits (inputs, result held, log line), per fit after the first."""
        span = self.fits[-1][0] - self.first_fit_start
        return (span - sum(seconds for _, seconds in self.fits)) / max(1, len(self.fits) - 1)


@dataclass(frozen=True)
class LayoutSummary:
    """Medians over one layout's plain runs, and its probed runs' breakdown."""

    layout: str
    startup: float
    end: float
    first_fit_excess: float
    gap_per_fit: float
    fit_seconds: float
    startups: list[float]
    startup_cpu: float
    """Median CPU seconds before the first fit (probed runs: the process and its finished subprocesses)."""
    breakdown: list[Row]
    """Median own wall and CPU seconds per step before the first fit, in the order the child takes them."""
    end_breakdown: list[Row]

    @property
    def fixed(self) -> float:
        """Per child, ours: before the first fit, the first fit's excess, and the end."""
        return self.startup + self.first_fit_excess + self.end


@dataclass(frozen=True)
class StartupMeasurement:
    """What bench/aws_cost.py takes from this bench."""

    layouts: dict[str, LayoutSummary]
    compile_job_seconds: float
    compile_job_cpu: float
    compile_breakdown: list[Row]
    executable_bytes: int
    runs: int
    fits_per_child: int
    wall_seconds: float
    load: str
    """Load averages at the end of the measurement."""


class RequestCounter:
    """Counts the requests moto's server answers, by client and operation.

    A client is named by its user agent's app id (botocore's ``AWS_SDK_UA_APP_ID``, or
    ``Config(user_agent_appid=...)``); requests without one are not counted.
    """

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self._lock = threading.Lock()

    def wrap(self, app: Any) -> Any:
        """moto's WSGI app, counting each request before it is answered."""

        def counted(environ: dict[str, Any], start_response: Any) -> Any:
            client = re.search(r"\bapp/([\w.-]+)", environ.get("HTTP_USER_AGENT", ""))
            if client:
                with self._lock:
                    self.counts.setdefault(client.group(1), Counter())[operation(environ)] += 1
            return app(environ, start_response)

        return counted


S3_KEY_KINDS = (
    ("manifests/", "manifest"),
    ("claims/", "claim"),
    ("models/compiled/", "compile marker"),
    ("models/", "build"),
    ("/results/", "results"),
    ("/inputs/", "input packs"),
    ("/run.json", "run record"),
    ("/spec.json", "spec"),
)


def s3_key_kind(key: str) -> str:
    """What an S3 key (or listing prefix) of the store holds, for the request tables."""
    if key.startswith("claims/") and key.endswith(".lease"):
        return "lease"
    return next((kind for marker, kind in S3_KEY_KINDS if marker in key), f"other ({key})")


def operation(environ: dict[str, Any]) -> str:
    """The API operation of a request to moto's server.

    S3's by method and query, with the kind of key it touches (``GetObject results``); Batch's by path;
    others by their X-Amz-Target.
    """
    scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unknown"
    method = environ["REQUEST_METHOD"]
    if service == "s3":
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
        if method == "GET" and "list-type" in query:
            return f"ListObjectsV2 {s3_key_kind(query.get('prefix', [''])[0])}"
        if not key:  # a request on the bucket itself
            return f"{method} bucket ?{'&'.join(sorted(query))}"
        name = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
        return f"{name.get(method, method)} {s3_key_kind(key)}"
    if service == "batch":
        return "batch " + environ.get("PATH_INFO", "").rsplit("/", 1)[-1]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return f"{service} {target.rsplit('.', 1)[-1] or method}"


@contextlib.contextmanager
def moto_server(counter: RequestCounter | None = None) -> Iterator[str]:
    """moto's server on a free port with Batch not using Docker; this process's boto3 talks to it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    if counter is not None:
        wsgi = server._server
        assert wsgi is not None
        wsgi.app = counter.wrap(wsgi.app)  # werkzeug's server looks its app up per request
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=json.dumps({"batch": {"use_docker": False}}).encode()
    )
    urllib.request.urlopen(request).close()
    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.update({**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
    boto3.DEFAULT_SESSION = None
    try:
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        boto3.DEFAULT_SESSION = None
        trigger.s3_client.cache_clear()
        trigger.batch_client.cache_clear()


@dataclass(frozen=True)
class Prepared:
    """A submitted ensemble whose jobs are ready to run: the compile job, then the array children."""

    bucket: str
    ensemble_id: str
    compile_job: Child
    children: list[Child]


def prepare_ensemble(endpoint: str, tmp: Path, children: int, fits: int) -> Prepared:
    """Deploy the stand-ins, submit (--no-wait) and hand the manifest's event to the trigger handler."""
    stack = deploy_fake_stack("StanFleetStartup", bucket="stanfleet-startup-bench")
    os.environ.update(stack.trigger_environment())
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()
    output = io.StringIO()
    argv = [
        *example_arguments(),
        *("--engine", "cmdstanpy", "--backend", "aws", "--stack", stack.name),
        *("--replicates", str(children * fits), "--replicates-per-child", str(fits)),
        *("--no-wait", "--no-progress", "--out", str(tmp / "report")),
    ]
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = submit_main(argv)
    if code != 0:
        raise SystemExit(f"the submitter failed (exit {code}):\n{output.getvalue()}")
    found = re.search(r"ensemble ([0-9a-f]{20}):", output.getvalue())
    assert found, output.getvalue()
    (event,) = manifest_events(stack)
    (outcome,) = trigger.handler(event, None)["outcomes"]
    if outcome["status"] != "submitted":
        raise SystemExit(f"the trigger did not submit: {outcome}")
    runner = BatchRunner(
        boto3.client("batch"),
        environment={**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint},
        log_dir=tmp / "batch-logs",
    )
    compile_job, *array_children = runner.children(outcome["job_ids"])
    return Prepared(stack.bucket, found.group(1), compile_job, array_children)


def container_copy(source: Path, destination: Path, *, compiled: bool) -> Path:
    """runtime/ as the image holds it (its .py files only), optionally byte-compiled; the workdir."""
    workdir = destination / CONTAINER_WORKDIR
    shutil.copytree(source, workdir / "runtime", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(workdir / "runtime")], check=True)
    return workdir


def run_child(child: Child, workdir: Path, cache: Path, *, layout: str, probed: bool) -> ChildRun:
    """Run one child as its container would, timestamping its output lines as they arrive."""
    argv = list(child.argv)
    if probed:
        argv[1:3] = [str(PROBE)]  # "-m runtime.worker" -> the probe, which runs runtime.worker.main
    environment = {
        **os.environ,
        "PYTHONPATH": str(workdir),
        "STANFLEET_CACHE_DIR": str(cache),
        **child.environment,
    }
    if layout == "image":
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
    run = ChildRun(layout, probed, spawned=time.monotonic())
    environment["STANFLEET_PROBE_T0"] = repr(run.spawned)
    process = subprocess.Popen(
        argv, cwd=workdir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        arrived = time.monotonic()
        run.output.append(line)
        if line.startswith(PROBE_PREFIX):
            raw = json.loads(line[len(PROBE_PREFIX) :])
            run.events.append(
                Event(raw.pop("name"), raw.pop("start"), raw.pop("end"), raw.pop("cpu", 0.0), raw)
            )
        elif found := FITTED.search(line):
            run.fits.append((arrived, float(found.group(3))))
    run.returncode = process.wait()
    run.exited = time.monotonic()
    if run.returncode != 0 or (not run.fits and "--plan" in argv):
        raise SystemExit(f"{child.job_id} exited {run.returncode}:\n{''.join(run.output)[-3000:]}")
    return run


def delete_results(bucket: str, ensemble_id: str) -> None:
    """Remove every result object, so the next run fits the same replicates again."""
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=results_prefix(ensemble_id)
    ):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])


def label(event: Event) -> str:
    """A breakdown row's name: S3 requests by what they read."""
    if not event.name.startswith("S3 ") or event.name == "S3 client":
        return event.name
    key = str(event.detail.get("key", ""))
    kinds = (
        ("claims/", "plan (claim)"),
        ("models/", "compiled model"),
        ("/inputs/", "input pack"),
        ("/results/", "results"),
        ("/spec.json", "spec"),
    )
    what = next((kind for marker, kind in kinds if marker in key), "other")
    return f"{event.name} {what}"


Row = tuple[str, float, float]
"""A breakdown row: (step, wall seconds, CPU seconds)."""
UNTIMED = "untimed (argparse, signal set-up, Python between timed calls)"


def exclusive(events: list[Event]) -> list[tuple[Event, float, float]]:
    """Each event with its own wall and CPU time: less that of the events nested directly in it."""
    ordered = sorted(events, key=lambda e: (e.start, -e.end))
    own = {id(e): [e.seconds, e.cpu] for e in ordered}
    stack: list[Event] = []
    for event in ordered:
        while stack and stack[-1].end < event.end:
            stack.pop()
        if stack:
            own[id(stack[-1])][0] -= event.seconds
            own[id(stack[-1])][1] -= event.cpu
        stack.append(event)
    return [(event, own[id(event)][0], own[id(event)][1]) for event in ordered]


def breakdown(run: ChildRun, start: float, end: float, cpu: float | None = None) -> list[Row]:
    """Own wall and CPU seconds per step inside [start, end], and what no timer covered.

    ``cpu``: the process's CPU time over the interval, where known (else the untimed row has no CPU).
    """
    rows: dict[str, list[float]] = {}
    inside = [
        e for e in run.events if e.name != "main returned" and e.start >= start - 1e-3 and e.end <= end + 1e-3
    ]
    for event, wall, used in exclusive(inside):
        row = rows.setdefault(label(event), [0.0, 0.0])
        row[0] += wall
        row[1] += used
    timed_wall = sum(row[0] for row in rows.values())
    timed_cpu = sum(row[1] for row in rows.values())
    rows[UNTIMED] = [end - start - timed_wall, (cpu - timed_cpu) if cpu is not None else 0.0]
    return [(name, wall, used) for name, (wall, used) in rows.items()]


def median_rows(tables: list[list[Row]]) -> list[Row]:
    """Per step, the median over runs of its wall and CPU seconds (0 where a run lacks the step)."""
    names = list(dict.fromkeys(name for table in tables for name, _, _ in table))
    by_run = [{name: (wall, cpu) for name, wall, cpu in table} for table in tables]
    return [
        (
            name,
            statistics.median(run.get(name, (0.0, 0.0))[0] for run in by_run),
            statistics.median(run.get(name, (0.0, 0.0))[1] for run in by_run),
        )
        for name in names
    ]


def probed_breakdowns(runs: list[ChildRun]) -> tuple[list[Row], list[Row], float]:
    """Median rows before the first fit (from spawn) and after the last fit (to exit); median CPU before."""
    before, after, cpu_before = [], [], []
    for run in runs:
        fits = [e for e in run.events if e.name == "fit"]
        cpu = float(fits[0].detail["cpu_at_start"])
        cpu_before.append(cpu)
        before.append(breakdown(run, run.spawned, fits[0].start, cpu))
        after.append(breakdown(run, fits[-1].end, run.exited))
    return median_rows(before), median_rows(after), statistics.median(cpu_before)


def summarize(layout: str, plain: list[ChildRun], probed: list[ChildRun]) -> LayoutSummary:
    before, after, cpu_before = probed_breakdowns(probed)
    return LayoutSummary(
        layout=layout,
        startup=statistics.median(run.startup for run in plain),
        end=statistics.median(run.end for run in plain),
        first_fit_excess=statistics.median(run.first_fit_excess for run in plain),
        gap_per_fit=statistics.median(run.gap_per_fit for run in plain),
        fit_seconds=statistics.median(seconds for run in plain for _, seconds in run.fits[1:]),
        startups=sorted(run.startup for run in plain),
        startup_cpu=cpu_before,
        breakdown=before,
        end_breakdown=after,
    )


def measure(
    *,
    runs: int = 5,
    children: int = 3,
    fits: int = 3,
    runtime_dir: Path | None = None,
    layouts: Sequence[str] = LAYOUTS,
) -> StartupMeasurement:
    """Prepare an ensemble in moto, run its compile job, then ``runs`` plain and probed children per layout."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stanfleet-startup-") as tmp_name, moto_server() as endpoint:
        tmp = Path(tmp_name)
        prepared = prepare_ensemble(endpoint, tmp, children, fits)
        workdirs = {
            layout: container_copy(runtime_dir or ROOT / "runtime", tmp / layout, compiled=layout == "pyc")
            for layout in layouts
        }
        compile_run = run_child(
            prepared.compile_job, workdirs[layouts[0]], tmp / "cache-compile", layout=layouts[0], probed=True
        )
        collected: dict[tuple[str, bool], list[ChildRun]] = {}
        for index in range(runs):
            for layout in layouts:
                for probed in (False, True):
                    delete_results(prepared.bucket, prepared.ensemble_id)
                    child = prepared.children[index % len(prepared.children)]
                    cache = tmp / f"cache-{layout}-{probed}-{index}"
                    run = run_child(child, workdirs[layout], cache, layout=layout, probed=probed)
                    collected.setdefault((layout, probed), []).append(run)
    top_level = ("interpreter start", "import runtime.worker", "import boto3 (S3 store)", "main returned")
    compile_cpu = sum(e.cpu for e in compile_run.events if e.name in top_level)
    compile_rows = breakdown(compile_run, compile_run.spawned, compile_run.exited, compile_cpu)
    return StartupMeasurement(
        layouts={
            layout: summarize(layout, collected[(layout, False)], collected[(layout, True)])
            for layout in layouts
        },
        compile_job_seconds=compile_run.exited - compile_run.spawned,
        compile_job_cpu=compile_cpu,
        compile_breakdown=compile_rows,
        executable_bytes=max(
            (
                int(e.detail.get("bytes") or 0)
                for run in collected.get((layouts[0], True), [])
                for e in run.events
                if label(e) == "S3 GET compiled model"
            ),
            default=0,
        ),
        runs=runs,
        fits_per_child=fits,
        wall_seconds=time.monotonic() - started,
        load=load_average(),
    )


def print_rows(rows: list[Row], indent: str = "    ") -> None:
    """Steps with their wall and CPU seconds and shares of the total, under a header."""
    wall_total = sum(wall for _, wall, _ in rows) or 1.0
    cpu_total = sum(cpu for _, _, cpu in rows) or 1.0
    print(f"{indent}{'step':<62} {'wall':>8} {'share':>6} {'CPU':>8} {'share':>6}")
    for name, wall, cpu in rows:
        if abs(wall) >= 0.0005 or abs(cpu) >= 0.0005:
            print(
                f"{indent}{name:<62} {wall:7.3f}s {wall / wall_total:6.1%} {cpu:7.3f}s {cpu / cpu_total:6.1%}"
            )
    print(f"{indent}{'total':<62} {wall_total:7.3f}s {'':>6} {cpu_total:7.3f}s")


LAYOUT_TITLES = {
    "image": "runtime/ as sources, PYTHONDONTWRITEBYTECODE=1 (today's image)",
    "pyc": "runtime/ byte-compiled (python -m compileall runtime)",
}


def print_layout(summary: LayoutSummary) -> None:
    print(f"Layout {summary.layout!r}: {LAYOUT_TITLES[summary.layout]}")
    runs = ", ".join(f"{s:.2f}" for s in summary.startups)
    print(f"  spawn -> first fit starts:   {summary.startup:6.3f} s wall (median; runs {runs})")
    print(f"                               {summary.startup_cpu:6.3f} s CPU (median of the probed runs)")
    print(
        f"  first fit's excess:          {summary.first_fit_excess:+6.3f} s over the later fits' median "
        f"({summary.fit_seconds:.3f} s)"
    )
    print(f"  between fits:                {summary.gap_per_fit * 1000:6.1f} ms per fit")
    put = sum(wall for name, wall, _ in summary.end_breakdown if name.startswith("S3 PUT"))
    print(
        f"  last fit ends -> exit:       {summary.end:6.3f} s (probed: the last batch's PUT {put:.3f} s, then the "
        "interpreter's exit)"
    )
    print(f"  fixed cost per child, ours:  {summary.fixed:6.3f} s wall (start + first-fit excess + end)")
    print("  before the first fit, by step (probed runs, median own time of each step):")
    print_rows(summary.breakdown)
    print()


def print_report(measured: StartupMeasurement) -> None:
    print(
        "Fixed cost of an AWS Batch array child, measured against moto's server\n"
        f"({measured.runs} plain + {measured.runs} probed runs per layout, {measured.fits_per_child} fits per "
        "child, CmdStanPy, default sampler settings, one child process at a time)\n"
        "Container start (image pull, ECS task start, Batch placement) is AWS's and not in these figures.\n"
    )
    for summary in measured.layouts.values():
        print_layout(summary)
    print(
        f"Compile job (one probed run): {measured.compile_job_seconds:.1f} s from spawn to exit "
        f"({measured.compile_job_cpu:.1f} s CPU); the executable it publishes: {measured.executable_bytes / 1e6:.2f} MB"
    )
    print_rows(measured.compile_breakdown)
    print(
        f"\nbench wall time: {measured.wall_seconds:.1f} s (cpu count here: {os.cpu_count()}; load average at the "
        f"end {measured.load}: wall times stretch with the load, CPU times much less)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=int, default=5, help="plain and probed runs per layout (default: %(default)s)"
    )
    parser.add_argument(
        "--children", type=int, default=3, help="array children submitted (default: %(default)s)"
    )
    parser.add_argument("--fits", type=int, default=3, help="replicates per child (default: %(default)s)")
    parser.add_argument("--runtime-dir", type=Path, help="a runtime package to measure instead of ./runtime")
    parser.add_argument(
        "--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS), help="default: %(default)s"
    )
    args = parser.parse_args(argv)
    if min(args.runs, args.children, args.fits) < 1:
        parser.error("--runs, --children and --fits must be positive")
    if not cmdstan_available():
        parser.error("CmdStan is not installed: `make cmdstan` and export CMDSTAN")
    print_report(
        measure(
            runs=args.runs,
            children=args.children,
            fits=args.fits,
            runtime_dir=args.runtime_dir,
            layouts=args.layouts,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
