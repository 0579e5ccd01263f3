"""The trigger handler against moto's S3 and Batch, with S3 events built inline."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from runtime.aws import trigger
from runtime.aws.manifest import Manifest
from runtime.store.keys import (
    compiled_marker_key,
    replicates_of_result_key,
    result_batch_key,
    result_key,
    results_prefix,
    spec_key,
)
from runtime.store.s3 import S3Store
from tests.runtime.helpers.batch_runner import (
    CREDENTIALS,
    BatchRunner,
    assert_succeeded,
    create_fake_batch,
    create_versioned_bucket,
)
from tests.runtime.helpers.engines_present import requires_cmdstan
from tests.runtime.helpers.hand_built_ensemble import hand_built_spec, publish_block

BUCKET = "stanfleet-test-bucket"
ENSEMBLE = "0123456789abcdef0123"
MODEL_CODE = "parameters { real mu; } model { mu ~ normal(0, 1); }"


@pytest.fixture
def aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()
    with mock_aws(config={"batch": {"use_docker": False}}):
        s3 = create_versioned_bucket(BUCKET)
        publish_spec(s3)
        fake_batch = create_fake_batch(bucket=BUCKET)
        for name, value in fake_batch.trigger_environment().items():
            monkeypatch.setenv(name, value)
        yield {"s3": s3, "batch": boto3.client("batch"), "queue": fake_batch.job_queue_arn}
        trigger.s3_client.cache_clear()
        trigger.batch_client.cache_clear()


def publish_spec(s3: Any) -> None:
    """The parts of the ensemble spec the trigger reads (the submitter publishes the whole spec)."""
    spec = {"engine": "cmdstanpy", "model_code": MODEL_CODE}
    s3.put_object(Bucket=BUCKET, Key=spec_key(ENSEMBLE), Body=json.dumps(spec).encode())


def marker() -> str:
    """The compile marker of the test ensemble's model for the fake fit job definition."""
    return compiled_marker_key(os.environ["FIT_JOB_DEFINITION_ARN"], "cmdstanpy", MODEL_CODE)


def upload(s3: Any, payload: bytes, key: str = f"manifests/{ENSEMBLE}.json") -> dict[str, Any]:
    """Upload a manifest and return the S3 event that upload produces (key URL-encoded, as S3 sends it)."""
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=payload)["VersionId"]
    encoded = key.replace(" ", "+")
    return {
        "Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": encoded, "versionId": version}}}]
    }


def manifest(replicates: int, per_child: int) -> bytes:
    return Manifest(ensemble_id=ENSEMBLE, replicates=replicates, replicates_per_child=per_child).to_json()


def jobs(batch: Any, queue: str) -> list[dict[str, Any]]:
    """Every job submitted to the queue, once each, without array children (``<parent id>:<index>``)."""
    ids: set[str] = set()
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        listed = batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        ids.update(j["jobId"] for j in listed if ":" not in j["jobId"])
    return batch.describe_jobs(jobs=sorted(ids))["jobs"] if ids else []


