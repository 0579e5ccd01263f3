"""Count the AWS API calls of the AWS path: submitter and trigger for R = 10, 1000, 10,000, then a whole run.

Part 1 runs in this process under moto (no AWS account, no fits): for each R a fresh mocked account
gets what the path needs (a versioned bucket, a Batch compute environment, queue and the fit and
compile job definitions, and the four CloudFormation stack outputs the submitter reads, served by the
bench because moto's CloudFormation needs a package the dev requirements lack). Then

1. the submitter runs its AWS path, ``runtime.submit.main([... --backend aws --no-wait])`` on the
   bundled Poisson example with PyStan: it simulates the R datasets locally (fixed_param), publishes
   the specs, the input packs (one per chunk) and the run record, lists existing results and uploads
   one manifest, and returns;
2. the trigger Lambda's ``runtime.trigger.handler`` gets the S3 event of that manifest upload (key
   and versionId) and submits the compile job and the array job(s).

Every botocore API call is counted by operation (``BaseClient._make_api_call`` is wrapped), separately
for the submitter and the handler; the bench's own set-up calls are not counted. A second pass per R
(``--prefill``, default 0.5) is a resubmission of the same ensemble with that fraction of results
already in the bucket, written as workers write them (100 results per object), which shows the
listing pages growing with the number of result objects.

Part 2 (``--fit-replicates``, default 1000; 0 skips it) is a whole first submission with fits, as a user
runs it: ``runtime.submit.main([... --backend aws --wait])`` (the default) with CmdStanPy and
``--replicates-per-child auto`` against moto's server (a thread here), the real trigger handler taking
each manifest upload's S3 event (moto delivers it to an SQS queue), and a Batch stand-in running each
submitted job as its container would (``python -m runtime.worker ...``, tests/runtime/helpers/
batch_runner.py), up to ``--slots`` job processes at a time. Every request moto's server answers is
counted by client (submitter, lambda, compile job, array child: named by botocore's user-agent app id)
and operation, with the kind of S3 key it touches. Printed: the table, S3 requests by price class, PUTs
per 1000 fits, and bench/aws_cost.py's request model for the same layout next to the counts.

    .venv/bin/python bench/aws_calls.py [--replicates 10 1000 10000] [--prefill 0.5] [--fit-replicates 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import botocore.client
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aws_cost  # noqa: E402  (bench/, this script's directory)
from aws_cost import S3_GET_PER_1000, S3_PUT_LIST_PER_1000  # noqa: E402
from child_startup import RequestCounter, load_average, moto_server  # noqa: E402
from moto import mock_aws  # noqa: E402

from runtime import submit  # noqa: E402
from runtime.aws import trigger  # noqa: E402
from runtime.engines.choice import cmdstan_available, get_engine  # noqa: E402
from runtime.ensemble.prepare import MAX_CHUNK_BLOCKS, chunk_sizes  # noqa: E402
from runtime.executors import batch as batch_executor  # noqa: E402
from runtime.fitting.worker_interface import ARRAY_CHILD_WINDOW  # noqa: E402
from runtime.pipeline.run import DEFAULT_REPLICATES_PER_CHILD  # noqa: E402
from runtime.store.keys import INPUT_BLOCK_SIZE, MANIFESTS, manifest_key, result_batch_key  # noqa: E402
from tests.runtime.helpers.batch_runner import (  # noqa: E402
    CREDENTIALS,
    BatchRunner,
    Child,
    FakeStack,
    create_fake_batch,
    create_versioned_bucket,
    deploy_fake_stack,
    manifest_events,
    stack_outputs,
)
from tests.runtime.helpers.poisson_example import example_arguments  # noqa: E402

EXAMPLE = ROOT / "examples" / "poisson"
MODEL = EXAMPLE / "fit_data.stan"
GENERATOR = EXAMPLE / "generative_ensemble.stan"
STACK = "StanFleet"
BUCKET = "stanfleet-bench-bucket"
REGION = "us-east-1"
LIST_PAGE = 1000
"""Keys per ListObjectsV2 page (S3's maximum and default)."""


class CallCounter:
    """Counts botocore API calls by operation name into the phase that is current (None: not counted)."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.counts: dict[str, Counter[str]] = {}
        self.canned: dict[str, dict[str, Any]] = {}
        """Responses served by the bench instead of moto, by operation name (still counted)."""
        self._original = botocore.client.BaseClient._make_api_call

    def __enter__(self) -> CallCounter:
        counter = self
        original = self._original

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if counter.phase is not None:
                counter.counts.setdefault(counter.phase, Counter())[operation_name] += 1
            if operation_name in counter.canned:
                return json.loads(json.dumps(counter.canned[operation_name]))
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original

    @contextlib.contextmanager
    def counting(self, phase: str) -> Iterator[Counter[str]]:
        """Count the calls made inside the block under ``phase``."""
        self.counts[phase] = Counter()
        self.phase = phase
        try:
            yield self.counts[phase]
        finally:
            self.phase = None


@dataclass
class Row:
    """One bench row: a scenario at one R."""

    scenario: str
    replicates: int
    existing_results: int
    submitter: Counter[str] = field(default_factory=Counter)
    handler: Counter[str] = field(default_factory=Counter)
    submit_seconds: float = 0.0
    handler_seconds: float = 0.0
    outcome: str = ""


def fake_credentials() -> None:
    """Moto needs credentials and a region; never real ones."""
    os.environ.update({**CREDENTIALS, "AWS_SECURITY_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION})
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)


def deploy_mock_stack(counter: CallCounter) -> None:
    """What the stack would hold: bucket, Batch queue and job definitions, and the CloudFormation outputs.

    Moto's CloudFormation needs ``openapi-spec-validator`` (moto's cloudformation extra), which the
    dev requirements do not install, so DescribeStacks is answered by the bench with the four outputs
    (it is still counted as one API call). Also sets the trigger Lambda's environment.
    """
    create_versioned_bucket(BUCKET, region=REGION)
    batch = create_fake_batch(STACK, bucket=BUCKET, region=REGION)
    outputs = stack_outputs(BUCKET, batch)
    counter.canned["DescribeStacks"] = {
        "Stacks": [
            {
                "StackName": STACK,
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
            }
        ]
    }
    os.environ.update(batch.trigger_environment())
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()


def submit_argv(replicates: int, per_child: int) -> list[str]:
    return [
        *example_arguments(str(MODEL), str(GENERATOR), str(EXAMPLE / "data.json")),
        "--replicates",
        str(replicates),
        "--engine",
        "pystan",
        "--backend",
        "aws",
        "--stack",
        STACK,
        "--region",
        REGION,
        "--replicates-per-child",
        str(per_child),
        "--no-wait",
        "--no-progress",
    ]


def run_submitter(counter: CallCounter, row: Row, per_child: int) -> str:
    """Run the submitter's AWS path in-process; return the ensemble id it uploaded a manifest for."""
    output = io.StringIO()
    started = time.perf_counter()
    with (
        counter.counting(f"submit-{row.scenario}-{row.replicates}") as calls,
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
    ):
        code = submit.main(submit_argv(row.replicates, per_child))
    row.submit_seconds = time.perf_counter() - started
    row.submitter = calls
    if code != 0:
        raise SystemExit(f"the submitter failed (exit {code}):\n{output.getvalue()}")
    manifests = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=MANIFESTS)["Contents"]
    return str(manifests[0]["Key"]).removeprefix(MANIFESTS).removesuffix(".json")


