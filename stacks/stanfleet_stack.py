"""The whole pipeline in one stack: storage, compute and trigger, wired together with least privilege."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from stacks import prefixes
from stacks.compute import Architecture, Compute
from stacks.nag import acknowledge, acknowledge_checkov, logical_id
from stacks.storage import Storage
from stacks.trigger import Trigger

TRIGGER_CONCURRENCY = 2
"""Reserved (and so maximum) concurrent trigger invocations. Manifests are rare and each invocation
makes a handful of SubmitJob calls, so two keep far below Batch's 50 calls/s account limit."""


class StanFleetStack(Stack):
    """Bucket, spot Batch environment, worker jobs and the manifest trigger.

    Configuration arrives as keyword arguments (``app.py`` reads and validates the CDK context).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        architecture: Architecture,
        max_vcpus: int,
        destroy_data: bool,
        worker_vcpus: int,
        worker_memory_mib: int,
        job_timeout_minutes: int,
        job_attempts: int,
        trigger_concurrency: int = TRIGGER_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="StanFleet: simulation-based calibration of Stan models on AWS Batch spot",
            **kwargs,
        )
        Tags.of(self).add("Project", "StanFleet")

        self.storage = Storage(self, "Storage", destroy_data=destroy_data)
        bucket = self.storage.bucket
        self.compute = Compute(
            self,
            "Compute",
            bucket=bucket,
            architecture=architecture,
            max_vcpus=max_vcpus,
            worker_vcpus=worker_vcpus,
            worker_memory_mib=worker_memory_mib,
            job_timeout_minutes=job_timeout_minutes,
            job_attempts=job_attempts,
        )
        self.trigger = Trigger(
            self,
            "Trigger",
            environment={
                "JOB_QUEUE_ARN": self.compute.job_queue.job_queue_arn,
                "FIT_JOB_DEFINITION_ARN": self.compute.fit_job_definition.job_definition_arn,
                "COMPILE_JOB_DEFINITION_ARN": self.compute.compile_job_definition.job_definition_arn,
                "MANIFEST_PREFIX": prefixes.MANIFESTS,
                "CLAIM_PREFIX": prefixes.CLAIMS,
            },
            reserved_concurrency=trigger_concurrency,
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.trigger.function),
            s3.NotificationKeyFilter(prefix=prefixes.MANIFESTS, suffix=prefixes.MANIFEST_SUFFIX),
        )
        self._grant_jobs(bucket, self.compute.job_role)
        self._grant_trigger(bucket, self.trigger.role)
        self._acknowledge_cdk_internals()
        self._outputs(destroy_data=destroy_data)

    def _grant_jobs(self, bucket: s3.IBucket, role: iam.IRole) -> None:
        """Worker jobs read specs, inputs, plans, cached models and results; write results and models.

        Every resource wildcard is an object-key pattern inside one prefix of this bucket: ensemble ids,
        replicate numbers and model keys exist only at run time (``reasons`` below says which is which,
        and doubles as the cdk-nag acknowledgment). No action is a wildcard.
        """
        objects = bucket.arn_for_objects
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadEnsembleInputs",
                actions=["s3:GetObject"],
                resources=[
                    objects(prefixes.SPEC_OBJECTS),
                    objects(prefixes.INPUT_OBJECTS),
                    objects(prefixes.MODEL_OBJECTS),
                    objects(prefixes.CLAIM_OBJECTS),  # the array plan a child is given (its claim object)
                    objects(prefixes.RESULT_OBJECTS),  # HEAD: skip a replicate whose result exists (retries)
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteResultsAndModels",
                actions=["s3:PutObject"],
                resources=[objects(prefixes.RESULT_OBJECTS), objects(prefixes.MODEL_OBJECTS)],
            )
        )
        # Unconditioned on purpose: S3 answers a GET or HEAD of a missing key with 404 only to a caller
        # allowed s3:ListBucket on the bucket, else with 403. The worker relies on 404 ("model not
        # cached yet", "replicate not fitted yet"), and a GET carries no s3:prefix, so an s3:prefix
        # condition would turn each of those into AccessDenied. This lists key names, never contents.
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ListKeys", actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        reasons = {
            prefixes.SPEC_OBJECTS: "ensemble ids are content hashes chosen at submit time",
            prefixes.INPUT_OBJECTS: "input blocks of any dataset set, whose ids are content hashes chosen at submit time",
            prefixes.MODEL_OBJECTS: "compiled models are cached under keys derived from the Stan program",
            prefixes.CLAIM_OBJECTS: "each submission's array plan is a claim object named by the trigger at run time",
            prefixes.RESULT_OBJECTS: "one result object per replicate of any ensemble",
        }
        self._acknowledge_object_wildcards(role, bucket, reasons)

    def _grant_trigger(self, bucket: s3.IBucket, role: iam.IRole) -> None:
        """Grant the trigger's role what the trigger needs.

        The trigger reads manifests, claims and specs, writes claims only, lists results, claims and compile
        markers, reads job statuses and submits jobs.

        Its resource wildcards are object-key patterns (keys named at run time) and DescribeJobs' ``*``
        (it has no resource-level permissions); SubmitJob's resources are exact ARNs.
        """
        objects = bucket.arn_for_objects
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadManifestsClaimsAndSpecs",
                actions=["s3:GetObject"],
                resources=[
                    objects(prefixes.MANIFEST_OBJECTS),
                    objects(prefixes.CLAIM_OBJECTS),
                    objects(prefixes.SPEC_OBJECTS),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteClaims", actions=["s3:PutObject"], resources=[objects(prefixes.CLAIM_OBJECTS)]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListResultsClaimsAndCompiledMarkers",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                # compile markers are looked for by listing their exact key: a prefix-conditioned
                # ListBucket does not turn a HEAD of a missing key into a 404
                conditions={
                    "StringLike": {
                        "s3:prefix": [
                            prefixes.RESULT_OBJECTS,
                            prefixes.CLAIM_OBJECTS,
                            prefixes.COMPILED_MARKER_OBJECTS,
                        ]
                    }
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SeeEarlierJobs",
                actions=["batch:DescribeJobs"],  # is a rerun's ensemble still running? (read-only)
                resources=["*"],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "batch:DescribeJobs supports no resource-level permissions; it only reads job statuses.",
        )
        compute = self.compute
        job_definitions = [compute.fit_job_definition, compute.compile_job_definition]
        names = [compute.fit_job_definition_name, compute.compile_job_definition_name]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SubmitWorkerJobs",
                actions=["batch:SubmitJob"],
                # SubmitJob is authorized against the queue and the job definition. Batch's docs say
                # the definition is matched by its revision ARN (name:N), even when a job is submitted
                # by name; the handler is given exactly that ARN. The name-only ARN is listed as well,
                # for callers and docs that treat it as the resource: it grants nothing wider, and no
                # other revision or definition is allowed (no "name:*").
                resources=[
                    self.compute.job_queue.job_queue_arn,
                    *(definition.job_definition_arn for definition in job_definitions),
                    *(self._unrevisioned_arn(name) for name in names),
                ],
            )
        )
        reasons = {
            prefixes.MANIFEST_OBJECTS: "manifests are named by the submitter's ensemble ids",
            prefixes.CLAIM_OBJECTS: "claim markers are named at run time from the ensemble id and the upload's version",
            prefixes.SPEC_OBJECTS: "ensemble ids are content hashes chosen at submit time",
        }
        self._acknowledge_object_wildcards(role, bucket, reasons)

    def _unrevisioned_arn(self, job_definition_name: str) -> str:
        return self.format_arn(
            service="batch",
            resource="job-definition",
            resource_name=job_definition_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _acknowledge_object_wildcards(
        self, role: iam.IRole, bucket: s3.IBucket, reasons: dict[str, str]
    ) -> None:
        """Each object-key wildcard, acknowledged one finding at a time with why it cannot be narrower."""
        bucket_id = logical_id(bucket)
        for pattern, reason in reasons.items():
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{pattern}]",
                f"Object-key wildcard within one prefix of this stack's bucket: {reason}.",
            )

    def _acknowledge_cdk_internals(self) -> None:
        """Findings on the helper functions CDK itself adds (S3 notifications, bucket emptying)."""
        # Both run only while CloudFormation deploys or deletes the stack, calling the S3 API.
        deploy_time_function = {
            "CKV_AWS_115": "CDK's deploy-time handler, invoked by CloudFormation a few times per deploy; "
            "reserving concurrency for it would take from the account's unreserved pool for nothing.",
            "CKV_AWS_116": "CDK's deploy-time handler: CloudFormation waits for its answer and fails the "
            "deploy without one, so a dead-letter queue would keep a request nobody replays.",
            "CKV_AWS_117": "CDK's deploy-time handler calls only the S3 API; inside the VPC it would need a "
            "NAT gateway or an interface endpoint, billed by the hour.",
        }
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own handler that configures the bucket notification at deploy time; the managed "
                    "policy only lets it write its logs, and its one other permission is "
                    "s3:PutBucketNotification on this bucket.",
                )
                function = child
            elif child.node.id == "Custom::S3AutoDeleteObjectsCustomResourceProvider":
                function = child.node.find_child("Handler")  # empties the bucket on destroy (destroyData)
            else:
                continue
            for check_id, reason in deploy_time_function.items():
                acknowledge_checkov(function, check_id, reason)

    def _outputs(self, *, destroy_data: bool) -> None:
        """What the submitter reads, under stable output keys and export names."""
        outputs = {
            "BucketName": (
                self.storage.bucket.bucket_name,
                "Bucket for inputs, manifests, models and results",
            ),
            "JobQueueArn": (self.compute.job_queue.job_queue_arn, "Batch job queue the trigger submits to"),
            "FitJobDefinitionArn": (
                self.compute.fit_job_definition.job_definition_arn,
                "Fit job definition (revision ARN)",
            ),
            "CompileJobDefinitionArn": (
                self.compute.compile_job_definition.job_definition_arn,
                "Compile job definition (revision ARN)",
            ),
            "TriggerDeadLetterQueueUrl": (
                self.trigger.dead_letter_queue.queue_url,
                "Trigger events that failed after retries",
            ),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description, export_name=f"{self.stack_name}-{key}")
        CfnOutput(
            self,
            "DataOnDestroy",
            value=(
                "deleted: cdk destroy empties and deletes the bucket (deployed with destroyData=true)"
                if destroy_data
                else "kept: cdk destroy leaves the bucket and its data; deploy with -c destroyData=true to delete them"
            ),
            description="What cdk destroy does to the bucket",
        )
