"""The trigger Lambda: a manifest upload becomes Batch jobs (handler: ``runtime.trigger.handler``)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import LOG_GROUP_WITHOUT_CMK, acknowledge, acknowledge_checkov

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLER = "runtime.trigger.handler"
HANDLER_FILES = (
    "runtime/__init__.py",
    "runtime/trigger.py",
    "runtime/aws/__init__.py",
    "runtime/aws/batch_jobs.py",
    "runtime/aws/manifest.py",
    "runtime/aws/trigger.py",
    "runtime/store/__init__.py",
    "runtime/store/keys.py",
)
"""Everything the asset carries: the handler and the stdlib-only modules it imports (boto3 is in the
Lambda runtime). ``tests/stacks/test_trigger.py`` checks this against the handler's imports."""
RUNTIME = lambda_.Runtime.PYTHON_3_14
TIMEOUT = Duration.minutes(5)
"""Must stay below ``runtime.aws.trigger.STALE_CLAIM_SECONDS`` (15 min): a claim older than that is
taken over as belonging to a crashed invocation. Listing a million results fits well within it."""
ASYNC_RETRIES = 2
MAX_EVENT_AGE = Duration.hours(6)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def handler_code() -> lambda_.Code:
    """The repository root filtered down to :data:`HANDLER_FILES` (no numpy, ArviZ or engines)."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        ignore_mode=IgnoreMode.DOCKER,
        exclude=["*", *(f"!{path}" for path in HANDLER_FILES)],
    )


class Trigger(Construct):
    """The handler function, its log group, and the queue that keeps events it failed on.

    The role starts with only log writing and the failure destination; the stack grants the rest.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: dict[str, str],
        reserved_concurrency: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "FailedEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the trigger's failed invocations.",
        )
        acknowledge_checkov(
            self.dead_letter_queue,
            "CKV_AWS_27",
            "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which the check does not recognise: it "
            "looks only for a KMS key. SSE-KMS would add KMS requests and key grants for failed-event "
            "records that need no key of their own.",
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        acknowledge_checkov(self.log_group, "CKV_AWS_158", LOG_GROUP_WITHOUT_CMK)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="StanFleet trigger: read manifests, write claims, submit this stack's Batch jobs",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=handler_code(),
            role=self.role,
            environment=environment,
            timeout=TIMEOUT,
            memory_size=256,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=self.log_group,
            retry_attempts=ASYNC_RETRIES,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        self.log_group.grant_write(self.role)  # its own log group only (no managed policy)
        reasons = {
            "CKV_AWS_116": "Failed invocations go to the FailedEvents queue through an on-failure destination, "
            "which keeps the error with the event; the check recognises only the older dead-letter setting.",
            "CKV_AWS_117": "The handler calls only the S3 and Batch APIs; inside the VPC (public subnets, no "
            "NAT) it would need a NAT gateway or interface endpoints, billed by the hour while idle.",
            "CKV_AWS_173": "The environment holds ARNs and key prefixes, no secrets; Lambda encrypts it at "
            "rest with its AWS-managed key, and a customer-managed key would bill $1 a month while idle.",
        }
        for check_id, reason in reasons.items():
            acknowledge_checkov(self.function, check_id, reason)