def run_handler(counter: CallCounter, row: Row, ensemble_id: str) -> None:
    """Call the trigger handler on the S3 event of the latest manifest upload."""
    key = manifest_key(ensemble_id)
    version = boto3.client("s3").head_object(Bucket=BUCKET, Key=key)["VersionId"]
    event = {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "versionId": version}}}]}
    started = time.perf_counter()
    with counter.counting(f"handler-{row.scenario}-{row.replicates}") as calls:
        outcome = trigger.handler(event, None)["outcomes"][0]
    row.handler_seconds = time.perf_counter() - started
    row.handler = calls
    if outcome["status"] != "submitted":
        raise SystemExit(f"the handler did not submit: {outcome}")
    row.outcome = f"{len(outcome['job_ids'])} jobs"


def prefill_results(ensemble_id: str, count: int) -> None:
    """Write placeholder results for replicates 0..count-1 as a worker would: one object per batch window.

    Only their keys are read here. A Batch child writes at most ARRAY_CHILD_WINDOW.max_results results
    per object (fast fits fill that before its 30 s pass), so these are full windows.
    """
    s3 = boto3.client("s3")
    size = ARRAY_CHILD_WINDOW.max_results
    for first in range(0, count, size):
        replicates = range(first, min(count, first + size))
        s3.put_object(Bucket=BUCKET, Key=result_batch_key(ensemble_id, replicates, "bench"), Body=b"{}")


