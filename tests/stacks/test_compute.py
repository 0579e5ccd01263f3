"""Network with no standing cost, the worker image asset, and the spot Batch environment, queue and jobs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks import job_commands
from tests.stacks.conftest import Synthesized

JOB_DEFINITION_NAMES = {"StanFleet-fit", "StanFleet-compile"}


# --- network --------------------------------------------------------------------------------------


def test_network_has_no_nat_gateway_and_only_public_subnets(default_template: Template) -> None:
    default_template.resource_count_is("AWS::EC2::NatGateway", 0)
    default_template.resource_count_is("AWS::EC2::EIP", 0)
    subnets = default_template.find_resources("AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(subnet["Properties"]["MapPublicIpOnLaunch"] is True for subnet in subnets.values())
    default_template.resource_count_is("AWS::EC2::InternetGateway", 1)


def test_network_reaches_s3_through_a_gateway_endpoint(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]},
        },
    )
    # Interface endpoints bill by the hour; none may appear.
    endpoints = default_template.find_resources("AWS::EC2::VPCEndpoint")
    assert {e["Properties"]["VpcEndpointType"] for e in endpoints.values()} == {"Gateway"}


def test_worker_security_group_accepts_no_inbound_traffic(default_template: Template) -> None:
    groups = default_template.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("StanFleet workers")}},
    )
    assert len(groups) == 1
    (group,) = groups.values()
    assert "SecurityGroupIngress" not in group["Properties"]
    default_template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


# --- image ----------------------------------------------------------------------------------------


def _image_source(app: Synthesized) -> dict[str, Any]:
    images = app.assets_manifest()["dockerImages"]
    assert len(images) == 1
    (image,) = images.values()
    return image["source"]


def test_worker_image_is_built_from_container_dockerfile_for_x86_64_by_default(
    default_app: Synthesized,
) -> None:
    source = _image_source(default_app)
    assert source["dockerFile"] == "container/Dockerfile"
    assert source["platform"] == "linux/amd64"


def test_arm64_builds_the_image_for_graviton(custom_app: Synthesized) -> None:
    assert _image_source(custom_app)["platform"] == "linux/arm64"


def test_staged_image_context_holds_the_dockerfile_and_the_runtime_only(default_app: Synthesized) -> None:
    context = default_app.outdir / _image_source(default_app)["directory"]
    files = {path.relative_to(context).as_posix() for path in context.rglob("*") if path.is_file()}
    assert "container/Dockerfile" in files  # CDK re-admits only a top-level Dockerfile by itself
    assert "runtime/fitting/session.py" in files
    assert not {name.split("/")[0] for name in files} - {"container", "runtime", ".dockerignore"}


# --- Batch ----------------------------------------------------------------------------------------


def test_compute_environment_is_managed_spot_scaling_from_zero(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::Batch::ComputeEnvironment",
        {
            "Type": "managed",
            "State": "ENABLED",
            "ComputeResources": Match.object_like(
                {
                    "Type": "SPOT",
                    "AllocationStrategy": "SPOT_PRICE_CAPACITY_OPTIMIZED",
                    "MinvCpus": 0,
                    "MaxvCpus": 128,
                    "InstanceTypes": Match.array_equals(["c6i", "c7i", "m6i", "m7i"]),
                    "Subnets": Match.any_value(),
                    "SecurityGroupIds": Match.any_value(),
                }
            ),
        },
    )


def test_arm64_uses_graviton_classes_and_max_vcpus_follows_context(custom_template: Template) -> None:
    custom_template.has_resource_properties(
        "AWS::Batch::ComputeEnvironment",
        {
            "ComputeResources": Match.object_like(
                {"MaxvCpus": 256, "InstanceTypes": Match.array_equals(["c7g", "m7g"]), "MinvCpus": 0}
            )
        },
    )


def test_instances_launch_into_the_public_subnets(default_template: Template) -> None:
    (environment,) = default_template.find_resources("AWS::Batch::ComputeEnvironment").values()
    subnets = environment["Properties"]["ComputeResources"]["Subnets"]
    public = default_template.find_resources("AWS::EC2::Subnet")
    assert sorted(ref["Ref"] for ref in subnets) == sorted(public)


def test_job_queue_feeds_the_spot_environment(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::Batch::JobQueue",
        {
            "Priority": 1,
            "ComputeEnvironmentOrder": [{"ComputeEnvironment": Match.any_value(), "Order": 1}],
            "JobStateTimeLimitActions": [
                Match.object_like(
                    {
                        "Action": "CANCEL",
                        "Reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
                        "State": "RUNNABLE",
                    }
                )
            ],
        },
    )


def _job_definitions(template: Template) -> dict[str, dict[str, Any]]:
    found = template.find_resources("AWS::Batch::JobDefinition")
    return {d["Properties"]["JobDefinitionName"]: d["Properties"] for d in found.values()}


def test_two_job_definitions_run_the_worker_image_with_the_bucket(default_template: Template) -> None:
    definitions = _job_definitions(default_template)
    assert set(definitions) == JOB_DEFINITION_NAMES
    (bucket,) = default_template.find_resources("AWS::S3::Bucket")
    images = set()
    commands = {
        name.rsplit("-", 1)[1]: d["ContainerProperties"]["Command"] for name, d in definitions.items()
    }
    assert commands == {"fit": job_commands.FIT_COMMAND, "compile": job_commands.COMPILE_COMMAND}
    for definition in definitions.values():
        container = definition["ContainerProperties"]
        assert container["Environment"] == [
            {"Name": "STANFLEET_BUCKET", "Value": {"Ref": bucket}},
            {"Name": "STANFLEET_WORKER_CORES", "Value": "1"},
        ]
        assert definition["PlatformCapabilities"] == ["EC2"]
        assert definition["Type"] == "container"
        images.add(str(container["Image"]))
    assert len(images) == 1  # one worker image for both


@pytest.mark.parametrize(
    ("fixture", "vcpus", "memory", "timeout", "attempts"),
    [("default_template", "1", "2048", 3600, 3), ("custom_template", "2", "4096", 1800, 5)],
)
def test_job_resources_timeout_and_attempts_follow_context(
    request: pytest.FixtureRequest, fixture: str, vcpus: str, memory: str, timeout: int, attempts: int
) -> None:
    template: Template = request.getfixturevalue(fixture)
    for definition in _job_definitions(template).values():
        requirements = {
            r["Type"]: r["Value"] for r in definition["ContainerProperties"]["ResourceRequirements"]
        }
        assert requirements == {"VCPU": vcpus, "MEMORY": memory}
        environment = {e["Name"]: e["Value"] for e in definition["ContainerProperties"]["Environment"]}
        assert environment["STANFLEET_WORKER_CORES"] == vcpus  # the worker runs as many chains at once
        assert definition["Timeout"] == {"AttemptDurationSeconds": timeout}
        assert definition["RetryStrategy"]["Attempts"] == attempts


def test_retry_strategy_retries_spot_reclaims_and_exits_on_anything_else(default_template: Template) -> None:
    for definition in _job_definitions(default_template).values():
        assert definition["RetryStrategy"]["EvaluateOnExit"] == [
            {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
            {"Action": "EXIT", "OnStatusReason": "*"},
            {"Action": "EXIT", "OnReason": "*"},
            {"Action": "EXIT", "OnExitCode": "*"},
        ]


def test_job_logs_go_to_a_log_group_with_retention(default_template: Template) -> None:
    for definition in _job_definitions(default_template).values():
        log = definition["ContainerProperties"]["LogConfiguration"]
        assert log["LogDriver"] == "awslogs"
        assert log["Options"]["awslogs-group"]["Ref"].startswith("ComputeJobLogs")
    default_template.has_resource(
        "AWS::Logs::LogGroup",
        {"Properties": {"RetentionInDays": 30}, "DeletionPolicy": "Delete"},
    )


def test_job_definitions_share_one_job_role_and_one_execution_role(default_template: Template) -> None:
    definitions = _job_definitions(default_template).values()
    job_roles = {str(d["ContainerProperties"]["JobRoleArn"]) for d in definitions}
    execution_roles = {str(d["ContainerProperties"]["ExecutionRoleArn"]) for d in definitions}
    assert len(job_roles) == 1 and len(execution_roles) == 1
    assert job_roles != execution_roles


def test_spot_instances_read_their_interruption_notice_and_take_no_job_once_given_it(
    default_template: Template,
) -> None:
    """The worker in its container reads the two-minute notice (IMDSv2, one hop more than the instance);
    the ECS agent drains a noticed instance, so Batch places no new job on it."""
    (template_id,) = default_template.find_resources("AWS::EC2::LaunchTemplate")
    default_template.has_resource_properties(
        "AWS::Batch::ComputeEnvironment",
        {
            "ComputeResources": Match.object_like(
                {"LaunchTemplate": Match.object_like({"LaunchTemplateId": {"Ref": template_id}})}
            )
        },
    )
    data = default_template.find_resources("AWS::EC2::LaunchTemplate")[template_id]["Properties"][
        "LaunchTemplateData"
    ]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 2, "HttpTokens": "required"}
    user_data = json.dumps(data["UserData"])
    assert "Content-Type: multipart/mixed" in user_data  # Batch merges only MIME multi-part user data
    assert "echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config" in user_data
