"""The AWS executor: manifest uploads launch the ensemble; progress is read back from S3 and Batch.

The submitter's API calls grow with the logarithm of the ensemble, not with it: a manifest upload each
time the published inputs have doubled (fits start while the rest is simulated), then per poll one
results listing (one call per 1000 results) and one DescribeJobs (per 100 jobs: one array job holds
10,000 children). The trigger Lambda does the submitting (runtime.aws.trigger).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

import boto3

from runtime.aws.batch_jobs import TERMINAL, describe_jobs
from runtime.aws.manifest import Manifest
from runtime.aws.stack import StackOutputs
from runtime.errors import StanFleetError
from runtime.executors.protocol import ProgressCallback, Unfitted, count_results
from runtime.store.keys import CLAIMS, claim_key, manifest_key
from runtime.store.s3 import S3Store

POLL_SECONDS = 15.0
"""Seconds between two progress polls while waiting (tests make it small)."""
TRIGGER_TIMEOUT_SECONDS = 300.0
"""How long to wait for the trigger to record the job ids of an upload."""


class BatchExecutor:
    """Launches an ensemble through the deployed stack and, when waiting, follows it to the end."""

    def __init__(
        self,
        store: S3Store,
        outputs: StackOutputs,
        *,
        requested: int,
        replicates_per_child: int,
        wait: bool = True,
        region: str | None = None,
        poll_seconds: float | None = None,
        trigger_timeout_seconds: float | None = None,
    ) -> None:
        self._store = store
        self._outputs = outputs
        self._requested = requested
        self._replicates_per_child = replicates_per_child
        self._wait = wait
        self._region = region
        self._poll_seconds = POLL_SECONDS if poll_seconds is None else poll_seconds
        self._trigger_timeout_seconds = (
            TRIGGER_TIMEOUT_SECONDS if trigger_timeout_seconds is None else trigger_timeout_seconds
        )

    @cached_property
    def _s3(self) -> Any:
        return boto3.client("s3", region_name=self._region)

    @cached_property
    def _batch(self) -> Any:
        return boto3.client("batch", region_name=self._region)

    def run(
        self,
        ensemble_id: str,
        replicates: Sequence[int],
        on_progress: ProgressCallback,
        published: Iterable[Sequence[int]] | None = None,
    ) -> list[Unfitted]:
        """Upload the manifest; with waiting, return once every replicate has a result.

        Nothing is returned as unfitted then: an array child whose replicates hit persistent errors of the
        machinery fails, and a run whose jobs end with replicates missing raises.

        While the inputs are being published, a manifest covering what is published goes up whenever that
        has doubled since the last upload (each upload submits jobs only for replicates no earlier
        upload's jobs hold); without waiting, one manifest once everything is published.
        """
        batches = [replicates] if published is None else published
        if not self._wait:
            for _ in batches:  # publishing them
                pass
            self._upload(ensemble_id, self._requested)
            return []
        job_ids: dict[str, None] = {}  # in submission order, without repeats
        ready = covered = 0
        for batch in batches:
            if not batch:
                continue
            ready, end = ready + len(batch), max(batch) + 1
            if ready >= 2 * covered:
                job_ids.update(dict.fromkeys(self._launch(ensemble_id, end, on_progress)))
                covered = ready
        if covered < ready:
            job_ids.update(dict.fromkeys(self._launch(ensemble_id, self._requested, on_progress)))
        self._follow(ensemble_id, replicates, list(job_ids), on_progress)
        return []

    def _upload(self, ensemble_id: str, upto: int) -> str:
        """Upload a manifest for replicates ``0..upto-1``; return the upload's version id or ETag."""
        manifest = Manifest(ensemble_id, upto, self._replicates_per_child)
        upload = self._s3.put_object(
            Bucket=self._outputs.bucket, Key=manifest_key(ensemble_id), Body=manifest.to_json()
        )
        return str(upload.get("VersionId") or upload["ETag"].strip('"'))

    def _launch(self, ensemble_id: str, upto: int, on_progress: ProgressCallback) -> list[str]:
        """Upload a manifest for replicates ``0..upto-1`` and wait for the trigger's job ids."""
        upload_id = self._upload(ensemble_id, upto)
        return self._await_submission(claim_key(ensemble_id, upload_id, CLAIMS), on_progress)

    def _follow(
        self, ensemble_id: str, replicates: Sequence[int], job_ids: list[str], on_progress: ProgressCallback
    ) -> None:
        """Report progress until every replicate has a result; raise if the jobs end before."""
        while True:
            done = count_results(self._store, ensemble_id, replicates)
            statuses = self._job_statuses(job_ids)
            on_progress(done, describe_statuses(statuses))
            if done == len(replicates):
                return
            if statuses and all(status in TERMINAL for status in statuses.values()):
                done = count_results(self._store, ensemble_id, replicates)
                if done == len(replicates):
                    return
                raise StanFleetError(
                    f"the Batch jobs ended with {len(replicates) - done} of {len(replicates)} replicates "
                    f"without a result (statuses: {describe_statuses(statuses)}); finished results are kept, "
                    "resubmit the same command to fit the rest"
                )
            time.sleep(self._poll_seconds)

    def _await_submission(self, plan_key: str, on_progress: ProgressCallback) -> list[str]:
        """Wait for the trigger to claim the upload and record its job ids."""
        deadline = time.monotonic() + self._trigger_timeout_seconds
        while time.monotonic() < deadline:
            try:
                claim = json.loads(self._store.get(plan_key))
            except KeyError:
                claim = {}
            if "job_ids" in claim:
                return [str(job_id) for job_id in claim["job_ids"]]
            if claim.get("missing") == []:  # every result was there when the trigger looked: no jobs
                return []
            on_progress(0, "waiting for the trigger")
            time.sleep(min(self._poll_seconds, 5.0))
        raise StanFleetError(
            f"the trigger did not submit the ensemble within {self._trigger_timeout_seconds:.0f} s "
            f"(no job ids in s3://{self._outputs.bucket}/{plan_key}): check the trigger Lambda's logs "
            "and its dead-letter queue"
        )

    def _job_statuses(self, job_ids: list[str]) -> dict[str, str]:
        """Status per array child (from its parent's status summary) and per plain job.

        One API call per 100 jobs (DescribeJobs' limit): one call unless the ensemble spans 99+ arrays.
        """
        statuses: dict[str, str] = {}
        for job in describe_jobs(self._batch, job_ids):
            summary = job.get("arrayProperties", {}).get("statusSummary") or {}
            children = [status for status, count in summary.items() for _ in range(count)]
            if children and job["status"] not in TERMINAL:
                statuses.update({f"{job['jobId']}:{index}": status for index, status in enumerate(children)})
            else:
                statuses[job["jobId"]] = job["status"]
        return statuses


def describe_statuses(statuses: dict[str, str]) -> str:
    """``3 succeeded, 1 failed, 4 running, 2 queued`` over jobs and array children."""
    groups = {
        "succeeded": ("SUCCEEDED",),
        "failed": ("FAILED",),
        "running": ("STARTING", "RUNNING"),
        "queued": ("SUBMITTED", "PENDING", "RUNNABLE"),
    }
    counts = {
        name: sum(status in members for status in statuses.values()) for name, members in groups.items()
    }
    return ", ".join(f"{count} {name}" for name, count in counts.items())
