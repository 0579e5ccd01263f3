"""Stand-ins for the deployed stack in moto: the stack outputs, the S3 event route, and a Batch runner.

- :data:`CREDENTIALS` are the fake credentials and region moto is reached with (never real ones).
- :func:`create_fake_batch` creates a Batch job queue (on an UNMANAGED compute environment) and the fit
  and compile job definitions, with the container's commands (``stacks.job_commands``, as the stack's job
  definitions).
- :func:`deploy_fake_stack` creates, in whatever moto the boto3 clients reach, what the submitter and
  the trigger need: a versioned bucket whose ``manifests/*.json`` uploads notify an SQS queue, the
  fake Batch, and a CloudFormation stack whose outputs name them (a template with one trivial
  resource and literal output values).
- :func:`manifest_events` hands over the S3 events moto delivered to that queue, as the trigger
  Lambda would receive them.
- :class:`BatchRunner` plays AWS Batch: moto's Batch without Docker records each submitted job and
  reports it SUCCEEDED at once, running nothing. The runner reads the jobs back and runs, for each job
  (and each array child) in dependency order, the command the container runs: ``python -m
  runtime.worker`` with the job definition's command, ``Ref::`` parameters filled from the job's
  parameters, in the child's environment (the job's container environment, ``AWS_BATCH_JOB_ID``,
  ``AWS_BATCH_JOB_ARRAY_INDEX`` for array children) plus the moto endpoint and credentials, and no EC2
  metadata service (:data:`NO_METADATA_SERVICE`) unless the child's environment says otherwise. Like a
  container, each child starts with an empty StanFleet cache (so a CmdStan child must fetch the compile
  job's executable from the store) and runs in its own process group, which stopping it kills whole.
  The child's process is the worker itself (the container's PID 1, which ECS signals to stop it); when it
  exits, the runner kills what is left of its process group, as the kernel ends the rest of a container
  whose PID 1 has exited. Each run of a child (an attempt, in Batch's words: a retry runs the same child
  again) has its own log, as each attempt has its own log stream in CloudWatch.
  :meth:`BatchRunner.stop_all` kills whatever the runner started that is still running (the ``aws``
  fixture calls it on the way out).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3

from runtime.store.keys import CLAIMS, MANIFESTS
from stacks.job_commands import COMPILE_COMMAND, FIT_COMMAND

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ("-m", "runtime.worker")
"""The worker image's ENTRYPOINT after ``python`` (container/Dockerfile)."""
FIT_VCPUS = 2
_REF = re.compile(r"Ref::(\w+)")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What moto needs to be reached: credentials and a region, never real ones."""
NO_METADATA_SERVICE = {"AWS_EC2_METADATA_DISABLED": "true"}
"""Every child's environment starts with this: a Batch child's worker polls the EC2 metadata service for a
spot interruption notice, and the machine running the tests is no spot instance of the stack (where it
is on EC2, its own metadata service must stay out of the tests). A test that gives a child a fake
metadata service overrides it."""


@dataclass(frozen=True)
class FakeBatch:
    """What :func:`create_fake_batch` made."""

    job_queue_arn: str
    fit_job_definition_arn: str
    compile_job_definition_arn: str

    def trigger_environment(self) -> dict[str, str]:
        """The trigger Lambda's environment (stacks/trigger.py sets the same names)."""
        return {
            "JOB_QUEUE_ARN": self.job_queue_arn,
            "FIT_JOB_DEFINITION_ARN": self.fit_job_definition_arn,
            "COMPILE_JOB_DEFINITION_ARN": self.compile_job_definition_arn,
            "MANIFEST_PREFIX": MANIFESTS,
            "CLAIM_PREFIX": CLAIMS,
        }


@dataclass(frozen=True)
class FakeStack(FakeBatch):
    """What :func:`deploy_fake_stack` made."""

    name: str
    region: str
    bucket: str
    event_queue_url: str


