"""The trigger handler against moto's S3 and Batch, with S3 events built inline."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime import trigger
from runtime.keys import compiled_marker_key, result_key, spec_key
from runtime.manifest import Manifest
from tests.runtime.batch_runner import create_fake_batch, create_versioned_bucket

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
    for replicate in (0, 3):
        s3.put_object(Bucket=BUCKET, Key=result_key(ENSEMBLE, replicate), Body=b"{}")
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
    code = "import sys, runtime.trigger; print('numpy' in sys.modules)"
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


def earlier_claim(s3: Any, job_ids: list[str], missing: list[int]) -> None:
    """The claim a first submission left, its jobs still queued."""
    plan = {"ensemble_id": ENSEMBLE, "missing": missing, "replicates_per_child": 2, "job_ids": job_ids}
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
