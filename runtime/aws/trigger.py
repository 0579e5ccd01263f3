"""The trigger Lambda: an uploaded manifest becomes one compile job and array jobs over what is missing.

The compile job is left out when the marker an earlier compile job wrote for the same model and job
definition (``runtime.store.keys.compiled_marker_key``) is in the bucket: the build is already there.

Stdlib + boto3 only (plus the stdlib-only ``runtime.store.keys``, ``runtime.aws.manifest`` and
``runtime.aws.batch_jobs``), so cold starts stay fast. S3 events arrive at least once and unordered, so the handler claims each manifest upload
with a conditional write (``If-None-Match: *``) under ``CLAIM_PREFIX`` before submitting anything:
duplicate events lead to one submission. The claim object doubles as the array plan that the
children read. Two uploads of one ensemble handled at once (two submitters racing, two concurrent
invocations) take turns: each holds the ensemble's lease (``<CLAIM_PREFIX><id>.lease``, taken and
released with conditional writes) from reading the running submissions until its claim records its job
ids, so the second sees the first's jobs and attaches to them. A new upload while an earlier
submission's jobs are still queued or running (the user reran the submitter) submits jobs only for
replicates those jobs do not cover, and records the running jobs in its claim for the submitter to
follow. A malformed manifest is logged and dropped (no exception, so no retry storm).

Environment: JOB_QUEUE_ARN, FIT_JOB_DEFINITION_ARN, COMPILE_JOB_DEFINITION_ARN, MANIFEST_PREFIX,
CLAIM_PREFIX.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from runtime.aws.batch_jobs import TERMINAL, describe_jobs, submitted_claims
from runtime.aws.manifest import Manifest, ManifestError, parse_manifest
from runtime.store.keys import (
    claim_key,
    compiled_marker_key,
    replicates_of_result_key,
    results_prefix,
    spec_key,
)

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

MAX_ARRAY_SIZE = 10_000
"""AWS Batch's largest array job; bigger ensembles are split into several array jobs."""
STALE_CLAIM_SECONDS = 15 * 60
"""A claim without job ids (or a lease) older than the Lambda's longest run belongs to a crashed
invocation."""
LEASE_WAIT_SECONDS = 120.0
"""How long an invocation waits for another one's lease on the ensemble before it fails (and Lambda
retries it); a lease is held for a listing and a few SubmitJob calls."""
LEASE_POLL_SECONDS = 0.5
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict")
"""What S3 answers a conditional write whose condition no longer holds."""


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """The S3 client, made on first use (not at import)."""
    return boto3.client("s3")


@lru_cache(maxsize=1)
def batch_client() -> Any:
    """The Batch client, made on first use (not at import)."""
    return boto3.client("batch")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle every record of an S3 object-created event; unexpected failures raise (and retry)."""
    outcomes = []
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        upload = record["s3"]["object"].get("versionId") or record["s3"]["object"].get("eTag", "unversioned")
        outcomes.append(handle_manifest(bucket, key, upload))
    return {"outcomes": outcomes}


def handle_manifest(bucket: str, key: str, upload: str) -> dict[str, Any]:
    """Claim one manifest upload and submit its jobs; return what happened."""
    if not key.startswith(os.environ["MANIFEST_PREFIX"]) or not key.endswith(".json"):
        LOG.warning("ignored %s: not a manifest", key)
        return {"key": key, "status": "ignored"}
    try:
        manifest = parse_manifest(s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())
    except ManifestError as exc:
        LOG.error("rejected manifest s3://%s/%s: %s", bucket, key, exc)
        return {"key": key, "status": "rejected", "reason": str(exc)}

    marker = compiled_marker_of(bucket, manifest.ensemble_id)
    if marker is None:
        reason = f"ensemble {manifest.ensemble_id} has no spec in the bucket (or the trigger may not read it)"
        LOG.error("rejected manifest s3://%s/%s: %s", bucket, key, reason)
        return {"key": key, "status": "rejected", "reason": reason}

    claimed = claim_key(manifest.ensemble_id, upload, os.environ["CLAIM_PREFIX"])
    with ensemble_lease(bucket, manifest.ensemble_id):
        return submit_manifest(bucket, key, upload, manifest, claimed, marker)


def submit_manifest(
    bucket: str, key: str, upload: str, manifest: Manifest, claimed: str, marker: str
) -> dict[str, Any]:
    """Claim the upload and submit jobs for what neither the results nor running jobs cover.

    This runs under the ensemble's lease.
    """
    running = running_submissions(bucket, manifest.ensemble_id, claimed)
    missing = [r for r in missing_replicates(bucket, manifest) if r not in running.replicates]
    plan = {
        "ensemble_id": manifest.ensemble_id,
        "manifest": key,
        "replicates_per_child": manifest.replicates_per_child,
        "missing": missing,
        "claimed_at": time.time(),
    }
    etag = claim(bucket, claimed, plan)
    if etag is None:
        LOG.info("skipped %s: upload %s already claimed", key, upload)
        return {"key": key, "status": "duplicate"}
    if not missing and not running.job_ids:
        LOG.info("nothing to fit for ensemble %s", manifest.ensemble_id)
        return {"key": key, "status": "complete", "claim": claimed}

    new_jobs, compile_job = (
        submit_jobs(bucket, manifest, claimed, len(missing), marker, running.compile_job)
        if missing
        else ([], running.compile_job)
    )
    job_ids = [*running.job_ids, *new_jobs]
    recorded = {**plan, "job_ids": job_ids, "compile_job": compile_job}
    s3_client().put_object(Bucket=bucket, Key=claimed, Body=json.dumps(recorded).encode(), IfMatch=etag)
    status = "submitted" if missing else "attached"
    LOG.info(
        "%s ensemble %s: %d replicates to fit, %d already in running jobs, jobs %s",
        status,
        manifest.ensemble_id,
        len(missing),
        len(running.replicates),
        job_ids,
    )
    return {"key": key, "status": status, "claim": claimed, "job_ids": job_ids}


def lease_key(ensemble_id: str) -> str:
    """Key of the ensemble's lease: beside its claims, not among them (their listing skips it)."""
    return f"{os.environ['CLAIM_PREFIX']}{ensemble_id}.lease"