def test_manifest_becomes_a_compile_job_and_a_dependent_array_job(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    s3.put_object(Bucket=BUCKET, Key=result_key(ENSEMBLE, 0), Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key=result_batch_key(ENSEMBLE, [3], "w"), Body=b"{}")  # a batch of one
    outcome = trigger.handler(upload(s3, manifest(10, 3)), None)["outcomes"][0]
    assert outcome["status"] == "submitted"
    compile_id, fit_id = outcome["job_ids"]
    described = {job["jobId"]: job for job in jobs(aws["batch"], aws["queue"])}
    assert described[fit_id]["arrayProperties"]["size"] == 3  # 8 missing replicates, 3 per child
    assert described[fit_id]["dependsOn"] == [{"jobId": compile_id}]
    assert described[fit_id]["parameters"]["plan"] == outcome["claim"]
    assert described[compile_id]["parameters"]["store"] == f"s3://{BUCKET}"
    assert described[compile_id]["parameters"]["compiled_marker"] == marker()
    plan = json.loads(s3.get_object(Bucket=BUCKET, Key=outcome["claim"])["Body"].read())
    assert plan["missing"] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert plan["replicates_per_child"] == 3
    assert plan["job_ids"] == [compile_id, fit_id]


def test_duplicate_events_submit_once(aws: dict[str, Any]) -> None:
    event = upload(aws["s3"], manifest(4, 2))
    first = trigger.handler(event, None)["outcomes"][0]
    again = trigger.handler(event, None)["outcomes"][0]
    assert first["status"] == "submitted"
    assert again["status"] == "duplicate"
    assert len(jobs(aws["batch"], aws["queue"])) == 2


def test_a_new_upload_of_the_same_manifest_is_a_new_submission(aws: dict[str, Any]) -> None:
    first = trigger.handler(upload(aws["s3"], manifest(4, 2)), None)["outcomes"][0]
    second = trigger.handler(upload(aws["s3"], manifest(4, 2)), None)["outcomes"][0]
    assert first["claim"] != second["claim"]
    assert second["status"] == "submitted"


def test_a_stale_claim_of_a_crashed_invocation_is_taken_over(aws: dict[str, Any]) -> None:
    event = upload(aws["s3"], manifest(4, 2))
    version = event["Records"][0]["s3"]["object"]["versionId"]
    claim_key = f"claims/{ENSEMBLE}/{version}.json"
    stale = {"claimed_at": time.time() - trigger.STALE_CLAIM_SECONDS - 1, "missing": [0, 1, 2, 3]}
    aws["s3"].put_object(Bucket=BUCKET, Key=claim_key, Body=json.dumps(stale).encode())
    assert trigger.handler(event, None)["outcomes"][0]["status"] == "submitted"


def test_a_fresh_claim_without_jobs_is_left_to_its_holder(aws: dict[str, Any]) -> None:
    event = upload(aws["s3"], manifest(4, 2))
    version = event["Records"][0]["s3"]["object"]["versionId"]
    fresh = {"claimed_at": time.time(), "missing": [0, 1, 2, 3]}
    aws["s3"].put_object(
        Bucket=BUCKET, Key=f"claims/{ENSEMBLE}/{version}.json", Body=json.dumps(fresh).encode()
    )
    assert trigger.handler(event, None)["outcomes"][0]["status"] == "duplicate"
    assert jobs(aws["batch"], aws["queue"]) == []


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1]",
        json.dumps({"ensemble_id": "x", "replicates": 3, "replicates_per_child": 1, "version": 1}).encode(),
        json.dumps(
            {"ensemble_id": ENSEMBLE, "replicates": 0, "replicates_per_child": 1, "version": 1}
        ).encode(),
    ],
)
def test_a_malformed_manifest_is_rejected_without_submission_or_claim(
    aws: dict[str, Any], payload: bytes
) -> None:
    outcome = trigger.handler(upload(aws["s3"], payload), None)["outcomes"][0]
    assert outcome["status"] == "rejected"
    assert jobs(aws["batch"], aws["queue"]) == []
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="claims/")


def test_complete_ensemble_submits_nothing(aws: dict[str, Any]) -> None:
    for replicate in range(2):
        aws["s3"].put_object(Bucket=BUCKET, Key=result_key(ENSEMBLE, replicate), Body=b"{}")
    assert trigger.handler(upload(aws["s3"], manifest(2, 1)), None)["outcomes"][0]["status"] == "complete"
    assert jobs(aws["batch"], aws["queue"]) == []


def test_ensembles_larger_than_one_array_are_split(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger, "MAX_ARRAY_SIZE", 4)
    outcome = trigger.handler(upload(aws["s3"], manifest(9, 1)), None)["outcomes"][0]
    described = {job["jobId"]: job for job in jobs(aws["batch"], aws["queue"])}
    fits = [described[job_id] for job_id in outcome["job_ids"][1:]]
    assert [job.get("arrayProperties", {}).get("size") for job in fits] == [4, 4, None]
    offsets = [job["container"]["environment"] for job in fits]
    assert [
        {"name": "STANFLEET_CHILD_OFFSET", "value": v} in env for env, v in zip(offsets, "048", strict=True)
    ] == [True] * 3


