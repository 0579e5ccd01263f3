"""``python -m runtime.cancel`` against moto: the stack's bucket and claims, and moto's Batch.

Two kinds of moto Batch. Without Docker (``use_docker: False``) every job is SUCCEEDED the moment it
is submitted: the ensembles that have finished. moto's default Batch runs each job in a thread that
first waits for the jobs it depends on, and only then reaches for Docker; a job that depends on a job
id Batch never finishes (:data:`GATE`: real Batch would refuse an unknown id, moto waits for it) stays
PENDING, like a job queued behind a busy compute environment, until it is terminated: then it is
FAILED with the termination's reason, and so are the jobs that depend on it. Docker is never reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.aws.cancellation import REASON
from runtime.cancel import main
from runtime.collect import main as collect_main
from runtime.store.keys import claim_key
from tests.runtime.helpers.batch_runner import (
    FakeBatch,
    create_fake_batch,
    create_stack,
    create_versioned_bucket,
    stack_outputs,
)

STACK = "StanFleetCancel"
BUCKET = "stanfleet-cancel-test"
ENSEMBLE = "0123456789abcdef0123"
GATE = "a-job-batch-never-finishes"
TAIL = "; finished results are kept — resubmit the same command to fit the rest, or "
COLLECT = f"python -m runtime.collect {ENSEMBLE} --stack {STACK}"


@dataclass
class Deployment:
    """The fake stack (bucket, Batch queue and job definitions, CloudFormation outputs) and clients."""

    fake: FakeBatch
    s3: Any
    batch: Any

    def submit(self, kind: str, *, after: str | None = None, size: int | None = None) -> str:
        """Submit a compile or fit job as the trigger does; ``after``: the job it depends on."""
        request: dict[str, Any] = {
            "jobName": f"stanfleet-{ENSEMBLE}-{kind}",
            "jobQueue": self.fake.job_queue_arn,
            "jobDefinition": getattr(self.fake, f"{kind}_job_definition_arn"),
        }
        if after is not None:
            request["dependsOn"] = [{"jobId": after}]
        if size is not None:
            request["arrayProperties"] = {"size": size}
        return str(self.batch.submit_job(**request)["jobId"])

    def claim(self, upload: str, plan: dict[str, Any]) -> None:
        """Write the claim of one manifest upload, as the trigger leaves it."""
        body = {"ensemble_id": ENSEMBLE, "manifest": f"manifests/{ENSEMBLE}.json", **plan}
        key = claim_key(ENSEMBLE, upload, "claims/")
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())

    def describe(self, job_id: str) -> dict[str, Any]:
        (job,) = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        return dict(job)

    def wait_until_failed(self, *job_ids: str) -> None:
        """moto's job threads notice a termination or a failed dependency within a second."""
        deadline = time.monotonic() + 30
        while any(self.describe(job_id)["status"] != "FAILED" for job_id in job_ids):
            assert time.monotonic() < deadline, [self.describe(job_id)["status"] for job_id in job_ids]
            time.sleep(0.1)


def deploy() -> Deployment:
    s3 = create_versioned_bucket(BUCKET)
    fake = create_fake_batch(STACK, bucket=BUCKET)
    create_stack(STACK, stack_outputs(BUCKET, fake))
    return Deployment(fake, s3, boto3.client("batch", region_name="us-east-1"))


@pytest.fixture
def finished(aws_credentials: None) -> Iterator[Deployment]:
    """moto's Batch without Docker: every job has SUCCEEDED once submitted."""
    with mock_aws(config={"batch": {"use_docker": False}}):
        yield deploy()


@pytest.fixture
def queued(aws_credentials: None) -> Iterator[Deployment]:
    """moto's default Batch: jobs behind an unfinished dependency stay PENDING."""
    with mock_aws():
        yield deploy()


