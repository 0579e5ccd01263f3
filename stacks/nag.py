"""Acknowledging findings of the stack's two rule sets.

Every suppression names its rule and carries its reason, next to the resource it is about.

cdk-nag's AwsSolutions checks run at synthesis and take acknowledgments on the construct. checkov runs
on the synthesized template (``.checkov.yaml``); its acknowledgments are written into the resource's
template metadata in checkov's own inline form (``Metadata.checkov.skip: [{id, comment}]``), so the
reason travels with the template. ``tests/stacks/test_checkov.py`` keeps the configuration's skip list
equal to the ids acknowledged here, and each acknowledged check failing on exactly these resources.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnElement, CfnResource, Stack, Validations
from constructs import IConstruct

CHECKOV_METADATA = "checkov"
"""The template metadata key checkov reads inline suppressions from."""

LOG_GROUP_WITHOUT_CMK = (
    "CloudWatch Logs encrypts every log group at rest already; a customer-managed KMS key would bill "
    "$1 a month while the stack is idle and guard job and trigger logs that hold no secrets."
)
"""Why neither log group has a customer-managed KMS key (checkov CKV_AWS_158)."""


def acknowledge(construct: IConstruct, rule_id: str, reason: str, *, checkov: Iterable[str] = ()) -> None:
    """Acknowledge one cdk-nag finding (``AwsSolutions-IAM5[Resource::...]`` for a single finding).

    ``checkov`` names the checkov checks that flag the same choice, acknowledged with the same reason.
    """
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))
    for check_id in checkov:
        acknowledge_checkov(construct, check_id, reason)


def acknowledge_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Acknowledge one checkov finding (``CKV_AWS_117``) on the resource ``construct`` makes."""
    resource = cfn_resource(construct)
    entry = {"id": check_id, "comment": reason}
    recorded = resource.get_metadata(CHECKOV_METADATA) or {"skip": []}
    if any(skip["id"] == check_id for skip in recorded["skip"]):
        raise ValueError(f"{construct.node.path}: {check_id} is acknowledged twice")
    resource.add_metadata(CHECKOV_METADATA, {"skip": [*recorded["skip"], entry]})


def cfn_resource(construct: IConstruct) -> CfnResource:
    """The CloudFormation resource ``construct`` makes: itself, or its default child."""
    element = construct.node.default_child or construct
    if not isinstance(element, CfnResource):
        raise TypeError(f"{construct.node.path} makes no single CloudFormation resource")
    return element


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of ``construct`` (or of its default child), as findings name it."""
    element = construct.node.default_child or construct
    if not isinstance(element, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation element")
    return Stack.of(construct).get_logical_id(element)