def result_objects(existing: int) -> int:
    """Result objects that prefill_results writes for ``existing`` results."""
    return math.ceil(existing / ARRAY_CHILD_WINDOW.max_results)


def measure(replicates: int, per_child: int, prefill: float, counter: CallCounter) -> list[Row]:
    """A first submission of R replicates, then (with prefill) a resubmission with some results present."""
    rows = []
    with mock_aws(config={"batch": {"use_docker": False}}):
        deploy_mock_stack(counter)
        first = Row("first", replicates, 0)
        ensemble_id = run_submitter(counter, first, per_child)
        run_handler(counter, first, ensemble_id)
        rows.append(first)
        existing = math.floor(replicates * prefill)
        if 0 < existing < replicates:
            prefill_results(ensemble_id, existing)
            again = Row("resubmit", replicates, existing)
            run_submitter(counter, again, per_child)
            run_handler(counter, again, ensemble_id)
            rows.append(again)
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()
    return rows


def describe(calls: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(calls.items())) + f" (total {sum(calls.values())})"


def expected_growth(replicates: int, existing: int, per_child: int) -> dict[str, int]:
    """What the code says the R-dependent counts should be, to check the measured table against."""
    missing = replicates - existing
    pages = max(1, math.ceil(result_objects(existing) / LIST_PAGE))
    children = math.ceil(missing / per_child)
    resubmission = existing > 0
    # a first submission simulates every block, publishing one pack per chunk of 1, 2, 4, ... blocks
    packs = 0 if resubmission else len(list(chunk_sizes(math.ceil(replicates / INPUT_BLOCK_SIZE))))
    return {
        # results (plan_ensemble), input packs (EnsembleInputs), and on a resubmission the input packs
        # again to read the first missing replicate's inputs (EnsembleInputs.first_inputs)
        "submitter ListObjectsV2": pages + 1 + resubmission,
        "submitter HeadObject": 2,  # is the dataset spec there? the ensemble spec?
        # first: the two specs, the input packs, the run record, the manifest; resubmission: run record,
        # manifest
        "submitter PutObject": 2 if resubmission else 4 + packs,
        # the first missing replicate's inputs from the store: the pack header, then its block's bytes
        "submitter GetObject": 2 if resubmission else 0,
        # the ensemble's claims (is an earlier submission still running?), the results, and the
        # model's compile marker (is its build published? then no compile job)
        "handler ListObjectsV2": 2 + pages,
        "handler SubmitJob": 1 + math.ceil(children / trigger.MAX_ARRAY_SIZE),
    }