def test_unfinished_jobs_are_terminated_and_finished_ones_skipped(
    queued: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # A first submission whose jobs have ended (its compile job failed, so its fit job did too).
    old_compile = queued.submit("compile", after=GATE)
    old_fit = queued.submit("fit", after=old_compile)
    queued.batch.terminate_job(jobId=old_compile, reason="an earlier failure")
    queued.wait_until_failed(old_compile, old_fit)
    queued.claim("upload-1", {"missing": [0, 1, 2], "job_ids": [old_compile, old_fit]})
    # The resubmission: a compile job still queued and an array of three children behind it.
    compile_job = queued.submit("compile", after=GATE)
    fit = queued.submit("fit", after=compile_job, size=3)
    queued.claim("upload-2", {"missing": [0, 1, 2], "job_ids": [compile_job, fit]})

    assert main([ENSEMBLE, "--stack", STACK]) == 0
    assert capsys.readouterr().out == (
        f"cancelled 2 jobs of ensemble {ENSEMBLE} (1 array job with 3 unfinished children); "
        f"2 had already finished{TAIL}{COLLECT} for a report of what finished\n"
    )
    queued.wait_until_failed(compile_job)
    assert queued.describe(compile_job)["statusReason"] == REASON
    parent = queued.describe(fit)
    assert parent["statusReason"] == REASON
    # moto does not pass a parent's termination on to its children (Batch does); they fail here
    # because the compile job they depend on was terminated.
    deadline = time.monotonic() + 30
    while queued.describe(fit)["arrayProperties"]["statusSummary"]["FAILED"] < 3:
        assert time.monotonic() < deadline, queued.describe(fit)["arrayProperties"]
        time.sleep(0.1)
    for job_id in (old_compile, old_fit):  # skipped: what the first submission left is untouched
        assert queued.describe(job_id).get("statusReason") != REASON


def test_jobs_that_have_all_succeeded_are_left_alone(
    finished: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    compile_job = finished.submit("compile")
    fit = finished.submit("fit", after=compile_job, size=2)
    finished.claim("upload-1", {"missing": [0, 1, 2, 3], "job_ids": [compile_job, fit]})
    assert main([ENSEMBLE, "--stack", STACK, "--region", "us-east-1"]) == 0
    assert capsys.readouterr().out == (
        f"nothing to cancel: the 2 jobs of ensemble {ENSEMBLE} have finished; "
        f"{COLLECT} --region us-east-1 writes the report\n"
    )
    for job_id in (compile_job, fit):
        described = finished.describe(job_id)
        assert described["status"] == "SUCCEEDED"
        assert "statusReason" not in described  # moto records a TerminateJob's reason even then


def test_describe_jobs_gets_at_most_100_ids_per_call(
    finished: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    job_ids = [finished.submit("fit") for _ in range(101)]
    finished.claim("upload-1", {"missing": list(range(101)), "job_ids": job_ids[:60]})
    finished.claim("upload-2", {"missing": list(range(60, 101)), "job_ids": job_ids[60:]})
    asked: list[int] = []
    session = boto3.Session()  # the default session cancel's clients come from, with a listener
    session.events.register(
        "provide-client-params.batch.DescribeJobs", lambda params, **_: asked.append(len(params["jobs"]))
    )
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    assert main([ENSEMBLE, "--stack", STACK]) == 0
    assert sorted(asked) == [1, 100]
    assert "the 101 jobs of ensemble" in capsys.readouterr().out


@pytest.mark.parametrize(
    "claims",
    [[], [{"missing": []}]],  # nothing submitted; or a claim of an upload with nothing left to fit
    ids=["no claims", "a claim without jobs"],
)
def test_an_ensemble_without_submitted_jobs_is_a_one_line_error(
    finished: Deployment, capsys: pytest.CaptureFixture[str], claims: list[dict[str, Any]]
) -> None:
    for index, plan in enumerate(claims):
        finished.claim(f"upload-{index}", plan)
    finished.s3.put_object(  # another ensemble's claim under a longer id with the same prefix
        Bucket=BUCKET, Key=claim_key(ENSEMBLE + "ff", "upload", "claims/"), Body=b'{"job_ids": ["x"]}'
    )
    assert main([ENSEMBLE, "--stack", STACK]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: ensemble {ENSEMBLE} has no submitted jobs in s3://{BUCKET}\n"
    assert captured.out == ""


def test_a_missing_stack_is_the_same_error_as_collects(
    finished: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([ENSEMBLE, "--stack", "NoSuchStack"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: stack 'NoSuchStack' not found in region us-east-1")
    assert error.count("\n") == 1
    assert collect_main([ENSEMBLE, "--stack", "NoSuchStack"]) == 1
    assert capsys.readouterr().err == error
