"""The AWS backend end to end, in moto: select with ``pytest -m aws_e2e``.

``python -m runtime.submit --backend aws`` runs in this process against moto's server (a thread here),
reading the stack outputs from CloudFormation and publishing through the S3 API. Its manifest upload
makes moto send an S3 event to an SQS queue; the test hands that event to the real trigger handler,
which claims it and submits the jobs to moto's Batch. The Batch runner (tests/runtime/helpers/batch_runner.py)
then runs each job and array child as the container would: ``python -m runtime.worker`` with the job
definition's command and the child's environment, in a subprocess talking to the same moto server.
``python -m runtime.collect`` writes the report. Fits are real (every engine present, small sampler settings).

Workers write their results in batches, one object per window of results (``results/batch.<ranges>.<writer>.jsonl``);
stores of the previous version hold one object per replicate (``results/000003.json``). The tests count
results per replicate, across every version of every result object (:meth:`Aws.stored_results`), and
follow a child's work through its log: ``replicate 7: fitted (...)`` per fit, ``wrote 3 results: KEY``
per batch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto.server import ThreadedMotoServer

from runtime.aws import trigger
from runtime.aws.manifest import Manifest
from runtime.aws.spot_notice import METADATA_ENDPOINT_VARIABLE
from runtime.collect import main as collect_main
from runtime.executors import batch as batch_executor
from runtime.fitting.worker_interface import BATCH_RESULTS_VARIABLE, BATCH_SECONDS_VARIABLE
from runtime.store.keys import (
    is_result_batch_key,
    manifest_key,
    replicates_of_result_key,
    result_key,
    results_prefix,
)
from runtime.store.local import LocalDirectoryStore
from runtime.store.protocol import ObjectStore
from runtime.store.s3 import S3Store
from runtime.submit import main as submit_main
from tests.runtime.helpers.batch_runner import (
    CREDENTIALS,
    FIT_VCPUS,
    BatchRunner,
    FakeStack,
    assert_succeeded,
    deploy_fake_stack,
    manifest_events,
)
from tests.runtime.helpers.engines_present import ENGINES
from tests.runtime.helpers.fake_imds import FakeImds, running_fake_imds
from tests.runtime.helpers.poisson_example import MODEL, QUICK_SAMPLER, ROOT, example_arguments
from tests.runtime.helpers.stored_results import results_by_replicate

pytestmark = pytest.mark.aws_e2e

SETTINGS = [*QUICK_SAMPLER, "--no-progress"]
COMMAND = [*example_arguments(), *SETTINGS]
QUANTITIES_MODEL = str(ROOT / "tests" / "data" / "poisson_quantities.stan")
TEST_QUANTITIES = ["--test-quantities", "log_lambda,y_rep_mean"]
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call moto's own API (``/moto-api/...``); POST when there is a body."""
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data)) as reply:
        payload = reply.read()
    return json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free port, its Batch told not to use Docker (jobs are recorded, not run)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = moto_api(endpoint, "config")
    moto_api(endpoint, "config", {"batch": {"use_docker": False}})
    try:
        yield endpoint
    finally:
        moto_api(endpoint, "config", {"batch": previous["batch"]})
        moto_api(endpoint, "reset", {})  # the server shares moto's in-process state: leave it empty
        server.stop()