def print_report(rows: list[Row], per_child: int, warm_seconds: float) -> None:
    print(
        f"AWS API calls of the AWS path, bundled Poisson example, {per_child} replicates per array child, "
        f"moto {moto_version()}"
    )
    print(f"(compile cache warm-up before the table: {warm_seconds:.1f} s, not counted)\n")
    header = (
        f"{'scenario':<9} {'R':>6} {'results':>7}  {'submit calls':>12} {'handler calls':>13}  "
        f"{'submit s':>8} {'handler s':>9}  jobs"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.scenario:<9} {row.replicates:>6} {row.existing_results:>7}  "
            f"{sum(row.submitter.values()):>12} {sum(row.handler.values()):>13}  "
            f"{row.submit_seconds:>8.1f} {row.handler_seconds:>9.2f}  {row.outcome}"
        )
    print("\nBy operation:")
    for row in rows:
        print(f"  {row.scenario} R={row.replicates} (results present: {row.existing_results})")
        print(f"    submitter: {describe(row.submitter)}")
        print(f"    handler:   {describe(row.handler)}")

    operations = sorted({op for row in rows for op in (*row.submitter, *row.handler)})
    print("\nPer-operation table (submitter / handler):")
    labels = [f"{row.scenario[:5]} R={row.replicates}" for row in rows]
    width = max(14, *(len(label) for label in labels))
    print(f"  {'operation':<34}" + "".join(f"{label:>{width + 2}}" for label in labels))
    for side in ("submitter", "handler"):
        for op in operations:
            values = [getattr(row, side)[op] for row in rows]
            if any(values):
                print(f"  {side + ' ' + op:<34}" + "".join(f"{v:>{width + 2}}" for v in values))

    print("\nCheck against the code's expected R-dependent counts:")
    mismatches = 0
    for row in rows:
        for name, expected in expected_growth(row.replicates, row.existing_results, per_child).items():
            side, op = name.split(" ")
            measured = getattr(row, side)[op]
            ok = measured == expected
            mismatches += not ok
            if not ok:
                print(
                    f"  MISMATCH {row.scenario} R={row.replicates}: {name} measured {measured}, expected {expected}"
                )
    if not mismatches:
        print("  every row matches")

    print(
        "\nWhat grows with R, and why:\n"
        f"  ListObjectsV2         one page per {LIST_PAGE} result objects, at least one, in the submitter\n"
        "                        (plan_ensemble) and again in the handler (missing_replicates); workers\n"
        f"                        write up to {ARRAY_CHILD_WINDOW.max_results} results per object, so a page lists up to\n"
        f"                        {LIST_PAGE * ARRAY_CHILD_WINDOW.max_results:,} results (the resubmissions' results are written so).\n"
        "  handler GetObject     one per earlier submission of the same ensemble (its claim), to see whether\n"
        "                        its jobs still run: grows with resubmissions, not with R.\n"
        f"  handler SubmitJob     1 compile job (none once the model's build is published) + ceil(children /\n"
        f"                        {trigger.MAX_ARRAY_SIZE:,}) array jobs, children = ceil(missing / {per_child}); 2 up to\n"
        f"                        {trigger.MAX_ARRAY_SIZE * per_child:,} missing replicates.\n"
        "  submitter PutObject   on a first submission, one input pack per chunk of new input blocks (1, 2,\n"
        f"                        4, ... up to {MAX_CHUNK_BLOCKS} blocks of {INPUT_BLOCK_SIZE} replicates).\n"
        "  Everything else is constant in R. Submitter: DescribeStacks 1, DescribeJobDefinitions 1, HeadObject 2\n"
        "  (dataset spec, ensemble spec), one listing of the input packs; PutObject 4 + packs on a first\n"
        "  submission (the two specs, the packs, run record, manifest) and 2 on a resubmission\n"
        "  (run record, manifest), which also lists the packs again and makes 2 ranged GETs for the first\n"
        "  missing replicate's inputs. Handler: GetObject 2 (manifest, spec) + 1 per earlier submission's\n"
        "  claim + 1 for the ensemble's lease once an earlier submission released it,\n"
        "  ListObjectsV2 2 (the claims; the compile marker, which no run here writes, so every row\n"
        "  submits a compile job), DescribeJobs 1 per 100 earlier jobs (none on a first submission),\n"
        "  PutObject 4 (the ensemble's lease taken and released, conditional claim, claim rewrite with job\n"
        "  ids), 5 on a resubmission (the lease's first conditional write finds the released lease, a second\n"
        "  takes it over). Results are uploaded by the workers: see the whole run with fits below."
    )


# A whole run with fits --------------------------------------------------------------------------------

ACTORS = ("submitter", "lambda", "compile", "child")
"""Who makes the requests of a fitted run, named by their clients' user-agent app id."""
PUT_LIST = ("PutObject", "ListObjectsV2")
"""S3's dearer request class ($0.005 per 1000); GetObject and HeadObject are the cheaper one."""


class TaggedRunner(BatchRunner):
    """BatchRunner whose job processes name themselves to the request counter: compile job or array child."""

    def start(self, child: Child) -> subprocess.Popen[bytes]:
        actor = "compile" if "--compile-only" in child.argv else "child"
        return super().start(replace(child, environment={**child.environment, "AWS_SDK_UA_APP_ID": actor}))


