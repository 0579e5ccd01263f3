"""Reading the deployed stack's outputs and the fit job's vCPUs, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.aws.stack import StackOutputs, read_stack_outputs, worker_vcpus
from runtime.errors import StanFleetError
from tests.runtime.helpers.batch_runner import create_stack

OUTPUTS = {
    "BucketName": "stanfleet-bucket",
    "JobQueueArn": "arn:aws:batch:eu-west-1:123456789012:job-queue/q",
    "FitJobDefinitionArn": "arn:aws:batch:eu-west-1:123456789012:job-definition/fit:3",
    "CompileJobDefinitionArn": "arn:aws:batch:eu-west-1:123456789012:job-definition/compile:3",
}


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws(config={"batch": {"use_docker": False}}):
        yield


def test_outputs_are_read_by_their_keys(aws: None) -> None:
    create_stack("StanFleet", {**OUTPUTS, "TriggerDeadLetterQueueUrl": "https://sqs/dlq"})
    assert read_stack_outputs("StanFleet") == StackOutputs(
        bucket="stanfleet-bucket",
        job_queue_arn=OUTPUTS["JobQueueArn"],
        fit_job_definition_arn=OUTPUTS["FitJobDefinitionArn"],
        compile_job_definition_arn=OUTPUTS["CompileJobDefinitionArn"],
    )


def test_the_stack_is_looked_for_in_the_given_region(aws: None) -> None:
    create_stack("StanFleet", OUTPUTS, region="eu-west-1")
    assert read_stack_outputs("StanFleet", "eu-west-1").bucket == "stanfleet-bucket"
    with pytest.raises(StanFleetError, match=r"stack 'StanFleet' not found in region us-east-1"):
        read_stack_outputs("StanFleet")


def test_a_missing_stack_says_how_to_deploy_or_where_to_look(aws: None) -> None:
    with pytest.raises(
        StanFleetError,
        match=r"^stack 'Elsewhere' not found in region us-east-1: deploy it with `npx cdk deploy` "
        r"or pass --stack/--region$",
    ):
        read_stack_outputs("Elsewhere")


def test_a_stack_without_the_outputs_is_not_a_stanfleet_stack(aws: None) -> None:
    create_stack("Other", {"BucketName": "b", "Something": "else"})
    with pytest.raises(
        StanFleetError,
        match=r"stack 'Other' lacks the outputs JobQueueArn, FitJobDefinitionArn, "
        r"CompileJobDefinitionArn: is it a StanFleet stack\?",
    ):
        read_stack_outputs("Other")


def test_no_region_anywhere_is_a_clear_error(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(StanFleetError, match=r"no AWS region: pass --region or set AWS_DEFAULT_REGION"):
        read_stack_outputs("StanFleet")


def register(container: dict[str, Any]) -> str:
    return str(
        boto3.client("batch").register_job_definition(
            jobDefinitionName="fit",
            type="container",
            containerProperties={"image": "worker", "command": ["--help"], **container},
        )["jobDefinitionArn"]
    )


def test_worker_vcpus_come_from_the_resource_requirements(aws: None) -> None:
    arn = register(
        {"resourceRequirements": [{"type": "MEMORY", "value": "4096"}, {"type": "VCPU", "value": "4"}]}
    )
    assert worker_vcpus(arn) == 4.0


def test_worker_vcpus_fall_back_to_the_legacy_field(aws: None) -> None:
    assert worker_vcpus(register({"vcpus": 2, "memory": 1024})) == 2.0


def test_an_unknown_job_definition_is_an_error(aws: None) -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/gone:1"
    with pytest.raises(StanFleetError, match=r"job definition .*gone:1 not found"):
        worker_vcpus(arn)
