"""BatchExecutor's upload and waiting logic: moto's S3, and a scripted Batch.

moto's Batch without Docker reports every job SUCCEEDED the moment it is submitted, so the waiting
loop's other paths (jobs queued or running, jobs failed with results missing) are driven here by a
fake Batch client whose DescribeJobs answers follow a script. The trigger is played by the progress
callback, which writes the claim once the executor reports it is waiting for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from runtime.aws.manifest import parse_manifest
from runtime.aws.stack import StackOutputs
from runtime.errors import StanFleetError
from runtime.executors import batch as batch_executor
from runtime.executors.batch import BatchExecutor, describe_statuses
from runtime.store.keys import claim_key, manifest_key, result_key
from runtime.store.s3 import S3Store
from tests.runtime.helpers.batch_runner import create_versioned_bucket

BUCKET = "stanfleet-executor-test"
ENSEMBLE = "0123456789abcdef0123"
OUTPUTS = StackOutputs(
    bucket=BUCKET,
    job_queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/q",
    fit_job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/fit:1",
    compile_job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/compile:1",
)


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        yield create_versioned_bucket(BUCKET)


def job(job_id: str, status: str, **children: int) -> dict[str, Any]:
    """A DescribeJobs entry; ``children`` gives an array parent's status summary."""
    described: dict[str, Any] = {"jobId": job_id, "status": status}
    if children:
        described["arrayProperties"] = {"statusSummary": children, "size": sum(children.values())}
    return described


@dataclass
class ScriptedBatch:
    """DescribeJobs answers one step per call (the last repeats); a step may first write results."""

    store: S3Store
    steps: list[tuple[list[int], list[dict[str, Any]]]]
    calls: list[list[str]] = field(default_factory=list)

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        self.calls.append(list(jobs))
        finished, described = self.steps[min(len(self.calls), len(self.steps)) - 1]
        for replicate in finished:
            self.store.put(result_key(ENSEMBLE, replicate), b"{}")
        return {"jobs": [entry for entry in described if entry["jobId"] in jobs]}


@dataclass
class PlayTrigger:
    """The progress callback; at the first "waiting for the trigger" it writes the upload's claim."""

    s3: Any
    claim: dict[str, Any]
    seen: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, done: int, detail: str = "") -> None:
        self.seen.append((done, detail))
        if detail == "waiting for the trigger" and len(self.seen) == 1:
            head = self.s3.head_object(Bucket=BUCKET, Key=manifest_key(ENSEMBLE))
            upload = head.get("VersionId") or head["ETag"].strip('"')
            key = claim_key(ENSEMBLE, upload, "claims/")
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(self.claim).encode())


def executor(store: S3Store, batch: Any = None, **options: Any) -> BatchExecutor:
    made = BatchExecutor(
        store,
        OUTPUTS,
        requested=options.pop("requested", 3),
        replicates_per_child=2,
        poll_seconds=options.pop("poll_seconds", 0.01),
        **options,
    )
    if batch is not None:
        made._batch = batch  # type: ignore[misc]  # the cached client, replaced by the script
    return made


def test_no_wait_uploads_the_manifest_and_returns(s3: Any) -> None:
    store = S3Store(BUCKET)
    batch = ScriptedBatch(store, [])
    executor(store, batch, wait=False).run(ENSEMBLE, [0, 1, 2], PlayTrigger(s3, {}))
    manifest = parse_manifest(store.get(manifest_key(ENSEMBLE)))
    assert (manifest.ensemble_id, manifest.replicates, manifest.replicates_per_child) == (ENSEMBLE, 3, 2)
    assert batch.calls == []
    assert list(store.list_keys("claims/")) == []


def test_wait_follows_queued_and_running_children_until_every_result_is_in(s3: Any) -> None:
    store = S3Store(BUCKET)
    batch = ScriptedBatch(
        store,
        [
            ([], [job("compile", "RUNNING"), job("fit", "PENDING")]),
            ([0], [job("compile", "SUCCEEDED"), job("fit", "RUNNING", RUNNING=1, RUNNABLE=1)]),
            ([1, 2], [job("compile", "SUCCEEDED"), job("fit", "RUNNING", SUCCEEDED=1, RUNNING=1)]),
        ],
    )
    progress = PlayTrigger(s3, {"missing": [0, 1, 2], "job_ids": ["compile", "fit"]})
    executor(store, batch).run(ENSEMBLE, [0, 1, 2], progress)
    assert progress.seen == [
        (0, "waiting for the trigger"),
        (0, "0 succeeded, 0 failed, 1 running, 1 queued"),
        (0, "1 succeeded, 0 failed, 1 running, 1 queued"),
        (1, "2 succeeded, 0 failed, 1 running, 0 queued"),
        (3, "2 succeeded, 0 failed, 1 running, 0 queued"),
    ]
    assert batch.calls[0] == ["compile", "fit"]


