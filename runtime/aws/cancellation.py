"""Stop an ensemble's AWS Batch jobs (``python -m runtime.cancel``).

The job ids are the ones the trigger recorded in the ensemble's claims (``claims/<id>/``, one per
manifest upload) in the deployed stack's bucket; jobs that have ended are skipped and the rest are
terminated. TerminateJob cancels queued jobs and stops running ones alike (CancelJob leaves STARTING
and RUNNING jobs alone); terminating an array parent terminates its children. Results already written
stay in the bucket.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from runtime.aws.batch_jobs import TERMINAL, describe_jobs, submitted_claims
from runtime.aws.stack import read_stack_outputs, stack_command
from runtime.errors import StanFleetError
from runtime.store.keys import CLAIMS

REASON = "cancelled by python -m runtime.cancel"
"""The status reason DescribeJobs reports for every job this command stops."""


def claimed_job_ids(s3: Any, bucket: str, ensemble_id: str) -> list[str]:
    """The job ids recorded in every claim of the ensemble, each once, in claim order."""
    claims = submitted_claims(s3, bucket, f"{CLAIMS}{ensemble_id}/")
    return list(dict.fromkeys(str(job_id) for held in claims.values() for job_id in held["job_ids"]))


def unfinished_children(job: dict[str, Any]) -> int:
    """Children of an array job that have not ended (0 for a plain job)."""
    array = job.get("arrayProperties", {})
    summary = array.get("statusSummary") or {}
    return int(array.get("size", 0)) - sum(summary.get(status, 0) for status in TERMINAL)


def plural(count: int, one: str, many: str) -> str:
    """``1 job``, ``2 jobs``."""
    return f"{count} {one if count == 1 else many}"


def cancel_summary(ensemble_id: str, stopped: list[dict[str, Any]], finished: int, collect: str) -> str:
    """What was stopped, what had ended, and how to go on."""
    if not stopped:
        return (
            f"nothing to cancel: the {plural(finished, 'job', 'jobs')} of ensemble {ensemble_id} "
            f"have finished; {collect} writes the report"
        )
    arrays = [job for job in stopped if "size" in job.get("arrayProperties", {})]
    text = f"cancelled {plural(len(stopped), 'job', 'jobs')} of ensemble {ensemble_id}"
    if arrays:
        children = sum(unfinished_children(job) for job in arrays)
        text += (
            f" ({plural(len(arrays), 'array job', 'array jobs')} with "
            f"{plural(children, 'unfinished child', 'unfinished children')})"
        )
    if finished:
        text += f"; {finished} had already finished"
    return (
        f"{text}; finished results are kept — resubmit the same command to fit the rest, "
        f"or {collect} for a report of what finished"
    )


def cancel_ensemble(ensemble_id: str, *, stack: str, region: str | None) -> str:
    """Terminate the unfinished Batch jobs of the ensemble; return what was stopped, as one line."""
    bucket = read_stack_outputs(stack, region).bucket
    try:
        job_ids = claimed_job_ids(boto3.client("s3", region_name=region), bucket, ensemble_id)
        if not job_ids:
            raise StanFleetError(f"ensemble {ensemble_id} has no submitted jobs in s3://{bucket}")
        batch = boto3.client("batch", region_name=region)
        stopped = [job for job in describe_jobs(batch, job_ids) if job["status"] not in TERMINAL]
        for job in stopped:
            batch.terminate_job(jobId=job["jobId"], reason=REASON)
    except (BotoCoreError, ClientError) as exc:
        raise StanFleetError(f"cannot cancel the jobs of ensemble {ensemble_id}: {exc}") from None
    collect = stack_command("collect", ensemble_id, stack=stack, region=region)
    return cancel_summary(ensemble_id, stopped, len(job_ids) - len(stopped), collect)