def create_versioned_bucket(bucket: str, *, region: str = "us-east-1") -> Any:
    """Create a bucket with versioning enabled; return the S3 client."""
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3


def create_fake_batch(name: str = "StanFleet", *, bucket: str, region: str = "us-east-1") -> FakeBatch:
    """A job queue on an UNMANAGED compute environment and the fit and compile job definitions.

    The definitions run the container's commands with ``STANFLEET_BUCKET`` set to ``bucket``; the fit
    jobs take :data:`FIT_VCPUS` vCPUs.
    """
    batch = boto3.client("batch", region_name=region)
    role = boto3.client("iam", region_name=region).create_role(
        RoleName=f"{name}-batch", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"{name}-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )["computeEnvironmentArn"]
    job_queue = batch.create_job_queue(
        jobQueueName=f"{name}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )["jobQueueArn"]
    definitions = {
        kind: batch.register_job_definition(
            jobDefinitionName=f"{name}-{kind}",
            type="container",
            containerProperties={
                "image": "stanfleet-worker",
                "command": command,
                "resourceRequirements": [
                    {"type": "VCPU", "value": str(FIT_VCPUS)},
                    {"type": "MEMORY", "value": "2048"},
                ],
                "environment": [{"name": "STANFLEET_BUCKET", "value": bucket}],
            },
        )["jobDefinitionArn"]
        for kind, command in (("fit", FIT_COMMAND), ("compile", COMPILE_COMMAND))
    }
    return FakeBatch(
        job_queue_arn=job_queue,
        fit_job_definition_arn=definitions["fit"],
        compile_job_definition_arn=definitions["compile"],
    )


def deploy_fake_stack(
    name: str = "StanFleet", *, region: str = "us-east-1", bucket: str = "stanfleet-e2e-bucket"
) -> FakeStack:
    """Create the stack's resources and a CloudFormation stack with its outputs, through boto3."""
    s3 = create_versioned_bucket(bucket, region=region)
    sqs = boto3.client("sqs", region_name=region)
    queue_url = sqs.create_queue(QueueName="manifest-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": MANIFESTS},
                                {"Name": "suffix", "Value": ".json"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    drain(sqs, queue_url)  # S3 announces a new notification configuration with an s3:TestEvent
    batch = create_fake_batch(name, bucket=bucket, region=region)
    create_stack(name, stack_outputs(bucket, batch), region=region)
    return FakeStack(
        name=name,
        region=region,
        bucket=bucket,
        event_queue_url=queue_url,
        job_queue_arn=batch.job_queue_arn,
        fit_job_definition_arn=batch.fit_job_definition_arn,
        compile_job_definition_arn=batch.compile_job_definition_arn,
    )


def stack_outputs(bucket: str, batch: FakeBatch) -> dict[str, str]:
    """The deployed stack's outputs the submitter reads (stacks/stanfleet_stack.py names them)."""
    return {
        "BucketName": bucket,
        "JobQueueArn": batch.job_queue_arn,
        "FitJobDefinitionArn": batch.fit_job_definition_arn,
        "CompileJobDefinitionArn": batch.compile_job_definition_arn,
    }


def create_stack(name: str, outputs: Mapping[str, str], *, region: str = "us-east-1") -> None:
    """A CloudFormation stack with one trivial resource (a topic) and the given literal outputs."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=region).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message waiting in the queue; return their parsed bodies."""
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def manifest_events(stack: FakeStack, *, sqs: Any = None, s3: Any = None) -> list[dict[str, Any]]:
    """The S3 events moto delivered to the stack's queue since the last call, as the Lambda gets them.

    moto 5.2's S3 events omit ``versionId``, which S3 includes for a versioned bucket (and which the
    trigger names its claim after, as the submitter expects). Each record gets the version id of the
    upload it reports: the newest version of its key with the record's ETag.
    """
    sqs = sqs or boto3.client("sqs", region_name=stack.region)
    s3 = s3 or boto3.client("s3", region_name=stack.region)
    events = [body for body in drain(sqs, stack.event_queue_url) if "Records" in body]
    for event in events:
        for record in event["Records"]:
            item = record["s3"]["object"]
            if "versionId" not in item:
                item["versionId"] = _version_of(s3, record["s3"]["bucket"]["name"], item)
    return events


def _version_of(s3: Any, bucket: str, item: Mapping[str, Any]) -> str:
    key = unquote_plus(item["key"])
    versions = [
        version
        for version in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        if version["Key"] == key and version["ETag"].strip('"') == item["eTag"]
    ]
    return str(max(versions, key=lambda version: version["LastModified"])["VersionId"])


@dataclass(frozen=True)
class Child:
    """One unit Batch would place in a container: a plain job, or one child of an array job."""

    job_id: str
    depends_on: tuple[str, ...]
    argv: tuple[str, ...]
    environment: Mapping[str, str]

    def with_environment(self, **variables: str) -> Child:
        """The same child with ``variables`` added to its environment (a job's environment override)."""
        return replace(self, environment={**self.environment, **variables})


@dataclass(frozen=True)
class Finished:
    """How one child's process ended, with its output for failure messages."""

    child: Child
    returncode: int
    output: str


class BatchRunner:
    """Runs the jobs moto's Batch recorded, as local processes of the container's command.

    ``environment`` is added to every child's environment: the moto endpoint and credentials.
    """

    def __init__(self, batch: Any, *, environment: Mapping[str, str], log_dir: Path) -> None:
        self._batch = batch
        self._environment = dict(environment)
        self._log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._attempts: dict[str, int] = {}  # job id: attempts started
        self._started: list[subprocess.Popen[bytes]] = []

    def children(self, job_ids: Sequence[str]) -> list[Child]:
        """Every plain job and array child of ``job_ids``, each after the jobs it depends on."""
        jobs = self._batch.describe_jobs(jobs=list(job_ids))["jobs"]
        assert sorted(job["jobId"] for job in jobs) == sorted(job_ids), "moto lost a job"
        children: list[Child] = []
        placed: set[str] = set()
        pending = list(jobs)
        while pending:
            ready = [
                job
                for job in pending
                if all(d["jobId"] in placed or d["jobId"] not in job_ids for d in job.get("dependsOn", []))
            ]
            assert ready, f"circular dependencies among {[job['jobId'] for job in pending]}"
            for job in ready:
                children.extend(self._children_of(job))
                placed.add(job["jobId"])
                pending.remove(job)
        return children

    def _children_of(self, job: Mapping[str, Any]) -> list[Child]:
        definition = self._batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
            "jobDefinitions"
        ][0]
        parameters = {**definition.get("parameters", {}), **job.get("parameters", {})}
        arguments = [
            _REF.sub(lambda m: parameters.get(m.group(1), m.group(0)), part)
            for part in definition["containerProperties"]["command"]
        ]
        argv = (sys.executable, *ENTRYPOINT, *arguments)
        environment = {e["name"]: e["value"] for e in job.get("container", {}).get("environment", [])}
        depends_on = tuple(d["jobId"] for d in job.get("dependsOn", []))
        size = job.get("arrayProperties", {}).get("size")
        if size is None:
            return [Child(job["jobId"], depends_on, argv, {**environment, "AWS_BATCH_JOB_ID": job["jobId"]})]
        return [
            Child(
                f"{job['jobId']}:{index}",
                depends_on,
                argv,
                {
                    **environment,
                    "AWS_BATCH_JOB_ID": f"{job['jobId']}:{index}",
                    "AWS_BATCH_JOB_ARRAY_INDEX": str(index),
                },
            )
            for index in range(size)
        ]

    def start(self, child: Child) -> subprocess.Popen[bytes]:
        """Start an attempt at the child: its container command in a new process group (the process is
        the worker itself, PID 1 of the container), its output in the attempt's log file."""
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {
            **os.environ,
            "PYTHONPATH": python_path,
            "STANFLEET_CACHE_DIR": str(self.cache_dir(child)),
            **NO_METADATA_SERVICE,
            **self._environment,
            **child.environment,
        }
        attempt = self._attempts.get(child.job_id, 0) + 1
        self._attempts[child.job_id] = attempt
        log = self._log_path(child, attempt).open("wb")
        try:
            process = subprocess.Popen(
                child.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self._started.append(process)
        return process

    def wait(self, process: subprocess.Popen[bytes], timeout: float = 300) -> int:
        """Wait for an attempt's worker to exit, then kill what is left of its container (its process
        group); return its status as ``Popen.returncode`` has it. TimeoutExpired after ``timeout`` s."""
        if process.returncode is not None:
            return process.returncode
        deadline = time.monotonic() + timeout
        # Not reaped yet (WNOWAIT): the worker's pid, its group's id, cannot go to another process.
        while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(process.args, timeout)
            time.sleep(0.02)
        _kill_group(process)
        return process.wait()

    def stop_all(self) -> None:
        """Kill every attempt started that has not been waited for, its whole process group; reap them."""
        for process in self._started:
            if process.returncode is None:
                _kill_group(process)
                process.wait()
        self._started.clear()

    def cache_dir(self, child: Child) -> Path:
        """The child's StanFleet cache: its container's own, empty when it starts."""
        return self._log_dir.parent / "containers" / child.job_id.replace(":", "-")

    def run(self, child: Child, timeout: float = 300) -> Finished:
        """Run an attempt at the child to its end; kill it and fail after ``timeout`` seconds."""
        process = self.start(child)
        try:
            returncode = self.wait(process, timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.wait()
            raise AssertionError(
                f"{child.job_id} ran over {timeout} s:\n{self.output(child)[-3000:]}"
            ) from None
        return Finished(child, returncode, self.output(child))

    def output(self, child: Child, attempt: int | None = None) -> str:
        """Everything the child's processes printed so far in one attempt, by default the latest."""
        attempt = attempt or self._attempts.get(child.job_id, 1)
        return self._log_path(child, attempt).read_text(errors="replace")

    def run_jobs(self, job_ids: Sequence[str], *, parallel: int = 2) -> list[Finished]:
        """Run every child of ``job_ids``, dependency level by level, ``parallel`` at a time.

        A failed job fails its dependants, as in Batch: they are not started.
        """
        finished: list[Finished] = []
        failed: set[str] = set()
        remaining = self.children(job_ids)
        while remaining:
            done_jobs = {f.child.job_id.split(":")[0] for f in finished}
            level = [c for c in remaining if all(d in done_jobs or d not in job_ids for d in c.depends_on)]
            remaining = [c for c in remaining if c not in level]
            runnable = [c for c in level if not failed.intersection(c.depends_on)]
            with ThreadPoolExecutor(max_workers=parallel) as pool:
                results = list(pool.map(self.run, runnable))
            skipped = [Finished(c, -1, "a job it depends on failed") for c in level if c not in runnable]
            finished.extend([*results, *skipped])
            failed.update(f.child.job_id.split(":")[0] for f in [*results, *skipped] if f.returncode != 0)
        return finished

    def _log_path(self, child: Child, attempt: int) -> Path:
        return self._log_dir / f"{child.job_id.replace(':', '-')}.attempt{attempt}.log"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a worker not yet reaped (start_new_session: its pid is the group's)."""
    with contextlib.suppress(ProcessLookupError):  # nothing of it is left
        os.killpg(process.pid, signal.SIGKILL)


def assert_succeeded(finished: Sequence[Finished]) -> None:
    """Every child exited 0; else fail with the first failure's output."""
    for run in finished:
        assert run.returncode == 0, f"{run.child.job_id} exited {run.returncode}:\n{run.output[-3000:]}"