def test_jobs_that_end_with_results_missing_are_an_error_that_keeps_the_results(s3: Any) -> None:
    store = S3Store(BUCKET)
    batch = ScriptedBatch(store, [([0], [job("compile", "SUCCEEDED"), job("fit", "FAILED")])])
    progress = PlayTrigger(s3, {"missing": [0, 1, 2], "job_ids": ["compile", "fit"]})
    with pytest.raises(StanFleetError, match=r"ended with 2 of 3 replicates without a result") as error:
        executor(store, batch).run(ENSEMBLE, [0, 1, 2], progress)
    assert "1 succeeded, 1 failed" in str(error.value)
    assert "resubmit the same command" in str(error.value)
    assert store.exists(result_key(ENSEMBLE, 0))


def test_results_written_as_the_jobs_end_are_counted_again(s3: Any) -> None:
    store = S3Store(BUCKET)  # the last results land between the count and DescribeJobs
    batch = ScriptedBatch(store, [([0, 1, 2], [job("compile", "SUCCEEDED"), job("fit", "SUCCEEDED")])])
    progress = PlayTrigger(s3, {"missing": [0, 1, 2], "job_ids": ["compile", "fit"]})
    executor(store, batch).run(ENSEMBLE, [0, 1, 2], progress)
    assert progress.seen[-1] == (0, "2 succeeded, 0 failed, 0 running, 0 queued")


def test_a_trigger_that_never_claims_is_a_timeout_naming_the_claim(s3: Any) -> None:
    store = S3Store(BUCKET)
    seen: list[tuple[int, str]] = []
    with pytest.raises(StanFleetError, match=r"trigger did not submit the ensemble within 0 s .*claims/"):
        executor(store, ScriptedBatch(store, []), trigger_timeout_seconds=0.05).run(
            ENSEMBLE, [0, 1, 2], lambda done, detail="": seen.append((done, detail))
        )
    assert seen and set(seen) == {(0, "waiting for the trigger")}


def test_a_claim_with_nothing_missing_needs_no_jobs(s3: Any) -> None:
    store = S3Store(BUCKET)
    for replicate in range(3):  # fitted by someone else between planning and the trigger
        store.put(result_key(ENSEMBLE, replicate), b"{}")
    batch = ScriptedBatch(store, [])
    progress = PlayTrigger(s3, {"missing": []})
    executor(store, batch).run(ENSEMBLE, [0, 1, 2], progress)
    assert progress.seen[-1] == (3, "0 succeeded, 0 failed, 0 running, 0 queued")
    assert batch.calls == []