@contextmanager
def ensemble_lease(bucket: str, ensemble_id: str) -> Iterator[None]:
    """Hold the ensemble's lease for the block, waiting up to LEASE_WAIT_SECONDS for another holder.

    Taken with a conditional write (a new object, or over a released or stale lease's ETag) and released
    by overwriting it, again conditionally: the trigger's role writes claims but deletes nothing. A
    holder that crashed leaves its lease, taken over once it is STALE_CLAIM_SECONDS old.
    """
    key = lease_key(ensemble_id)
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    etag = take_lease(bucket, key)
    while etag is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"ensemble {ensemble_id}'s lease s3://{bucket}/{key} stayed held")
        time.sleep(LEASE_POLL_SECONDS)
        etag = take_lease(bucket, key)
    try:
        yield
    finally:
        try:
            s3_client().put_object(
                Bucket=bucket, Key=key, Body=json.dumps({"held": False}).encode(), IfMatch=etag
            )
        except ClientError as exc:  # taken over as stale meanwhile: it is no longer ours to release
            if exc.response["Error"]["Code"] not in _CONFLICT:
                raise


def take_lease(bucket: str, key: str) -> str | None:
    """Take the lease if it is free, released or stale; return the ETag of our hold, or None."""
    hold = {"held": True, "taken_at": time.time()}
    return write_unless_held(
        bucket, key, hold, lambda lease: bool(lease.get("held")) and not is_stale(lease["taken_at"])
    )


def is_stale(since: float) -> bool:
    """Whether a claim or lease taken at ``since`` (epoch seconds) outlived any invocation."""
    return time.time() - since >= STALE_CLAIM_SECONDS


def compiled_marker_of(bucket: str, ensemble_id: str) -> str | None:
    """The compile marker key of the ensemble's model (from its spec); None if it has no spec."""
    try:
        spec = json.loads(s3_client().get_object(Bucket=bucket, Key=spec_key(ensemble_id))["Body"].read())
    except ClientError as exc:
        # The role may read every spec but not list their prefix: S3 says 403 for a missing one.
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied"):
            return None
        raise
    return compiled_marker_key(os.environ["FIT_JOB_DEFINITION_ARN"], spec["engine"], spec["model_code"])


@dataclass(frozen=True)
class RunningSubmissions:
    """Earlier submissions of an ensemble with jobs still queued or running."""

    job_ids: list[str]
    """Their unfinished jobs, which a new submission waits on instead of submitting them again."""
    replicates: set[int]
    """The replicates their plans hand to those jobs."""
    compile_job: str | None = None
    """Their compile job, if it has not ended: new array jobs wait for it instead of compiling again
    (a --wait submission uploads a manifest each time its published replicates double)."""


def running_submissions(bucket: str, ensemble_id: str, own_claim: str) -> RunningSubmissions:
    """The ensemble's other claims whose jobs have not all ended (a submitter rerun while they run).

    One listing of the ensemble's claims, a read per claim with jobs, one DescribeJobs per 100 jobs.
    """
    prefix = f"{os.environ['CLAIM_PREFIX']}{ensemble_id}/"
    claims = [held for key, held in submitted_claims(s3_client(), bucket, prefix).items() if key != own_claim]
    job_ids = sorted({str(job_id) for held in claims for job_id in held["job_ids"]})
    statuses = {job["jobId"]: job["status"] for job in describe_jobs(batch_client(), job_ids)}
    running = RunningSubmissions([], set())
    compile_job = None
    for held in claims:
        unfinished = [job_id for job_id in held["job_ids"] if statuses.get(job_id) not in (None, *TERMINAL)]
        if unfinished:
            running.job_ids.extend(unfinished)
            running.replicates.update(int(r) for r in held["missing"])
        if held.get("compile_job") in unfinished:
            compile_job = str(held["compile_job"])
    return replace(running, compile_job=compile_job)


