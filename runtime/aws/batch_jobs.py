"""Batch job helpers shared by the trigger Lambda, the Batch executor and ``runtime.cancel``.

Which statuses are final, DescribeJobs in batches, and the submissions recorded in an ensemble's claims.

Standard library and boto3 clients only: the Lambda's asset carries this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

DESCRIBE_JOBS_LIMIT = 100
"""Job ids one DescribeJobs call accepts."""


TERMINAL = ("SUCCEEDED", "FAILED")
"""Batch job statuses that will not change again."""


def submitted_claims(s3: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Every claim under ``prefix`` (one ensemble's) that records job ids, by key, in key order.

    One paginated listing, then one read per claim.
    """
    claims: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            held = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            if held.get("job_ids"):
                claims[item["Key"]] = held
    return claims


def describe_jobs(batch: Any, job_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The DescribeJobs entries of ``job_ids``, 100 ids per call (its limit)."""
    return [
        job
        for start in range(0, len(job_ids), DESCRIBE_JOBS_LIMIT)
        for job in batch.describe_jobs(jobs=list(job_ids[start : start + DESCRIBE_JOBS_LIMIT]))["jobs"]
    ]