class VersionIdWithSlashes:
    """The S3 client, answering PutObject with a version id like S3's own (``/`` and ``+`` included)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def put_object(self, **request: Any) -> dict[str, Any]:
        self._client.put_object(**request)
        return {"VersionId": "3/L4kqtJl+cpXroDTDmJ.rmSp_Xd3dI", "ETag": '"abc"'}


def test_the_claim_is_looked_for_where_the_trigger_writes_it(s3: Any) -> None:
    store = S3Store(BUCKET)
    made = executor(store, ScriptedBatch(store, [([0, 1, 2], [job("fit", "SUCCEEDED")])]))
    made._s3 = VersionIdWithSlashes(s3)  # type: ignore[misc]
    key = f"claims/{ENSEMBLE}/3_L4kqtJl_cpXroDTDmJ.rmSp_Xd3dI.json"
    assert claim_key(ENSEMBLE, "3/L4kqtJl+cpXroDTDmJ.rmSp_Xd3dI", "claims/") == key
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"job_ids": ["fit"]}).encode())
    made.run(ENSEMBLE, [0, 1, 2], lambda done, detail="": None)


def test_an_unversioned_bucket_names_the_claim_after_the_etag(s3: Any) -> None:
    s3.delete_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=BUCKET)
    store = S3Store(BUCKET)
    batch = ScriptedBatch(store, [([0, 1, 2], [job("fit", "SUCCEEDED")])])
    progress = PlayTrigger(s3, {"missing": [0, 1, 2], "job_ids": ["fit"]})
    executor(store, batch).run(ENSEMBLE, [0, 1, 2], progress)
    etag = s3.head_object(Bucket=BUCKET, Key=manifest_key(ENSEMBLE))["ETag"].strip('"')
    assert list(store.list_keys("claims/")) == [f"claims/{ENSEMBLE}/{etag}.json"]


def test_describe_jobs_takes_at_most_100_ids_per_call(s3: Any) -> None:
    store = S3Store(BUCKET)
    ids = [f"fit-{index}" for index in range(150)]
    batch = ScriptedBatch(store, [([], [job(job_id, "RUNNING") for job_id in ids])])
    statuses = executor(store, batch)._job_statuses(ids)
    assert [len(call) for call in batch.calls] == [100, 50]
    assert statuses == dict.fromkeys(ids, "RUNNING")


def test_array_children_count_one_by_one_until_the_array_ends() -> None:
    running = {"jobs": [job("fit", "RUNNING", SUCCEEDED=2, FAILED=1, RUNNING=1, RUNNABLE=3)]}
    ended = {"jobs": [job("fit", "FAILED", SUCCEEDED=6, FAILED=1)]}
    made = BatchExecutor(S3Store(BUCKET), OUTPUTS, requested=7, replicates_per_child=1)
    for answer, expected in (
        (running, "2 succeeded, 1 failed, 1 running, 3 queued"),
        (ended, "0 succeeded, 1 failed, 0 running, 0 queued"),
    ):
        made._batch = type("Batch", (), {"describe_jobs": lambda self, jobs, a=answer: a})()  # type: ignore[misc]
        assert describe_statuses(made._job_statuses(["fit"])) == expected


def test_clients_use_the_stacks_region_and_the_poll_default_is_read_at_construction(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_executor, "POLL_SECONDS", 0.25)
    made = BatchExecutor(S3Store(BUCKET), OUTPUTS, requested=1, replicates_per_child=1, region="eu-west-1")
    assert made._batch.meta.region_name == "eu-west-1"
    assert made._s3.meta.region_name == "eu-west-1"
    assert made._poll_seconds == 0.25


@dataclass
class PlayTriggerPerUpload:
    """The progress callback; it claims each new manifest upload with the next job ids of the list."""

    s3: Any
    job_ids: list[list[str]]
    claimed: list[str] = field(default_factory=list)

    def __call__(self, done: int, detail: str = "") -> None:
        if detail != "waiting for the trigger":
            return
        upload = self.s3.head_object(Bucket=BUCKET, Key=manifest_key(ENSEMBLE))["VersionId"]
        if upload not in self.claimed:
            claim = {"missing": [], "job_ids": self.job_ids[len(self.claimed)]}
            key = claim_key(ENSEMBLE, upload, "claims/")
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(claim).encode())
            self.claimed.append(upload)


def test_while_inputs_are_published_a_manifest_goes_up_each_time_they_double(s3: Any) -> None:
    store = S3Store(BUCKET)
    batch = ScriptedBatch(store, [(list(range(7)), [job(j, "SUCCEEDED") for j in "abc"])])
    trigger = PlayTriggerPerUpload(s3, [["a"], ["a", "b"], ["c"]])  # the second upload attaches to "a"
    published = [[0], [1, 2], [3, 4, 5, 6]]
    executor(store, batch, requested=7).run(ENSEMBLE, list(range(7)), trigger, published)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=manifest_key(ENSEMBLE))["Versions"]
    uploaded = [
        parse_manifest(s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read())
        for v in sorted(versions, key=lambda v: v["LastModified"])
    ]
    assert sorted(manifest.replicates for manifest in uploaded) == [1, 3, 7]
    assert batch.calls[0] == ["a", "b", "c"]  # every upload's jobs followed, each once


def test_without_waiting_one_manifest_goes_up_once_every_input_is_published(s3: Any) -> None:
    store = S3Store(BUCKET)
    consumed: list[int] = []

    def published() -> Iterator[list[int]]:
        for batch in ([0], [1, 2]):
            consumed.extend(batch)
            yield batch

    executor(store, ScriptedBatch(store, []), wait=False).run(
        ENSEMBLE, [0, 1, 2], PlayTrigger(s3, {}), published()
    )
    assert consumed == [0, 1, 2]
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=manifest_key(ENSEMBLE))["Versions"]
    assert len(versions) == 1
    assert parse_manifest(store.get(manifest_key(ENSEMBLE))).replicates == 3