def test_keys_are_url_decoded_and_other_keys_ignored(aws: dict[str, Any]) -> None:
    event = upload(aws["s3"], manifest(2, 2), key="manifests/my run.json")
    assert event["Records"][0]["s3"]["object"]["key"] == "manifests/my+run.json"
    assert trigger.handler(event, None)["outcomes"][0]["status"] == "submitted"
    other = upload(aws["s3"], b"{}", key="results/x.json")
    assert trigger.handler(other, None)["outcomes"][0]["status"] == "ignored"


def test_importing_the_handler_leaves_numpy_out() -> None:
    code = "import sys, runtime.aws.trigger; print('numpy' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "False\n"
    )


GATE = "a-job-batch-never-finishes"
"""moto's default Batch keeps a job that depends on this id PENDING (real Batch would refuse the id)."""


@pytest.fixture
def queued(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto's default Batch: jobs behind an unfinished dependency stay PENDING, like a busy queue."""
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()
    with mock_aws():
        s3 = create_versioned_bucket(BUCKET)
        publish_spec(s3)
        fake_batch = create_fake_batch(bucket=BUCKET)
        for name, value in fake_batch.trigger_environment().items():
            monkeypatch.setenv(name, value)
        batch = boto3.client("batch")
        earlier = [
            batch.submit_job(
                jobName=f"stanfleet-{ENSEMBLE}-{kind}",
                jobQueue=fake_batch.job_queue_arn,
                jobDefinition=getattr(fake_batch, f"{kind}_job_definition_arn"),
                dependsOn=[{"jobId": GATE}],
            )["jobId"]
            for kind in ("compile", "fit")
        ]
        yield {"s3": s3, "batch": batch, "queue": fake_batch.job_queue_arn, "earlier": earlier}
        for job_id in earlier:  # let moto's job threads end
            batch.terminate_job(jobId=job_id, reason="test over")
        trigger.s3_client.cache_clear()
        trigger.batch_client.cache_clear()


def earlier_claim(s3: Any, job_ids: list[str], missing: list[int], compile_job: str | None = None) -> None:
    """The claim a first submission left, its jobs still queued (claims before 2026-12-07 name no
    ``compile_job``)."""
    plan: dict[str, Any] = {
        "ensemble_id": ENSEMBLE,
        "missing": missing,
        "replicates_per_child": 2,
        "job_ids": job_ids,
    }
    if compile_job is not None:
        plan["compile_job"] = compile_job
    s3.put_object(Bucket=BUCKET, Key=f"claims/{ENSEMBLE}/first-upload.json", Body=json.dumps(plan).encode())


def test_a_rerun_while_the_first_jobs_run_attaches_to_them(queued: dict[str, Any]) -> None:
    earlier_claim(queued["s3"], queued["earlier"], missing=[0, 1, 2, 3])
    outcome = trigger.handler(upload(queued["s3"], manifest(4, 2)), None)["outcomes"][0]
    assert outcome["status"] == "attached"
    assert outcome["job_ids"] == queued["earlier"]  # the submitter follows the running jobs
    plan = json.loads(queued["s3"].get_object(Bucket=BUCKET, Key=outcome["claim"])["Body"].read())
    assert plan["missing"] == []
    assert plan["job_ids"] == queued["earlier"]
    assert {job["jobId"] for job in jobs(queued["batch"], queued["queue"])} == set(queued["earlier"])


def test_a_rerun_with_a_larger_r_submits_only_what_the_running_jobs_do_not_cover(
    queued: dict[str, Any],
) -> None:
    earlier_claim(queued["s3"], queued["earlier"], missing=[0, 1, 2, 3])
    queued["s3"].put_object(Bucket=BUCKET, Key=result_key(ENSEMBLE, 5), Body=b"{}")
    outcome = trigger.handler(upload(queued["s3"], manifest(7, 2)), None)["outcomes"][0]
    assert outcome["status"] == "submitted"
    plan = json.loads(queued["s3"].get_object(Bucket=BUCKET, Key=outcome["claim"])["Body"].read())
    assert plan["missing"] == [4, 6]
    assert outcome["job_ids"][:2] == queued["earlier"]
    assert len(outcome["job_ids"]) == 4  # + a compile job and one fit job (2 replicates, 2 per child)


def test_new_array_jobs_wait_for_the_running_compile_job_instead_of_compiling_again(
    queued: dict[str, Any],
) -> None:
    """A --wait submission uploads a manifest each time its replicates double: one compile job for all."""
    compile_job, fit_job = queued["earlier"]
    earlier_claim(queued["s3"], queued["earlier"], missing=[0, 1, 2, 3], compile_job=compile_job)
    outcome = trigger.handler(upload(queued["s3"], manifest(8, 2)), None)["outcomes"][0]
    assert outcome["status"] == "submitted"
    *earlier, new_fit = outcome["job_ids"]
    assert earlier == [compile_job, fit_job]  # no second compile job
    (described,) = queued["batch"].describe_jobs(jobs=[new_fit])["jobs"]
    assert described["dependsOn"] == [{"jobId": compile_job}]
    assert described["arrayProperties"]["size"] == 2  # replicates 4..7, 2 per child
    plan = json.loads(queued["s3"].get_object(Bucket=BUCKET, Key=outcome["claim"])["Body"].read())
    assert plan["compile_job"] == compile_job  # the next manifest waits for it too


def test_a_model_already_compiled_for_this_job_definition_gets_no_compile_job(aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key=marker(), Body=b"{}")
    outcome = trigger.handler(upload(aws["s3"], manifest(4, 2)), None)["outcomes"][0]
    assert outcome["status"] == "submitted"
    (fit_id,) = outcome["job_ids"]
    (described,) = jobs(aws["batch"], aws["queue"])
    assert described["jobId"] == fit_id
    assert described["jobDefinition"] == os.environ["FIT_JOB_DEFINITION_ARN"]
    assert not described.get("dependsOn")
    assert described["arrayProperties"]["size"] == 2


def test_a_manifest_of_an_ensemble_without_a_spec_is_rejected(aws: dict[str, Any]) -> None:
    aws["s3"].delete_object(Bucket=BUCKET, Key=spec_key(ENSEMBLE))
    outcome = trigger.handler(upload(aws["s3"], manifest(4, 2)), None)["outcomes"][0]
    assert outcome["status"] == "rejected"
    assert "has no spec" in outcome["reason"]
    assert jobs(aws["batch"], aws["queue"]) == []
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="claims/")


