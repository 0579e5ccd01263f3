"""Compute: a network with no standing cost, the worker image, and Batch (spot environment, queue, jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.job_commands import COMPILE_COMMAND, FIT_COMMAND
from stacks.nag import LOG_GROUP_WITHOUT_CMK, acknowledge, acknowledge_checkov

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_IMAGE_CONTEXT = REPO_ROOT
"""The image's build context: the repository root, so the Dockerfile can copy the ``runtime`` package.
The root ``.dockerignore`` (owned with ``container/``) admits only what the Dockerfile copies."""
WORKER_DOCKERFILE = "container/Dockerfile"
"""Relative to :data:`WORKER_IMAGE_CONTEXT`."""

Architecture = Literal["x86_64", "arm64"]


@dataclass(frozen=True)
class ArchitectureProfile:
    """What one CPU architecture means for the image and the compute environment."""

    platform: ecr_assets.Platform
    instance_classes: tuple[ec2.InstanceClass, ...]


ARCHITECTURES: dict[str, ArchitectureProfile] = {
    # Current compute/general-purpose classes (Batch picks the sizes); one CPU vendor per architecture
    # (Intel; Graviton3), since a model compiled by one job is reused through models/ on every other.
    "x86_64": ArchitectureProfile(
        ecr_assets.Platform.LINUX_AMD64,
        (ec2.InstanceClass.C6I, ec2.InstanceClass.C7I, ec2.InstanceClass.M6I, ec2.InstanceClass.M7I),
    ),
    "arm64": ArchitectureProfile(
        ecr_assets.Platform.LINUX_ARM64,
        (ec2.InstanceClass.C7G, ec2.InstanceClass.M7G),
    ),
}

SPOT_RECLAIM_STATUS = "Host EC2*"
"""The statusReason Batch gives a job whose spot instance was reclaimed."""
STUCK_JOB_MINUTES = 10
"""A job no instance type can satisfy (too much memory, say) is cancelled after this long RUNNABLE."""
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


SPOT_DRAINING_CONFIG = "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true"
"""ECS agent setting: an instance given its two-minute spot notice takes no new job. ECS does not stop
the jobs already running on it (draining stops service tasks only); the worker watches for the notice
itself (runtime.aws.spot_notice) and from then on writes each result at once."""
METADATA_HOP_LIMIT = 2
"""The worker's container (bridge network) is one hop further from the metadata service than the
instance: with the default limit of 1, it gets no IMDSv2 token and cannot read the spot notice."""


def spot_instance_launch_template(scope: Construct, construct_id: str) -> ec2.LaunchTemplate:
    """The instances' launch template: IMDSv2 only, reachable from containers, spot draining on.

    Batch merges the template's user data (MIME multi-part, as Batch requires) with its own, which
    writes the cluster's name to the same /etc/ecs/ecs.config.
    """
    config = ec2.UserData.for_linux()
    config.add_commands(f"echo {SPOT_DRAINING_CONFIG} >> /etc/ecs/ecs.config")
    user_data = ec2.MultipartUserData()
    user_data.add_user_data_part(config, ec2.MultipartBody.SHELL_SCRIPT, True)
    return ec2.LaunchTemplate(
        scope,
        construct_id,
        user_data=user_data,
        require_imdsv2=True,
        http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
        http_put_response_hop_limit=METADATA_HOP_LIMIT,
    )


class Compute(Construct):
    """Public subnets + S3 gateway endpoint, the worker image, a spot Batch environment, queue and jobs.

    Nothing here bills by the hour while idle: no NAT gateway, no interface endpoints, and the compute
    environment scales to 0 vCPUs. ``job_role`` gets no permissions here; the stack grants them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        architecture: Architecture,
        max_vcpus: int,
        worker_vcpus: int,
        worker_memory_mib: int,
        job_timeout_minutes: int,
        job_attempts: int,
    ) -> None:
        super().__init__(scope, construct_id)
        profile = ARCHITECTURES[architecture]
        stack_name = Stack.of(self).stack_name

        self.vpc = ec2.Vpc(
            self,
            "Network",
            ip_addresses=ec2.IpAddresses.cidr("10.42.0.0/16"),
            max_azs=2,  # an environment-agnostic stack sees two AZs (Fn::GetAZs); no lookup needed
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=20,
                    map_public_ip_on_launch=True,
                )
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
            # Nothing is launched into the default security group; restricting it would add a custom
            # resource Lambda to the stack for no gain.
            restrict_default_security_group=False,
        )
        acknowledge(
            self.vpc,
            "AwsSolutions-VPC7",
            "Instances accept no inbound traffic and talk only to S3 (gateway endpoint), ECR and Batch; "
            "flow logs would bill CloudWatch ingestion on every run with nobody reading them.",
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "WorkerSecurityGroup",
            vpc=self.vpc,
            description="StanFleet workers: no inbound; outbound to S3, ECR and the Batch/ECS endpoints",
            allow_all_outbound=True,
        )

        self.image = ecr_assets.DockerImageAsset(
            self,
            "WorkerImage",
            directory=str(WORKER_IMAGE_CONTEXT),
            file=WORKER_DOCKERFILE,
            platform=profile.platform,
            ignore_mode=IgnoreMode.DOCKER,  # .dockerignore semantics for the root .dockerignore
            # CDK re-admits only a *top-level* Dockerfile after the .dockerignore's "*"; without this the
            # staged context would lack container/Dockerfile and the build at deploy time would fail.
            exclude=[f"!{WORKER_DOCKERFILE}"],
        )

        self.launch_template = spot_instance_launch_template(self, "SpotInstances")
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "SpotEnvironment",
            launch_template=self.launch_template,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.security_group],
            spot=True,
            allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED,
            minv_cpus=0,
            maxv_cpus=max_vcpus,
            instance_classes=list(profile.instance_classes),
            use_optimal_instance_classes=False,
        )
        acknowledge(
            self.compute_environment,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
            "The AWS-managed instance policy is what the ECS agent on Batch instances needs (register with "
            "the cluster, pull from ECR, write container logs); AWS maintains it as the agent changes.",
        )

        self.job_queue = batch.JobQueue(
            self,
            "JobQueue",
            priority=1,
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute_environment, order=1)
            ],
            job_state_time_limit_actions=[
                batch.JobStateTimeLimitAction(
                    action=batch.JobStateTimeLimitActionsAction.CANCEL,
                    max_time=Duration.minutes(STUCK_JOB_MINUTES),
                    reason=batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
                    state=batch.JobStateTimeLimitActionsState.RUNNABLE,
                )
            ],
        )

        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="StanFleet worker jobs: read an ensemble's inputs, write its results (granted by the stack)",
        )
        # One execution role for both job definitions: the ECS agent pulls the image and ships logs with it.
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="StanFleet worker jobs' execution role: pull the worker image, write job logs",
        )
        acknowledge(
            self.execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls themselves are "
            "limited to the CDK asset repository.",
        )
        self.log_group = logs.LogGroup(
            self, "JobLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        acknowledge_checkov(self.log_group, "CKV_AWS_158", LOG_GROUP_WITHOUT_CMK)
        # Fixed names, so the trigger's policy can name each definition without a revision too.
        self.fit_job_definition_name = f"{stack_name}-fit"
        self.compile_job_definition_name = f"{stack_name}-compile"
        self.fit_job_definition = self._job_definition(
            "FitJob",
            name=self.fit_job_definition_name,
            command=FIT_COMMAND,
            bucket=bucket,
            worker_vcpus=worker_vcpus,
            worker_memory_mib=worker_memory_mib,
            job_timeout_minutes=job_timeout_minutes,
            job_attempts=job_attempts,
        )
        self.compile_job_definition = self._job_definition(
            "CompileJob",
            name=self.compile_job_definition_name,
            command=COMPILE_COMMAND,
            bucket=bucket,
            worker_vcpus=worker_vcpus,
            worker_memory_mib=worker_memory_mib,
            job_timeout_minutes=job_timeout_minutes,
            job_attempts=job_attempts,
        )

    def _job_definition(
        self,
        construct_id: str,
        *,
        name: str,
        command: list[str],
        bucket: s3.IBucket,
        worker_vcpus: int,
        worker_memory_mib: int,
        job_timeout_minutes: int,
        job_attempts: int,
    ) -> batch.EcsJobDefinition:
        """A worker job: the image's entry point, retried only when spot reclaims its instance."""
        container = batch.EcsEc2ContainerDefinition(
            self,
            f"{construct_id}Container",
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            cpu=worker_vcpus,
            memory=Size.mebibytes(worker_memory_mib),
            command=list(command),
            # The worker runs as many chains at once as the job has vCPUs (runtime.fitting.session).
            environment={"STANFLEET_BUCKET": bucket.bucket_name, "STANFLEET_WORKER_CORES": str(worker_vcpus)},
            job_role=self.job_role,
            execution_role=self.execution_role,
            logging=ecs.LogDriver.aws_logs(stream_prefix=construct_id.lower(), log_group=self.log_group),
        )
        return batch.EcsJobDefinition(
            self,
            construct_id,
            job_definition_name=name,
            container=container,
            timeout=Duration.minutes(job_timeout_minutes),
            retry_attempts=job_attempts,
            retry_strategies=[
                batch.RetryStrategy.of(
                    batch.Action.RETRY, batch.Reason.custom(on_status_reason=SPOT_RECLAIM_STATUS)
                ),
                # Anything else (a failed fit, a timeout, a bad image) ends the attempt: with no matching
                # rule Batch would retry, so the three catch-alls cover every field a failure can carry.
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_status_reason="*")),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_exit_code="*")),
            ],
            propagate_tags=True,
        )