def missing_replicates(bucket: str, manifest: Manifest) -> list[int]:
    """Replicates ``0..R-1`` without a result in the bucket (one listing, paginated)."""
    done: set[int] = set()
    pages = (
        s3_client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=results_prefix(manifest.ensemble_id))
    )
    for page in pages:
        done.update(r for item in page.get("Contents", []) for r in replicates_of_result_key(item["Key"]))
    return [r for r in range(manifest.replicates) if r not in done]


def claim(bucket: str, key: str, plan: dict[str, Any]) -> str | None:
    """Write the claim if nobody holds it, or take over a stale one; return its ETag, or None."""
    return write_unless_held(
        bucket, key, plan, lambda held: "job_ids" in held or not is_stale(held["claimed_at"])
    )


def write_unless_held(
    bucket: str, key: str, body: dict[str, Any], held: Callable[[dict[str, Any]], bool]
) -> str | None:
    """Write ``body`` as a new object, or over the object there unless ``held`` says it still holds.

    Return the written ETag, or None. Both writes are conditional, so of two writers one wins.
    """
    payload = json.dumps(body).encode()
    try:
        return str(s3_client().put_object(Bucket=bucket, Key=key, Body=payload, IfNoneMatch="*")["ETag"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in _CONFLICT:
            raise
    current = s3_client().get_object(Bucket=bucket, Key=key)
    if held(json.loads(current["Body"].read())):
        return None
    try:  # released, or its holder died between taking it and finishing: take over, but only once
        return str(
            s3_client().put_object(Bucket=bucket, Key=key, Body=payload, IfMatch=current["ETag"])["ETag"]
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] in _CONFLICT:
            return None
        raise


def submit_jobs(
    bucket: str,
    manifest: Manifest,
    plan_key: str,
    missing: int,
    compiled_marker: str,
    running_compile_job: str | None = None,
) -> tuple[list[str], str | None]:
    """Submit a compile job unless the model's build is published or being built, then array jobs.

    The build is published when its marker exists, and being built by ``running_compile_job`` (an
    earlier submission's, not ended). The array jobs run over the plan's children, each depending on the
    compile job when there is one. Return the new jobs and the compile job they depend on.
    """
    queue = os.environ["JOB_QUEUE_ARN"]
    name = f"stanfleet-{manifest.ensemble_id}"
    parameters = {
        "store": f"s3://{bucket}",
        "ensemble_id": manifest.ensemble_id,
        "plan": plan_key,
        "compiled_marker": compiled_marker,
    }
    job_ids: list[str] = []
    depends_on: list[dict[str, str]] = []
    compile_job = None
    if not object_exists(bucket, compiled_marker):
        compile_job = running_compile_job
        if compile_job is None:
            compile_job = batch_client().submit_job(
                jobName=f"{name}-compile",
                jobQueue=queue,
                jobDefinition=os.environ["COMPILE_JOB_DEFINITION_ARN"],
                parameters=parameters,
            )["jobId"]
            job_ids.append(compile_job)
        depends_on.append({"jobId": compile_job})
    children = -(-missing // manifest.replicates_per_child)
    for offset in range(0, children, MAX_ARRAY_SIZE):
        size = min(MAX_ARRAY_SIZE, children - offset)
        request: dict[str, Any] = {
            "jobName": f"{name}-fit-{offset // MAX_ARRAY_SIZE}",
            "jobQueue": queue,
            "jobDefinition": os.environ["FIT_JOB_DEFINITION_ARN"],
            "parameters": parameters,
            "containerOverrides": {"environment": [{"name": "STANFLEET_CHILD_OFFSET", "value": str(offset)}]},
        }
        if depends_on:
            request["dependsOn"] = depends_on
        if size > 1:  # Batch arrays hold 2..10,000 children; a single child is a plain job (index 0)
            request["arrayProperties"] = {"size": size}
        job_ids.append(batch_client().submit_job(**request)["jobId"])
    return job_ids, compile_job


def object_exists(bucket: str, key: str) -> bool:
    """Whether the object exists: one listing of its exact key.

    Not a HEAD: the role's ListBucket is limited to a few prefixes, and S3 answers a HEAD of a
    missing key with 404 only to callers allowed to list the whole bucket (else 403).
    """
    listed = s3_client().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return any(item["Key"] == key for item in listed)