class BatchStandIn:
    """Plays AWS Batch for the trigger's submissions while the submitter waits.

    Each submission's jobs run on a thread of their own as soon as the trigger submits them (its compile
    job, then its array children), at most ``slots`` job processes at a time (the compute environment's
    vCPUs): compile jobs of submissions made before any build is published compile, as on AWS.
    """

    def __init__(self, runner: BatchRunner, slots: int) -> None:
        self._runner = runner
        self._slots = threading.Semaphore(slots)
        self._threads: list[threading.Thread] = []
        self.submitted: set[str] = set()
        self.finished: set[str] = set()
        self.failures: list[str] = []
        self.compile_jobs = 0

    def submit(self, job_ids: list[str]) -> None:
        new = [job_id for job_id in job_ids if job_id not in self.submitted]
        self.submitted.update(new)
        if new:
            thread = threading.Thread(target=self._run, args=(new,), name="batch-stand-in")
            thread.start()
            self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _run(self, job_ids: list[str]) -> None:
        children = self._runner.children(job_ids)
        compile_jobs = [child for child in children if "--compile-only" in child.argv]
        array = [child for child in children if child not in compile_jobs]
        for child in compile_jobs:
            self.compile_jobs += 1
            self._run_child(child)
            self.finished.add(child.job_id)
        with ThreadPoolExecutor(max_workers=max(1, len(array))) as pool:
            list(pool.map(self._run_child, array))
        self.finished.update(job_ids)

    def _run_child(self, child: Child) -> None:
        with self._slots:
            finished = self._runner.run(child, timeout=3600)
        if finished.returncode != 0:
            self.failures.append(f"{child.job_id} exited {finished.returncode}:\n{finished.output[-2000:]}")


@dataclass
class FittedRun:
    """What a whole run with fits asked of AWS, by client."""

    replicates: int
    engine: str
    counts: dict[str, Counter[str]]
    outcomes: list[dict[str, Any]]
    children: list[int]
    """Replicates of each array child, in submission order."""
    per_child: int
    compile_jobs: int
    slots: int
    load: str
    fit_seconds: float
    """Mean fit time of the run (the report's fit_seconds_total / R), here on a shared machine."""
    seconds: float

    def total(self, operation: str) -> int:
        return sum(
            n for calls in self.counts.values() for op, n in calls.items() if op.split()[0] == operation
        )

    @property
    def put_list(self) -> int:
        return sum(self.total(op) for op in PUT_LIST)

    @property
    def get_head(self) -> int:
        return self.total("GetObject") + self.total("HeadObject")


def lambda_stand_in(
    stack: FakeStack, batch: BatchStandIn, stop: threading.Event, outcomes: list[dict[str, Any]]
) -> None:
    """Hand each manifest upload's S3 event to the real trigger handler, and its new jobs to Batch."""
    own = Config(user_agent_appid="bench")  # the bench's own requests (moto's missing versionId): not counted
    sqs, s3 = boto3.client("sqs", config=own), boto3.client("s3", config=own)
    while not stop.is_set():
        for event in manifest_events(stack, sqs=sqs, s3=s3):
            (outcome,) = trigger.handler(event, None)["outcomes"]
            outcomes.append(outcome)
            batch.submit([str(job_id) for job_id in outcome.get("job_ids", [])])
        stop.wait(0.2)


