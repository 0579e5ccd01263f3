"""Find the deployed stack's resources from its CloudFormation outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from runtime.errors import StanFleetError

DEFAULT_STACK = "StanFleet"


@dataclass(frozen=True)
class StackOutputs:
    """What the submitter needs from the deployed stack."""

    bucket: str
    job_queue_arn: str
    fit_job_definition_arn: str
    compile_job_definition_arn: str


def read_stack_outputs(stack_name: str, region: str | None = None) -> StackOutputs:
    """Describe the stack and read its outputs; a missing stack or output is a clear error."""
    client = _client("cloudformation", region)
    where = f"region {client.meta.region_name}"
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            raise StanFleetError(
                f"stack {stack_name!r} not found in {where}: deploy it with `npx cdk deploy` "
                "or pass --stack/--region"
            ) from None
        raise StanFleetError(f"cannot read stack {stack_name!r} in {where}: {exc}") from None
    except BotoCoreError as exc:
        raise StanFleetError(f"cannot reach AWS to read stack {stack_name!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    wanted = {
        "bucket": "BucketName",
        "job_queue_arn": "JobQueueArn",
        "fit_job_definition_arn": "FitJobDefinitionArn",
        "compile_job_definition_arn": "CompileJobDefinitionArn",
    }
    missing = [key for key in wanted.values() if key not in outputs]
    if missing:
        raise StanFleetError(
            f"stack {stack_name!r} lacks the outputs {', '.join(missing)}: is it a StanFleet stack?"
        )
    return StackOutputs(**{field: outputs[key] for field, key in wanted.items()})


def stack_command(module: str, ensemble_id: str, *, stack: str, region: str | None) -> str:
    """``python -m runtime.<module> ID``, with ``--stack``/``--region`` when they are not the defaults."""
    return (
        f"python -m runtime.{module} {ensemble_id}"
        + (f" --stack {stack}" if stack != DEFAULT_STACK else "")
        + (f" --region {region}" if region else "")
    )


def worker_vcpus(job_definition_arn: str, region: str | None = None) -> float:
    """The vCPUs each fit job reserves, from its job definition."""
    try:
        definitions = _client("batch", region).describe_job_definitions(jobDefinitions=[job_definition_arn])[
            "jobDefinitions"
        ]
    except (BotoCoreError, ClientError) as exc:
        raise StanFleetError(f"cannot read job definition {job_definition_arn}: {exc}") from None
    if not definitions:
        raise StanFleetError(f"job definition {job_definition_arn} not found")
    container = definitions[0].get("containerProperties", {})
    for requirement in container.get("resourceRequirements", []):
        if requirement["type"] == "VCPU":
            return float(requirement["value"])
    return float(container.get("vcpus", 1))


def _client(service: str, region: str | None) -> Any:
    """A boto3 client; no region anywhere (flag, environment, AWS config) is a clear error."""
    try:
        return boto3.client(service, region_name=region)
    except NoRegionError:
        raise StanFleetError(
            "no AWS region: pass --region or set AWS_DEFAULT_REGION (or a region in ~/.aws/config)"
        ) from None