@dataclass
class Aws:
    """One test's deployment in moto, with the clients and the runner the tests use."""

    stack: FakeStack
    s3: Any
    sqs: Any
    batch: Any
    runner: BatchRunner
    tmp: Path

    def submit(
        self,
        *arguments: str,
        replicates: int,
        per_child: int,
        wait: bool = False,
        engine: str = "pystan",
        model: str = MODEL,
    ) -> int:
        """``python -m runtime.submit ... --backend aws`` (in this process)."""
        return submit_main(
            [
                *example_arguments(model),
                *SETTINGS,
                "--engine",
                engine,
                "--backend",
                "aws",
                "--stack",
                self.stack.name,
                "--replicates",
                str(replicates),
                "--replicates-per-child",
                str(per_child),
                "--wait" if wait else "--no-wait",
                "--out",
                str(self.tmp / "aws-report"),
                *arguments,
            ]
        )

    def events(self) -> list[dict[str, Any]]:
        """The S3 events delivered since the last call."""
        return manifest_events(self.stack, sqs=self.sqs, s3=self.s3)

    def jobs(self) -> list[dict[str, Any]]:
        """Every job submitted to the stack's queue (array parents, not their children)."""
        ids = {
            job["jobId"]
            for status in JOB_STATUSES
            for job in self.batch.list_jobs(jobQueue=self.stack.job_queue_arn, jobStatus=status)[
                "jobSummaryList"
            ]
            if ":" not in job["jobId"]
        }
        return self.batch.describe_jobs(jobs=sorted(ids))["jobs"] if ids else []

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.stack.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def result_versions(self, ensemble_id: str) -> dict[str, list[tuple[str, Any, bytes]]]:
        """Every version ever written of each result: (version id, last modified, bytes)."""
        listed = self.s3.list_object_versions(Bucket=self.stack.bucket, Prefix=results_prefix(ensemble_id))
        versions: dict[str, list[tuple[str, Any, bytes]]] = {}
        for version in listed.get("Versions", []):
            body = self.s3.get_object(
                Bucket=self.stack.bucket, Key=version["Key"], VersionId=version["VersionId"]
            )["Body"].read()
            versions.setdefault(version["Key"], []).append(
                (version["VersionId"], version["LastModified"], body)
            )
        return versions

    def stored_results(self, ensemble_id: str) -> dict[int, list[StoredResult]]:
        """Each replicate's results in every version of every result object, by replicate.

        A replicate written once has one; a result object rewritten, or a replicate fitted twice, more.
        """
        stored: dict[int, list[StoredResult]] = {}
        for key, versions in self.result_versions(ensemble_id).items():
            for version, _, body in versions:
                for replicate, line in results_in(key, body):
                    stored.setdefault(replicate, []).append(StoredResult(key, version, line))
        return stored

    def read_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read())

    def share(self, outcome: dict[str, Any], child: int) -> list[int]:
        """The replicates the trigger's plan gives the array child ``child`` of a submission."""
        plan = self.read_json(outcome["claim"])
        size = plan["replicates_per_child"]
        return list(plan["missing"][child * size : (child + 1) * size])

    def store(self) -> ObjectStore:
        """The stack's bucket as the runtime's readers see it."""
        return S3Store(self.stack.bucket)