class HeldQueue:
    """The trigger's Batch client on moto's default Batch, with every job it submits kept queued.

    Real Batch leaves a job SUBMITTED or RUNNABLE for seconds at least; moto's Batch without Docker
    reports it SUCCEEDED at once, so a second manifest would not see the first one's jobs as running.
    Each submission that depends on nothing is made to depend on :data:`GATE`: it and the jobs behind
    it stay PENDING until :meth:`release`. Records every SubmitJob request (with the id it got).

    With a ``rendezvous`` (a barrier of the racing invocations), each invocation's first SubmitJob
    waits, for a few seconds at most, until every invocation has reached its own: the widest race S3
    and Lambda allow, made certain. Invocations that are serialized never all get there, and go on
    when the wait times out.
    """

    def __init__(self, batch: Any) -> None:
        self._batch = batch
        self._lock = threading.Lock()
        self._waited: set[int] = set()
        self.rendezvous: threading.Barrier | None = None
        self.submitted: list[dict[str, Any]] = []

    def submit_job(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            first = threading.get_ident() not in self._waited
            self._waited.add(threading.get_ident())
        if self.rendezvous is not None and first:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.rendezvous.wait(timeout=3)
        held = {**request, "dependsOn": request.get("dependsOn") or [{"jobId": GATE}]}
        job_id = str(self._batch.submit_job(**held)["jobId"])
        with self._lock:
            self.submitted.append({**request, "jobId": job_id})
        return {"jobId": job_id}

    def describe_jobs(self, **request: Any) -> Any:
        return self._batch.describe_jobs(**request)

    def job_ids(self) -> list[str]:
        return [request["jobId"] for request in self.submitted]

    def release(self) -> None:
        """Terminate every held job and array child (moto's job threads wait on the gate until then)."""
        for request in self.submitted:
            size = request.get("arrayProperties", {}).get("size", 0)
            for job_id in [request["jobId"], *(f"{request['jobId']}:{i}" for i in range(size))]:
                self._batch.terminate_job(jobId=job_id, reason="test over")


@contextlib.contextmanager
def held_queue(bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldQueue]:
    """The fake Batch and the trigger's environment, its Batch client a :class:`HeldQueue`.

    Both trigger clients are made here: creating clients is not thread-safe, so not in racing threads.
    """
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()
    fake_batch = create_fake_batch(bucket=bucket)
    for name, value in fake_batch.trigger_environment().items():
        monkeypatch.setenv(name, value)
    trigger.s3_client()
    held = HeldQueue(trigger.batch_client())
    monkeypatch.setattr(trigger, "batch_client", lambda: held)
    try:
        yield held
    finally:
        held.release()
        trigger.s3_client.cache_clear()


@pytest.fixture
def racing(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The test bucket with the ensemble's spec, and moto's default Batch behind a :class:`HeldQueue`."""
    with mock_aws():
        s3 = create_versioned_bucket(BUCKET)
        publish_spec(s3)
        with held_queue(BUCKET, monkeypatch) as held:
            yield {"s3": s3, "held": held}


def upload_twice(s3: Any, bucket: str, payload: bytes, key: str) -> list[dict[str, Any]]:
    """Two submitters upload the same manifest (two versions of its key); the S3 event of each upload."""
    return [
        {
            "Records": [
                {
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {
                            "key": key,
                            "versionId": s3.put_object(Bucket=bucket, Key=key, Body=payload)["VersionId"],
                        },
                    }
                }
            ]
        }
        for _ in range(2)
    ]


Deliver = Callable[[list[dict[str, Any]], HeldQueue], list[dict[str, Any]]]


def one_invocation(events: list[dict[str, Any]], held: HeldQueue) -> list[dict[str, Any]]:
    """Both uploads' records in one invocation, as S3 may batch them."""
    records = [record for event in events for record in event["Records"]]
    return list(trigger.handler({"Records": records}, None)["outcomes"])


def two_invocations(events: list[dict[str, Any]], held: HeldQueue) -> list[dict[str, Any]]:
    """One invocation per upload, the second after the first has returned."""
    return [outcome for event in events for outcome in trigger.handler(event, None)["outcomes"]]


def two_invocations_at_once(events: list[dict[str, Any]], held: HeldQueue) -> list[dict[str, Any]]:
    """One invocation per upload, concurrently: two threads started together by a barrier, which
    meet again at their first SubmitJob if both get that far (:class:`HeldQueue`)."""
    start = threading.Barrier(len(events))
    held.rendezvous = threading.Barrier(len(events))

    def invoke(event: dict[str, Any]) -> list[dict[str, Any]]:
        start.wait(timeout=10)
        return list(trigger.handler(event, None)["outcomes"])

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return [outcome for outcomes in pool.map(invoke, events) for outcome in outcomes]


AT_ONCE = pytest.param(two_invocations_at_once, id="two-invocations-at-once")
"""Two uploads are two claim keys: without the ensemble's lease each invocation looked for the other's
running jobs before either had recorded any, and both submitted every replicate."""


def replicates_of_fit_jobs(s3: Any, bucket: str, described: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The replicates each submitted fit job's children fit: their slices of the plan the job names,
    read as ``runtime.fitting.session.replicates_of_child`` reads them."""
    covered: dict[str, list[int]] = {}
    for job in described:
        if job["jobDefinition"] != os.environ["FIT_JOB_DEFINITION_ARN"]:
            continue
        plan = json.loads(s3.get_object(Bucket=bucket, Key=job["parameters"]["plan"])["Body"].read())
        environment = {e["name"]: e["value"] for e in job["container"]["environment"]}
        offset = int(environment.get("STANFLEET_CHILD_OFFSET", "0"))
        size = plan["replicates_per_child"]
        children = range(offset, offset + job.get("arrayProperties", {}).get("size", 1))
        covered[job["jobId"]] = [r for c in children for r in plan["missing"][c * size : (c + 1) * size]]
    return covered


def assert_one_set_of_jobs(
    s3: Any, bucket: str, held: HeldQueue, outcomes: list[dict[str, Any]], replicates: int
) -> None:
    """One submission's jobs (a compile job and one array job), each replicate in exactly one of them
    and planned by exactly one claim; the other upload's claim follows the same jobs."""
    described = jobs(boto3.client("batch"), os.environ["JOB_QUEUE_ARN"])
    assert sorted(job["jobId"] for job in described) == sorted(held.job_ids())
    covered = replicates_of_fit_jobs(s3, bucket, described)
    assert sorted(r for share in covered.values() for r in share) == list(range(replicates)), covered
    assert [request["jobName"].rsplit("-", 1)[1] for request in held.submitted] == ["compile", "0"]
    claims = [
        json.loads(s3.get_object(Bucket=bucket, Key=outcome["claim"])["Body"].read()) for outcome in outcomes
    ]
    assert sorted(r for plan in claims for r in plan["missing"]) == list(range(replicates))
    assert [sorted(plan["job_ids"]) for plan in claims] == [sorted(held.job_ids())] * 2
    assert sorted(outcome["status"] for outcome in outcomes) == ["attached", "submitted"]


@pytest.mark.parametrize(
    "deliver",
    [
        pytest.param(one_invocation, id="one-invocation"),
        pytest.param(two_invocations, id="two-invocations"),
        AT_ONCE,
    ],
)
def test_two_manifests_of_one_ensemble_uploaded_at_once_give_one_set_of_jobs(
    racing: dict[str, Any], deliver: Deliver
) -> None:
    events = upload_twice(racing["s3"], BUCKET, manifest(6, 2), f"manifests/{ENSEMBLE}.json")
    outcomes = deliver(events, racing["held"])
    assert_one_set_of_jobs(racing["s3"], BUCKET, racing["held"], outcomes, replicates=6)


@pytest.fixture
def moto_server(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on a free port (worker subprocesses cannot see ``mock_aws``); its endpoint."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no session cached with another endpoint
    try:
        yield endpoint
    finally:
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"{}")
        urllib.request.urlopen(reset).close()  # the server shares moto's in-process state: leave it empty
        server.stop()


@pytest.mark.slow
@requires_cmdstan
@pytest.mark.parametrize("deliver", [pytest.param(two_invocations, id="two-invocations"), AT_ONCE])
def test_two_manifests_uploaded_at_once_fit_every_replicate_once(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deliver: Deliver
) -> None:
    bucket = "stanfleet-race-bucket"
    s3 = create_versioned_bucket(bucket)
    store = S3Store(bucket)
    spec = hand_built_spec("cmdstanpy")  # 2 chains of 200 + 200 iterations
    store.put(spec_key(spec.ensemble_id), spec.to_json())
    publish_block(store, spec, 0, bad_replicates=set())
    payload = Manifest(ensemble_id=spec.ensemble_id, replicates=4, replicates_per_child=2).to_json()
    events = upload_twice(s3, bucket, payload, f"manifests/{spec.ensemble_id}.json")
    with held_queue(bucket, monkeypatch) as held:
        outcomes = deliver(events, held)
        assert_one_set_of_jobs(s3, bucket, held, outcomes, replicates=4)
        runner = BatchRunner(
            boto3.client("batch"),
            environment={**CREDENTIALS, "AWS_ENDPOINT_URL": moto_server},
            log_dir=tmp_path / "batch-logs",
        )
        assert_succeeded(runner.run_jobs(held.job_ids()))
    versions = s3.list_object_versions(Bucket=bucket, Prefix=results_prefix(spec.ensemble_id))["Versions"]
    fitted = sorted(r for v in versions for r in replicates_of_result_key(v["Key"]))
    assert fitted == list(range(4))  # each replicate fitted and written once
    for version in versions:
        body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        assert [json.loads(line)["status"] for line in body.splitlines()] == ["ok", "ok"]  # a child's two