@contextlib.contextmanager
def statuses_from(stand_in: BatchStandIn) -> Iterator[None]:
    """The submitter and the trigger see jobs the stand-in has not finished as RUNNING.

    moto's Batch without Docker reports every job SUCCEEDED at once; the submitter would stop waiting,
    and the trigger would resubmit the replicates of a running submission.
    """
    originals = (batch_executor.describe_jobs, trigger.describe_jobs)

    def described(batch: Any, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [
            job
            if job["jobId"] in stand_in.finished
            else {**{k: v for k, v in job.items() if k != "arrayProperties"}, "status": "RUNNING"}
            for job in originals[0](batch, job_ids)
        ]

    batch_executor.describe_jobs = trigger.describe_jobs = described
    try:
        yield
    finally:
        batch_executor.describe_jobs, trigger.describe_jobs = originals


@contextlib.contextmanager
def app_id(name: str) -> Iterator[None]:
    """Clients made in the block name themselves ``name`` in their user agent (the request counter's key)."""
    os.environ["AWS_SDK_UA_APP_ID"] = name
    try:
        yield
    finally:
        os.environ.pop("AWS_SDK_UA_APP_ID", None)


def fitted_submit_argv(stack: str, replicates: int, engine: str, out: Path) -> list[str]:
    return [
        *example_arguments(str(MODEL), str(GENERATOR), str(EXAMPLE / "data.json")),
        *("--replicates", str(replicates), "--engine", engine, "--backend", "aws", "--stack", stack),
        *("--wait", "--no-progress", "--out", str(out)),
    ]


def fitted_run(replicates: int, engine: str, slots: int) -> FittedRun:
    """Submit R replicates with --wait through moto's server and run every job the trigger submits."""
    started = time.perf_counter()
    counter = RequestCounter()
    outcomes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stanfleet-calls-") as tmp_name, moto_server(counter) as endpoint:
        tmp = Path(tmp_name)
        stack = deploy_fake_stack("StanFleetCalls", bucket="stanfleet-calls-bench")
        os.environ.update(stack.trigger_environment())
        trigger.s3_client.cache_clear()
        trigger.batch_client.cache_clear()
        with app_id("lambda"):
            trigger.s3_client(), trigger.batch_client()  # made here: the handler's clients
        runner = TaggedRunner(
            boto3.client("batch"),
            environment={**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint},
            log_dir=tmp / "logs",
        )
        batch = BatchStandIn(runner, slots)
        stop = threading.Event()
        driver = threading.Thread(target=lambda_stand_in, args=(stack, batch, stop, outcomes), name="lambda")
        output = io.StringIO()
        with statuses_from(batch):
            driver.start()
            try:
                with app_id("submitter"), contextlib.redirect_stdout(output):
                    code = submit.main(fitted_submit_argv(stack.name, replicates, engine, tmp / "report"))
            finally:
                stop.set()
                driver.join()
                batch.join()
        if code != 0 or batch.failures:
            raise SystemExit(
                f"the fitted run failed (exit {code}):\n{output.getvalue()}\n" + "\n".join(batch.failures)
            )
        summary = json.loads((tmp / "report" / "summary.json").read_text())
        plans = [
            json.loads(boto3.client("s3").get_object(Bucket=stack.bucket, Key=o["claim"])["Body"].read())
            for o in outcomes
            if o["status"] == "submitted"
        ]
    per_child = int(plans[0]["replicates_per_child"])
    children = [
        min(per_child, len(p["missing"]) - start)
        for p in plans
        for start in range(0, len(p["missing"]), per_child)
    ]
    return FittedRun(
        replicates=replicates,
        engine=engine,
        counts=counter.counts,
        outcomes=outcomes,
        children=children,
        per_child=per_child,
        compile_jobs=batch.compile_jobs,
        slots=slots,
        load=load_average(),
        fit_seconds=float(summary["fit_seconds_total"]) / replicates,
        seconds=time.perf_counter() - started,
    )


def print_fitted_run(run: FittedRun) -> None:
    """The requests of the whole run by client and operation, PUTs per 1000 fits, and the cost model's."""
    sizes = ", ".join(str(n) for n in run.children)
    print(
        f"\nA whole run with fits: R = {run.replicates}, --wait (the submitter's default), --engine {run.engine}, "
        "--replicates-per-child auto,\nagainst moto's server; the trigger handler takes each manifest's S3 event "
        "and a Batch stand-in runs the jobs as\ntheir containers would (python -m runtime.worker, up to "
        f"{run.slots} at a time). {run.seconds:.0f} s; load average here {run.load}."
    )
    print(
        f"  manifests (trigger invocations): {len(run.outcomes)}; compile jobs: {run.compile_jobs}; array children: "
        f"{len(run.children)} ({sizes} replicates; {run.per_child} per child); mean fit here {run.fit_seconds:.3f} s"
    )
    print(
        "  (one compile job per ensemble: a later manifest's arrays wait for the one queued or running, or find\n"
        "  the build it published, as bench/aws_cost.py assumes.)"
    )
    operations = sorted({op for actor in ACTORS for op in run.counts.get(actor, {})})
    print(f"\n  {'operation':<38}" + "".join(f"{actor:>10}" for actor in ACTORS) + f"{'total':>10}")
    for op in operations:
        values = [run.counts.get(actor, Counter())[op] for actor in ACTORS]
        print(f"  {op:<38}" + "".join(f"{v:>10}" for v in values) + f"{sum(values):>10}")
    puts = run.total("PutObject")
    results = sum(calls["PutObject results"] for calls in run.counts.values())
    print(
        f"\n  S3 PUT+LIST {run.put_list:,} (${run.put_list / 1000 * S3_PUT_LIST_PER_1000:.5f}), GET+HEAD "
        f"{run.get_head:,} (${run.get_head / 1000 * S3_GET_PER_1000:.5f}) for {run.replicates} fits"
    )
    print(
        f"  PUTs per 1000 fits: {puts / run.replicates * 1000:.1f} (of which result objects "
        f"{results / run.replicates * 1000:.1f}; one object per replicate would be 1000)"
    )
    print_model_check(run)


def print_model_check(run: FittedRun) -> None:
    """bench/aws_cost.py's request model for this run's layout, fit time and polls, next to the counts."""
    layout = aws_cost.run_layout(run.replicates, run.per_child, wait=True)
    polls = run.counts.get("submitter", Counter())["batch describejobs"]
    model = aws_cost.s3_requests(layout, run.fit_seconds, (polls - 1) * batch_executor.POLL_SECONDS)
    per_compile_job = next(
        (r[1] // layout.compile_jobs, r[2] // layout.compile_jobs)
        for r in model.rows
        if r[0].startswith("compile")
    )
    groups = {
        "submitter": ("submitter", "python -m"),
        "lambda": ("trigger",),
        "compile": ("compile",),
        "child": ("array",),
    }
    print(
        "\n  bench/aws_cost.py's request model for this layout, fit time and number of polls (and the compile jobs\n"
        "  that ran here):"
    )
    print(f"    {'client':<12}{'PUT+LIST':>10}{'model':>8}{'GET+HEAD':>10}{'model':>8}")
    for actor in ACTORS:
        calls = run.counts.get(actor, Counter())
        put_list = sum(n for op, n in calls.items() if op.split()[0] in PUT_LIST)
        get_head = sum(n for op, n in calls.items() if op.split()[0] in ("GetObject", "HeadObject"))
        rows = [row for row in model.rows if row[0].startswith(groups[actor])]
        expected = (sum(r[1] for r in rows), sum(r[2] for r in rows))
        if actor == "compile":
            expected = (per_compile_job[0] * run.compile_jobs, per_compile_job[1] * run.compile_jobs)
        print(f"    {actor:<12}{put_list:>10}{expected[0]:>8}{get_head:>10}{expected[1]:>8}")
    print(
        "    (the model charges every compile job with a build upload: on AWS they start together; here a compile\n"
        "    job that starts after another published the build finds it and uploads nothing. It fills each 30 s\n"
        "    window with fits of the mean time; the real fits' spread moves a child's result objects by one.)"
    )


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def warm_compile_cache() -> float:
    """Build the model and the generator once so the first row's wall time is not a C++ build."""
    started = time.perf_counter()
    engine = get_engine("pystan")
    engine.compile(MODEL)
    engine.compile(GENERATOR)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Runs offline under moto; no AWS account or credentials are used.",
    )
    parser.add_argument(
        "--replicates",
        type=int,
        nargs="+",
        default=[10, 1000, 10_000],
        metavar="R",
        help="ensemble sizes to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--replicates-per-child",
        type=int,
        default=DEFAULT_REPLICATES_PER_CHILD,
        help="the submitter's --replicates-per-child (default: %(default)s)",
    )
    parser.add_argument(
        "--prefill",
        type=float,
        default=0.5,
        help="also resubmit each ensemble with this fraction of results already present, to show the "
        "listing pages growing; 0 skips the resubmission (default: %(default)s)",
    )
    parser.add_argument(
        "--fit-replicates",
        type=int,
        default=1000,
        metavar="R",
        help="then submit R replicates with --wait and run every job, fits included, counting every request; "
        "0 skips it (default: %(default)s)",
    )
    parser.add_argument(
        "--fit-engine",
        default="cmdstanpy" if cmdstan_available() else "pystan",
        help="engine of the run with fits (default: %(default)s)",
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=os.cpu_count() or 1,
        help="job processes the Batch stand-in runs at a time (default: the cpu count, %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.prefill < 1:
        parser.error("--prefill must be in [0, 1)")
    fake_credentials()
    total_started = time.perf_counter()
    warm_seconds = warm_compile_cache()
    rows: list[Row] = []
    with CallCounter() as counter:
        for replicates in args.replicates:
            rows.extend(measure(replicates, args.replicates_per_child, args.prefill, counter))
    print_report(rows, args.replicates_per_child, warm_seconds)
    if args.fit_replicates:
        print_fitted_run(fitted_run(args.fit_replicates, args.fit_engine, args.slots))
    print(
        f"\nbench wall time: {time.perf_counter() - total_started:.1f} s (cpu count here: {os.cpu_count()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
