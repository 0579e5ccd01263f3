"""Acknowledging cdk-nag findings: every suppression names its rule and carries its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``AwsSolutions-IAM5[Resource::...]`` for a single finding)."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of ``construct`` (or of its default child), as findings name it."""
    element = construct.node.default_child or construct
    if not isinstance(element, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation element")
    return Stack.of(construct).get_logical_id(element)