@dataclass(frozen=True)
class StoredResult:
    """One replicate's result as stored: the object and version holding it, and its JSON."""

    key: str
    version: str
    body: bytes

    @property
    def fields(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def results_in(key: str, body: bytes) -> list[tuple[int, bytes]]:
    """The results an object of ``results/`` holds: one per line of a batch, else the object itself."""
    replicates = replicates_of_result_key(key)
    lines = body.splitlines() if is_result_batch_key(key) else [body]
    assert len(lines) == len(replicates), f"{key} holds {len(lines)} results"
    return list(zip(replicates, lines, strict=True))


def assert_each_written_once(aws: Aws, ensemble_id: str, replicates: int) -> dict[int, StoredResult]:
    """Every replicate ``0..replicates-1`` has exactly one result in the bucket, ever, and only they do.

    Returns them by replicate.
    """
    stored = aws.stored_results(ensemble_id)
    assert sorted(stored) == list(range(replicates))
    twice = {
        r: [(copy.key, copy.version) for copy in copies] for r, copies in stored.items() if len(copies) > 1
    }
    assert not twice, f"written more than once: {twice}"
    once = {replicate: copy for replicate, [copy] in stored.items()}
    assert all(result.fields["replicate"] == replicate for replicate, result in once.items())
    return once


FITTED = re.compile(r"^replicate (\d+): fitted \(", re.MULTILINE)
WROTE = re.compile(r"^wrote \d+ results: (\S+)$", re.MULTILINE)


def fitted_in(log: str) -> list[int]:
    """The replicates a worker's log says it fitted, in the order it fitted them."""
    return [int(replicate) for replicate in FITTED.findall(log)]


def batches_written_in(log: str) -> list[list[int]]:
    """The replicates of each batch a worker's log says it wrote, in the order it wrote them."""
    return [replicates_of_result_key(key) for key in WROTE.findall(log)]


def wait_until(
    condition: Callable[[], object],
    process: subprocess.Popen[bytes],
    log: Callable[[], str],
    *,
    within: float = 120,
) -> None:
    """Check ``condition`` every 20 ms while the child's ``process`` runs.

    Fails, showing the child's ``log``, if the process ends first or ``within`` seconds pass.
    """
    deadline = time.monotonic() + within
    while not condition():
        assert process.poll() is None, f"the child ended (status {process.returncode}) first:\n{log()}"
        assert time.monotonic() < deadline, f"not within {within} s:\n{log()}"
        time.sleep(0.02)


@pytest.fixture
def aws(
    aws_credentials: None, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Aws]:
    """A fresh stack (own bucket, event queue, Batch queue, CloudFormation stack) for each test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no session cached with another endpoint
    suffix = uuid.uuid4().hex[:8]
    stack = deploy_fake_stack(f"StanFleetE2E{suffix}", bucket=f"stanfleet-e2e-{suffix}")
    for name, value in stack.trigger_environment().items():
        monkeypatch.setenv(name, value)
    clients = (trigger.s3_client, trigger.batch_client)  # a test may replace them
    for client in clients:
        client.cache_clear()
        client()  # made here, not in a test's helper thread: creating clients is not thread-safe
    batch = boto3.client("batch")
    runner = BatchRunner(
        batch,
        environment={**CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint},
        log_dir=tmp_path / "batch-logs",
    )
    try:
        yield Aws(stack, boto3.client("s3"), boto3.client("sqs"), batch, runner, tmp_path)
    finally:
        runner.stop_all()  # a child a failed test left running
        for client in clients:
            client.cache_clear()


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    """A fake EC2 metadata service for a child to poll for a spot interruption notice."""
    with running_fake_imds() as server:
        yield server


def ensemble_of(output: str) -> str:
    found = re.search(r"ensemble ([0-9a-f]{20}):", output)
    assert found, output
    return found.group(1)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """The real trigger handler on one S3 event of one record; its outcome."""
    (outcome,) = trigger.handler(event, None)["outcomes"]
    return dict(outcome)


def launch(
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
    *,
    replicates: int,
    per_child: int,
    engine: str = "pystan",
    model: str = MODEL,
) -> tuple[str, dict[str, Any]]:
    """Submit with --no-wait and hand the upload's S3 event to the trigger: (ensemble id, outcome)."""
    assert aws.submit(replicates=replicates, per_child=per_child, engine=engine, model=model) == 0
    ensemble_id = ensemble_of(capsys.readouterr().out)
    (event,) = aws.events()
    outcome = handle(event)
    assert outcome["status"] == "submitted", outcome
    return ensemble_id, outcome


@pytest.mark.parametrize("engine", ENGINES)
def test_aws_run_collects_the_same_report_as_a_local_run(
    aws: Aws, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    assert (
        aws.submit(*TEST_QUANTITIES, replicates=12, per_child=5, engine=engine, model=QUANTITIES_MODEL) == 0
    )
    output = capsys.readouterr().out
    ensemble_id = ensemble_of(output)
    assert f"submitted; collect the report later with: python -m runtime.collect {ensemble_id}" in output
    assert f"stop the jobs with: python -m runtime.cancel {ensemble_id} --stack {aws.stack.name}\n" in output
    assert not (aws.tmp / "aws-report").exists()
    assert aws.read_json(f"manifests/{ensemble_id}.json") == {
        "ensemble_id": ensemble_id,
        "replicates": 12,
        "replicates_per_child": 5,
        "version": 1,
    }

    (event,) = aws.events()
    assert unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == f"manifests/{ensemble_id}.json"
    outcome = handle(event)
    assert outcome["status"] == "submitted"
    compile_job, fit_job = outcome["job_ids"]
    described = {job["jobId"]: job for job in aws.jobs()}
    assert set(described) == {compile_job, fit_job}
    assert described[fit_job]["arrayProperties"]["size"] == 3  # 12 replicates, 5 per child
    assert described[fit_job]["dependsOn"] == [{"jobId": compile_job}]

    children = aws.runner.children(outcome["job_ids"])
    assert [child.job_id for child in children] == [compile_job, *(f"{fit_job}:{i}" for i in range(3))]
    assert children[0].argv[1:] == (
        "-m",
        "runtime.worker",
        "--store",
        f"s3://{aws.stack.bucket}",
        "--ensemble-id",
        ensemble_id,
        "--compile-only",
        "--compiled-marker",
        described[compile_job]["parameters"]["compiled_marker"],
    )
    assert children[1].argv[-2:] == ("--plan", outcome["claim"])
    assert [child.environment.get("AWS_BATCH_JOB_ARRAY_INDEX") for child in children] == [None, "0", "1", "2"]
    assert {child.environment.get("STANFLEET_CHILD_OFFSET") for child in children[1:]} == {"0"}
    assert_succeeded(aws.runner.run_jobs(outcome["job_ids"]))
    written = assert_each_written_once(aws, ensemble_id, 12)
    shares = [set(aws.share(outcome, child)) for child in range(3)]
    for key in aws.keys(results_prefix(ensemble_id)):  # each child fitted and wrote its own share
        assert is_result_batch_key(key)
        assert any(set(replicates_of_result_key(key)) <= share for share in shares), key
    assert {result.fields["engine"] for result in written.values()} == {engine}
    if engine == "cmdstanpy":  # the compile job published the executable; the children fetched it
        (build,) = aws.keys("models/cmdstan-")
        executable = aws.s3.get_object(Bucket=aws.stack.bucket, Key=build)["Body"].read()
        for child in children[1:]:
            cache = aws.runner.cache_dir(child)
            assert [path.read_bytes() for path in cache.rglob(Path(build).name)] == [executable]
            assert not list(cache.rglob("*.hpp")), "a fit child compiled the model itself"

    assert collect_main([ensemble_id, "--stack", aws.stack.name, "--out", str(aws.tmp / "collected")]) == 0
    output = capsys.readouterr().out
    assert "verdict: CALIBRATED" in output
    assert "estimated cost: $" in output
    collected = json.loads((aws.tmp / "collected" / "summary.json").read_text())

    local_store = aws.tmp / "local-store"
    local = [
        *example_arguments(QUANTITIES_MODEL),
        *SETTINGS,
        *TEST_QUANTITIES,
        "--engine",
        engine,
        "--replicates",
        "12",
        "--store",
        str(local_store),
        "--workers",
        "2",
    ]
    assert submit_main([*local, "--out", str(aws.tmp / "local-report")]) == 0
    assert ensemble_of(capsys.readouterr().out) == ensemble_id  # the backend is not part of the id
    expected = json.loads((aws.tmp / "local-report" / "summary.json").read_text())

    collected_fit_seconds = collected["fit_seconds_total"]
    for summary in (collected, expected):
        assert summary.pop("fit_seconds_total") > 0
        summary["replicates"].pop("reused")
    collected_run, expected_run = collected.pop("run"), expected.pop("run")
    assert collected == expected
    assert collected["replicates"] == {
        "requested": 12,
        "succeeded": 12,
        "failed": 0,
        "missing": 0,
        "machinery_errors": 0,
        "judged": 12,
    }
    assert list(collected["test_quantities"]) == ["log_lik", "log_lambda", "y_rep_mean"]
    # collect reports the submitter's run record: its run fields, as a --wait submission would, and
    # the cost estimate of the AWS backend; apart from those two, the runs match.
    assert collected_run.pop("backend") == "aws"
    cost = collected_run.pop("cost_estimate")
    assert cost["vcpu_seconds"] == pytest.approx(collected_fit_seconds * FIT_VCPUS)
    assert expected_run.pop("backend") == "local"
    assert collected_run == expected_run

    # The same fits: same seeds, same draws. Each side batches its results its own way (other writer
    # tokens, other groupings), so the results are compared replicate by replicate, as collect reads them.
    local_results = results_by_replicate(LocalDirectoryStore(local_store), ensemble_id, 12)
    assert sorted(local_results) == list(range(12))
    assert results_by_replicate(aws.store(), ensemble_id, 12) == local_results


def test_duplicate_events_submit_once(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert aws.submit("--region", "us-east-1", replicates=4, per_child=2) == 0
    output = capsys.readouterr().out
    ensemble_id = ensemble_of(output)
    hint = f"python -m runtime.collect {ensemble_id} --stack {aws.stack.name} --region us-east-1"
    assert hint in output
    (event,) = aws.events()
    first = handle(event)
    again = handle(event)
    assert (first["status"], again["status"]) == ("submitted", "duplicate")
    assert sorted(job["jobId"] for job in aws.jobs()) == sorted(first["job_ids"])
    assert aws.keys(f"claims/{ensemble_id}/") == [first["claim"]]  # beside it: the ensemble's lease
    assert aws.read_json(first["claim"])["job_ids"] == first["job_ids"]
    assert first["claim"].startswith(f"claims/{ensemble_id}/")


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        Manifest("0123456789abcdef0123", 0, 1).to_json(),
        json.dumps({"ensemble_id": "0123456789abcdef0123", "replicates": 3}).encode(),
    ],
    ids=["not-json", "zero-replicates", "missing-fields"],
)
def test_a_malformed_manifest_is_rejected_without_submission_or_claim(aws: Aws, payload: bytes) -> None:
    aws.s3.put_object(Bucket=aws.stack.bucket, Key="manifests/0123456789abcdef0123.json", Body=payload)
    (event,) = aws.events()
    outcome = handle(event)
    assert outcome["status"] == "rejected"
    assert outcome["reason"]
    assert aws.jobs() == []
    assert aws.keys("claims/") == []


SMALL_WINDOW = 2
"""Results a child holds at most before it writes them, where a test needs batches to land early."""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_child_killed_mid_way_and_retried_loses_and_repeats_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    """A child SIGKILLed mid-share (its spot instance reclaimed without warning) loses at most one window
    of fits, the results it held; Batch's retry fits exactly those and the rest of its share, and leaves
    the batches the first attempt wrote untouched."""
    ensemble_id, outcome = launch(aws, capsys, replicates=10, per_child=5, engine=engine)
    compile_job, first, second = aws.runner.children(outcome["job_ids"])
    first = first.with_environment(
        **{BATCH_RESULTS_VARIABLE: str(SMALL_WINDOW), BATCH_SECONDS_VARIABLE: "600"}
    )  # a batch every 2 fits
    assert_succeeded([aws.runner.run(compile_job)])
    first_share = set(aws.share(outcome, 0))

    process = aws.runner.start(first)
    wait_until(lambda: aws.keys(results_prefix(ensemble_id)), process, lambda: aws.runner.output(first))
    os.killpg(process.pid, signal.SIGKILL)  # the container, as a reclaimed spot instance would, mid-share
    returncode = aws.runner.wait(process)
    log = aws.runner.output(first)
    assert returncode == -signal.SIGKILL, log
    survivors = aws.result_versions(ensemble_id)
    saved = {replicate for key in survivors for replicate in replicates_of_result_key(key)}
    assert saved < first_share  # at least one batch landed, and not the whole share
    assert all(
        len(versions) == 1 and len(replicates_of_result_key(key)) <= SMALL_WINDOW
        for key, versions in survivors.items()
    )
    lost = set(fitted_in(log)) - saved
    assert len(lost) <= SMALL_WINDOW, log  # what it held: at most one window

    with ThreadPoolExecutor(max_workers=2) as pool:  # Batch's retry (the same child) and the other child
        assert_succeeded(list(pool.map(aws.runner.run, [first, second])))
    assert sorted(fitted_in(aws.runner.output(first))) == sorted(first_share - saved)  # the retry's log
    after = aws.result_versions(ensemble_id)
    for key, versions in survivors.items():
        assert after[key] == versions  # same version, modification time and bytes
    stored = assert_each_written_once(aws, ensemble_id, 10)
    assert {result.fields["status"] for result in stored.values()} == {"ok"}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_child_stopped_with_sigterm_writes_what_it_fitted_and_its_retry_fits_the_rest(
    aws: Aws, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    """ECS stops a container (a timeout, a cancel) with SIGTERM to its PID 1, the worker: the worker
    writes the results it holds, exactly those it fitted, as one batch, and exits 143. Batch's retry
    fits exactly the rest of its share."""
    ensemble_id, outcome = launch(aws, capsys, replicates=10, per_child=5, engine=engine)
    compile_job, first, second = aws.runner.children(outcome["job_ids"])
    first = first.with_environment(**{BATCH_SECONDS_VARIABLE: "600"})  # holds its whole share of 5
    assert_succeeded([aws.runner.run(compile_job)])
    first_share = set(aws.share(outcome, 0))

    process = aws.runner.start(first)
    wait_until(lambda: fitted_in(aws.runner.output(first)), process, lambda: aws.runner.output(first))
    assert aws.keys(results_prefix(ensemble_id)) == []  # held, none written yet
    process.send_signal(signal.SIGTERM)  # the worker only, not its process group
    returncode = aws.runner.wait(process, 60)
    log = aws.runner.output(first)
    assert returncode == 128 + signal.SIGTERM, log
    assert "stopped by SIGTERM: the results held were written" in log
    fitted = fitted_in(log)
    stopped = aws.result_versions(ensemble_id)
    [(batch, [_])] = stopped.items()  # one batch, written once
    assert replicates_of_result_key(batch) == sorted(fitted)
    assert set(fitted) < first_share

    assert_succeeded([aws.runner.run(first)])  # Batch's retry
    assert sorted(fitted_in(aws.runner.output(first))) == sorted(first_share - set(fitted))
    assert_succeeded([aws.runner.run(second)])
    assert aws.result_versions(ensemble_id)[batch] == stopped[batch]
    stored = assert_each_written_once(aws, ensemble_id, 10)
    assert {result.fields["status"] for result in stored.values()} == {"ok"}


def test_a_missing_stack_is_one_line_and_uploads_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aws.submit("--stack", "NoSuchStack", replicates=4, per_child=2) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: stack 'NoSuchStack' not found in region us-east-1")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert "ensemble" not in captured.out
    assert aws.keys("") == []
    assert aws.events() == []
    assert not (aws.tmp / "aws-report").exists()


def test_an_ensemble_larger_than_one_array_job_fits_every_replicate_once(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger, "MAX_ARRAY_SIZE", 2)  # the handler runs in this process
    ensemble_id, outcome = launch(aws, capsys, replicates=3, per_child=1)
    compile_job, *fit_jobs = outcome["job_ids"]
    described = {job["jobId"]: job for job in aws.jobs()}
    assert set(described) == set(outcome["job_ids"])
    # Three children: an array of two, then the last child alone as a plain job (Batch arrays hold 2+).
    assert [described[job].get("arrayProperties", {}).get("size") for job in fit_jobs] == [2, None]
    offsets = [
        {e["name"]: e["value"] for e in described[job]["container"]["environment"]}["STANFLEET_CHILD_OFFSET"]
        for job in fit_jobs
    ]
    assert offsets == ["0", "2"]
    assert all(described[job]["dependsOn"] == [{"jobId": compile_job}] for job in fit_jobs)

    finished = aws.runner.run_jobs(outcome["job_ids"])
    assert_succeeded(finished)
    assert [run.child.job_id for run in finished] == [
        compile_job,
        f"{fit_jobs[0]}:0",
        f"{fit_jobs[0]}:1",
        fit_jobs[1],
    ]
    assert_each_written_once(aws, ensemble_id, 3)


def test_resubmitting_after_completion_fits_nothing(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    ensemble_id, outcome = launch(aws, capsys, replicates=4, per_child=4)
    assert len(outcome["job_ids"]) == 2  # the compile job and one plain fit job (a single child)
    assert_succeeded(aws.runner.run_jobs(outcome["job_ids"]))
    assert_each_written_once(aws, ensemble_id, 4)
    before = aws.result_versions(ensemble_id)

    assert aws.submit(replicates=4, per_child=4) == 0
    output = capsys.readouterr().out
    assert f"ensemble {ensemble_id}: 4 replicates requested, 4 reused, nothing to fit" in output
    assert aws.events() == []  # no manifest upload, so no trigger and no jobs
    assert len(aws.jobs()) == 2
    assert aws.result_versions(ensemble_id) == before
    summary = json.loads((aws.tmp / "aws-report" / "summary.json").read_text())
    assert summary["replicates"] == {
        "requested": 4,
        "succeeded": 4,
        "failed": 0,
        "missing": 0,
        "machinery_errors": 0,
        "reused": 4,
        "judged": 4,
    }

    # A larger R: the model's build is published (the compile job left its marker), so the new
    # replicates get a fit job alone, with nothing to wait for.
    _, grown = launch(aws, capsys, replicates=6, per_child=4)
    (fit_job,) = grown["job_ids"]
    (described,) = [job for job in aws.jobs() if job["jobId"] == fit_job]
    assert described["jobDefinition"] == aws.stack.fit_job_definition_arn
    assert not described.get("dependsOn")
    assert_succeeded(aws.runner.run_jobs(grown["job_ids"]))
    assert_each_written_once(aws, ensemble_id, 6)


def rewrite_as_one_object_per_replicate(aws: Aws, ensemble_id: str) -> None:
    """Store the ensemble's results as the previous version did: each result (the same bytes) an object
    of its own, ``results/000003.json``; the batches deleted."""
    for key in aws.keys(results_prefix(ensemble_id)):
        body = aws.s3.get_object(Bucket=aws.stack.bucket, Key=key)["Body"].read()
        for replicate, result in results_in(key, body):
            aws.s3.put_object(Bucket=aws.stack.bucket, Key=result_key(ensemble_id, replicate), Body=result)
        aws.s3.delete_object(Bucket=aws.stack.bucket, Key=key)


def test_results_stored_one_object_per_replicate_are_still_read(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ensemble whose results the previous version stored (one object per replicate) is complete to
    every reader: a rerun child, the submitter and the trigger fit nothing, and collect reports the same
    summary as from the batches."""
    ensemble_id, outcome = launch(aws, capsys, replicates=4, per_child=2)
    assert_succeeded(aws.runner.run_jobs(outcome["job_ids"]))

    def collected_summary(out: str) -> dict[str, Any]:
        assert collect_main([ensemble_id, "--stack", aws.stack.name, "--out", str(aws.tmp / out)]) == 0
        return dict(json.loads((aws.tmp / out / "summary.json").read_text()))

    from_batches = collected_summary("from-batches")
    rewrite_as_one_object_per_replicate(aws, ensemble_id)
    assert aws.keys(results_prefix(ensemble_id)) == [result_key(ensemble_id, r) for r in range(4)]
    assert collected_summary("from-objects") == from_batches
    capsys.readouterr()

    child = aws.runner.children(outcome["job_ids"])[1]
    assert_succeeded([aws.runner.run(child)])  # the worker reads them as done
    assert fitted_in(aws.runner.output(child)) == []
    assert batches_written_in(aws.runner.output(child)) == []

    jobs = sorted(job["jobId"] for job in aws.jobs())
    assert jobs == sorted(outcome["job_ids"])
    assert aws.submit(replicates=4, per_child=2) == 0
    assert (
        f"ensemble {ensemble_id}: 4 replicates requested, 4 reused, nothing to fit" in capsys.readouterr().out
    )
    assert aws.events() == []  # no manifest upload, so no trigger

    manifest = Manifest(ensemble_id=ensemble_id, replicates=4, replicates_per_child=2)
    aws.s3.put_object(Bucket=aws.stack.bucket, Key=manifest_key(ensemble_id), Body=manifest.to_json())
    (event,) = aws.events()  # a manifest uploaded all the same: the trigger finds nothing missing
    assert handle(event)["status"] == "complete"
    assert sorted(job["jobId"] for job in aws.jobs()) == jobs  # no job submitted
    assert aws.keys(results_prefix(ensemble_id)) == [result_key(ensemble_id, r) for r in range(4)]


SPOT_SHARE = 100
"""Replicates of the child given a spot interruption notice: more than it fits before its watcher, which
polls every 5 s (runtime.aws.spot_notice.POLL_SECONDS), sees the notice (a fit takes tenths of a
second); the test reclaims the instance soon after."""


def test_a_child_given_a_spot_interruption_notice_writes_what_it_holds_then_each_result(
    aws: Aws, capsys: pytest.CaptureFixture[str], imds: FakeImds
) -> None:
    """A child whose instance gets its two-minute spot interruption notice (the metadata service
    announces it) writes the results it holds at once, then each later result the moment it is fitted,
    so the reclaim that follows costs at most the fit in flight."""
    ensemble_id, outcome = launch(aws, capsys, replicates=SPOT_SHARE, per_child=SPOT_SHARE)
    compile_job, child = aws.runner.children(outcome["job_ids"])
    assert child.environment["AWS_BATCH_JOB_ID"] == child.job_id  # the worker watches in Batch jobs only
    child = child.with_environment(
        **{
            "AWS_EC2_METADATA_DISABLED": "false",  # the runner's default: no metadata service
            METADATA_ENDPOINT_VARIABLE: imds.endpoint,
            BATCH_SECONDS_VARIABLE: "600",  # holds its results until told otherwise
        }
    )
    assert_succeeded([aws.runner.run(compile_job)])

    process = aws.runner.start(child)

    def log() -> str:
        return aws.runner.output(child)

    wait_until(lambda: fitted_in(log()), process, log)
    assert imds.polls >= 1  # asked at the start: no notice then
    imds.announce_interruption()
    wait_until(lambda: len(batches_written_in(log())) >= 3, process, log)  # what it held, then two alone
    os.killpg(process.pid, signal.SIGKILL)  # the reclaim
    assert aws.runner.wait(process) == -signal.SIGKILL, log()

    notice = log().index("spot interruption notice: ")
    assert log().index("wrote ") > notice  # nothing written before the notice
    held, *each = sorted(replicates_of_result_key(key) for key in aws.keys(results_prefix(ensemble_id)))
    # First what it held when the notice came: every fit logged before the notice, and perhaps the one
    # that ended as it came (a fit is logged once held). Then each result alone.
    before = fitted_in(log()[:notice])
    assert set(before) <= set(held) and len(held) <= len(before) + 1
    assert len(each) >= 2 and all(len(batch) == 1 for batch in each)
    stored = aws.stored_results(ensemble_id)
    assert all(len(copies) == 1 for copies in stored.values())
    assert sorted(stored) == list(range(len(stored)))  # the share's first replicates, each once
    # The reclaim lost no fit the log reports (one more may be stored: killed before its line).
    fitted = set(fitted_in(log()))
    assert fitted <= set(stored) and len(set(stored) - fitted) <= 1


class RunOnSubmit:
    """The trigger's Batch client, with each submitted job run to its end before submit_job returns.

    moto's Batch (without Docker) reports every job SUCCEEDED the moment it is submitted; running the
    job inside submit_job makes that status true, so a waiting submitter sees what real Batch would.
    """

    def __init__(self, batch: Any, runner: BatchRunner) -> None:
        self._batch = batch
        self._runner = runner

    def submit_job(self, **request: Any) -> Any:
        response = self._batch.submit_job(**request)
        assert_succeeded(self._runner.run_jobs([response["jobId"]]))
        return response


def test_wait_follows_the_jobs_and_writes_the_report(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_executor, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(batch_executor, "TRIGGER_TIMEOUT_SECONDS", 120.0)
    run_on_submit = RunOnSubmit(trigger.batch_client(), aws.runner)
    monkeypatch.setattr(trigger, "batch_client", lambda: run_on_submit)
    outcomes: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    def lambda_and_batch() -> None:
        """Deliver the upload's event to the handler as soon as S3 sends it."""
        try:
            deadline = time.monotonic() + 60
            while not (events := aws.events()):
                assert time.monotonic() < deadline, "no S3 event within 60 s"
                time.sleep(0.05)
            outcomes.extend(handle(event) for event in events)
        except BaseException as exc:
            failures.append(exc)

    driver = threading.Thread(target=lambda_and_batch)
    driver.start()
    try:
        code = aws.submit(replicates=4, per_child=2, wait=True)
    finally:
        driver.join()
    assert not failures, failures
    assert code == 0, capsys.readouterr().err
    output = capsys.readouterr().out
    assert "estimated cost: $" in output
    assert "submitted; collect" not in output
    [outcome] = outcomes
    assert outcome["status"] == "submitted"
    summary = json.loads((aws.tmp / "aws-report" / "summary.json").read_text())
    assert summary["replicates"] == {
        "requested": 4,
        "succeeded": 4,
        "failed": 0,
        "missing": 0,
        "machinery_errors": 0,
        "reused": 0,
        "judged": 4,
    }
    assert summary["run"]["backend"] == "aws"
    cost = summary["run"]["cost_estimate"]
    assert cost["vcpu_seconds"] == pytest.approx(summary["fit_seconds_total"] * FIT_VCPUS)


def test_two_model_versions_on_aws_share_one_dataset_set(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    first_id, first = launch(aws, capsys, replicates=4, per_child=4)
    assert_succeeded(aws.runner.run_jobs(first["job_ids"]))
    packs = aws.keys("datasets/")
    assert [key.rsplit("/", 1)[1] for key in packs] == ["blocks-00000-00000.jsonl", "spec.json"]

    second_model = aws.tmp / "fit_data_v2.stan"  # a wider prior: another model version
    second_model.write_text(Path(MODEL).read_text().replace("normal(0, 6.44787)", "normal(0, 10)"))
    assert aws.submit(replicates=4, per_child=4, model=str(second_model)) == 0
    output = capsys.readouterr().out
    assert re.search(r"datasets [0-9a-f]{20}: 4 reused, 0 simulated", output), output
    second_id = ensemble_of(output)
    assert second_id != first_id
    (event,) = aws.events()
    second = handle(event)
    assert second["status"] == "submitted"
    assert_succeeded(aws.runner.run_jobs(second["job_ids"]))
    assert aws.keys("datasets/") == packs  # nothing simulated or uploaded again

    def true_values(ensemble_id: str) -> list[float]:
        results = results_by_replicate(aws.store(), ensemble_id, 4)
        return [results[replicate]["variables"]["lambda"]["true_value"] for replicate in range(4)]

    assert len(true_values(first_id)) == 4
    assert true_values(first_id) == true_values(second_id)


def test_posterior_sbc_runs_on_aws_as_prior_sbc_does(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    regression = ROOT / "examples" / "regression"
    assert (
        submit_main(
            [
                str(regression / "regression.stan"),
                "--posterior",
                str(regression / "observed.json"),
                "--predictive",
                "y_rep=y",
                *SETTINGS,
                "--engine",
                "pystan",
                "--backend",
                "aws",
                "--stack",
                aws.stack.name,
                "--replicates",
                "4",
                "--replicates-per-child",
                "2",
                "--no-wait",
            ]
        )
        == 0
    )
    output = capsys.readouterr().out
    assert "reference fit (new): 2 chains x 300 draws, thinned by 3 to 200" in output
    ensemble_id = ensemble_of(output)
    reference = [key.rsplit("/", 2)[1:] for key in aws.keys("datasets/") if "/reference/" in key]
    assert sorted(reference) == [["reference", "draws.npz"], ["reference", "fit.json"]]
    (event,) = aws.events()
    outcome = handle(event)
    assert outcome["status"] == "submitted", outcome
    assert_succeeded(aws.runner.run_jobs(outcome["job_ids"]))
    assert len(assert_each_written_once(aws, ensemble_id, 4)) == 4
    out = aws.tmp / "collected"
    assert collect_main([ensemble_id, "--stack", aws.stack.name, "--out", str(out)]) == 0
    assert f"posterior SBC, conditional on {regression / 'observed.json'}" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replicates"]["succeeded"] == 4
    assert summary["run"]["posterior"]["reference_fit"]["kept"] == 200
