"""The composed stack: least-privilege grants, outputs the submitter reads, and a clean cdk-nag report."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from runtime.store.keys import compiled_marker_key
from stacks import prefixes
from tests.stacks.conftest import Synthesized


def _statements(template: Template, role_prefix: str) -> dict[str, dict[str, Any]]:
    """The policy statements attached to the one role whose logical id starts with ``role_prefix``."""
    policies = [
        policy["Properties"]
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if any(ref["Ref"].startswith(role_prefix) for ref in policy["Properties"]["Roles"])
    ]
    assert len(policies) == 1
    return {s.get("Sid", str(s["Action"])): s for s in policies[0]["PolicyDocument"]["Statement"]}


def _objects(bucket: str, pattern: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{pattern}"]]}


def _bucket(template: Template) -> str:
    (bucket,) = template.find_resources("AWS::S3::Bucket")
    return bucket


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- IAM ------------------------------------------------------------------------------------------


def test_job_role_reads_inputs_and_writes_results_only(default_template: Template) -> None:
    bucket = _bucket(default_template)
    statements = _statements(default_template, "ComputeJobRole")
    assert set(statements) == {"ReadEnsembleInputs", "WriteResultsAndModels", "ListKeys"}
    read, write, listing = (
        statements[s] for s in ("ReadEnsembleInputs", "WriteResultsAndModels", "ListKeys")
    )
    assert read["Action"] == "s3:GetObject"
    assert sorted(map(json.dumps, read["Resource"])) == sorted(
        json.dumps(_objects(bucket, p))
        for p in (
            "ensembles/*/spec.json",
            "datasets/*/inputs/*",
            "ensembles/*/results/*",
            "models/*",
            "claims/*",
        )
    )
    assert write["Action"] == "s3:PutObject"
    assert sorted(map(json.dumps, write["Resource"])) == sorted(
        json.dumps(_objects(bucket, p)) for p in ("ensembles/*/results/*", "models/*")
    )
    # Key names only, so that a missing model or result reads as 404, not 403 (see _grant_jobs).
    assert listing == {
        "Sid": "ListKeys",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": {"Fn::GetAtt": [bucket, "Arn"]},
    }


def test_trigger_reads_manifests_claims_and_specs_writes_only_claims_and_lists_what_it_checks(
    default_template: Template,
) -> None:
    bucket = _bucket(default_template)
    statements = _statements(default_template, "TriggerRole")
    assert statements["ReadManifestsClaimsAndSpecs"]["Action"] == "s3:GetObject"
    assert sorted(map(json.dumps, statements["ReadManifestsClaimsAndSpecs"]["Resource"])) == sorted(
        json.dumps(_objects(bucket, p)) for p in ("manifests/*", "claims/*", "ensembles/*/spec.json")
    )
    assert statements["WriteClaims"]["Action"] == "s3:PutObject"
    assert statements["WriteClaims"]["Resource"] == _objects(bucket, "claims/*")
    assert statements["ListResultsClaimsAndCompiledMarkers"]["Condition"] == {
        "StringLike": {"s3:prefix": ["ensembles/*/results/*", "claims/*", "models/compiled/*"]}
    }
    assert statements["SeeEarlierJobs"] == {
        "Sid": "SeeEarlierJobs",
        "Effect": "Allow",
        "Action": "batch:DescribeJobs",
        "Resource": "*",
    }
    writes = [s for s in statements.values() if "s3:PutObject" in _as_list(s["Action"])]
    assert len(writes) == 1  # never into the manifest prefix that triggers it


def test_trigger_submits_only_to_this_queue_with_these_job_definitions(default_template: Template) -> None:
    submit = _statements(default_template, "TriggerRole")["SubmitWorkerJobs"]
    assert submit["Action"] == "batch:SubmitJob"
    (queue,) = default_template.find_resources("AWS::Batch::JobQueue")
    definitions = default_template.find_resources("AWS::Batch::JobDefinition")
    resources = submit["Resource"]
    assert {"Fn::GetAtt": [queue, "JobQueueArn"]} in resources
    for logical_id, definition in definitions.items():
        assert {"Ref": logical_id} in resources  # the revision ARN the handler is given
        name = definition["Properties"]["JobDefinitionName"]
        unrevisioned = [r for r in resources if name in json.dumps(r)]
        assert len(unrevisioned) == 1, f"{name} by name, without a revision"
        assert "*" not in json.dumps(unrevisioned)
    assert len(resources) == 1 + 2 * len(definitions)


def test_trigger_may_write_its_logs_and_failures_only(default_template: Template) -> None:
    statements = _statements(default_template, "TriggerRole")
    (log_group,) = [
        name
        for name, group in default_template.find_resources("AWS::Logs::LogGroup").items()
        if name.startswith("TriggerLogs")
    ]
    logs = statements[str(["logs:CreateLogStream", "logs:PutLogEvents"])]
    assert logs["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}
    default_template.resource_count_is("AWS::Lambda::Function", 2)  # the trigger + CDK's notification helper
    for role in default_template.find_resources("AWS::IAM::Role").values():
        if role["Properties"].get("Description", "").startswith("StanFleet trigger"):
            assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("fixture", ["default_template", "custom_template"])
def test_no_policy_grants_a_wildcard_action(request: pytest.FixtureRequest, fixture: str) -> None:
    template: Template = request.getfixturevalue(fixture)
    for name, policy in template.find_resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{name} allows {action}"


def test_the_only_unscoped_resources_are_for_actions_without_resource_permissions(
    default_template: Template,
) -> None:
    unscoped = [
        (name, statement["Action"])
        for name, policy in default_template.find_resources("AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "*" in _as_list(statement["Resource"])
    ]
    assert sorted(action for _, action in unscoped) == ["batch:DescribeJobs", "ecr:GetAuthorizationToken"]


# --- outputs --------------------------------------------------------------------------------------


def test_outputs_have_stable_names_and_exports(default_template: Template) -> None:
    bucket = _bucket(default_template)
    outputs = default_template.find_outputs("*")
    assert outputs["BucketName"]["Value"] == {"Ref": bucket}
    for key in (
        "BucketName",
        "JobQueueArn",
        "FitJobDefinitionArn",
        "CompileJobDefinitionArn",
        "TriggerDeadLetterQueueUrl",
    ):
        assert outputs[key]["Export"] == {"Name": f"StanFleet-{key}"}
    (queue,) = default_template.find_resources("AWS::Batch::JobQueue")
    assert outputs["JobQueueArn"]["Value"] == {"Fn::GetAtt": [queue, "JobQueueArn"]}
    fit = next(
        name
        for name, d in default_template.find_resources("AWS::Batch::JobDefinition").items()
        if d["Properties"]["JobDefinitionName"] == "StanFleet-fit"
    )
    assert outputs["FitJobDefinitionArn"]["Value"] == {"Ref": fit}


def test_outputs_say_what_destroy_does_to_the_data(
    default_template: Template, custom_template: Template
) -> None:
    assert default_template.find_outputs("DataOnDestroy")["DataOnDestroy"]["Value"].startswith("kept:")
    assert custom_template.find_outputs("DataOnDestroy")["DataOnDestroy"]["Value"].startswith("deleted:")


# --- hygiene --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["default_app", "custom_app"])
def test_cdk_nag_reports_no_unacknowledged_findings(request: pytest.FixtureRequest, fixture: str) -> None:
    synthesized: Synthesized = request.getfixturevalue(fixture)
    report = AwsSolutionsChecks().validate_scope(synthesized.app)
    assert [v.rule_name for v in report.violations] == []
    assert report.success


def test_template_holds_no_account_id_and_every_resource_is_tagged(default_template: Template) -> None:
    text = json.dumps(default_template.to_json())
    assert not re.search(r"(?<![0-9a-f])\d{12}(?![0-9a-f])", text)
    default_template.has_resource_properties(
        "AWS::Batch::ComputeEnvironment", {"Tags": {"Project": "StanFleet"}}
    )


def test_the_trigger_may_list_the_compile_markers_the_runtime_names() -> None:
    key = compiled_marker_key(
        "arn:aws:batch:us-east-1:123456789012:job-definition/fit:3", "cmdstanpy", "model {}"
    )
    assert fnmatch.fnmatchcase(key, prefixes.COMPILED_MARKER_OBJECTS)
    assert fnmatch.fnmatchcase(key, prefixes.MODEL_OBJECTS)  # the compile job may write it
