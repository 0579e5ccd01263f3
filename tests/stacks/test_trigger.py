"""The trigger Lambda: its runtime, limits, failure handling, S3 notification and its light asset."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from aws_cdk.assertions import Match, Template

from stacks import prefixes, trigger
from tests.stacks.conftest import REPO_ROOT, Synthesized

HEAVY_MODULES = {"numpy", "scipy", "pandas", "matplotlib", "arviz", "cmdstanpy", "stan", "httpstan"}


def _function(template: Template) -> dict:
    functions = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": trigger.HANDLER}})
    assert len(functions) == 1
    (function,) = functions.values()
    return function["Properties"]


def test_function_runs_the_handler_on_a_current_python(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "runtime.trigger.handler",
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Timeout": 300,
            "ReservedConcurrentExecutions": 2,
        },
    )


def test_function_environment_names_queue_job_definitions_and_prefixes(default_template: Template) -> None:
    variables = _function(default_template)["Environment"]["Variables"]
    (queue,) = default_template.find_resources("AWS::Batch::JobQueue")
    definitions = {
        d["Properties"]["JobDefinitionName"]: name
        for name, d in default_template.find_resources("AWS::Batch::JobDefinition").items()
    }
    assert variables == {
        "JOB_QUEUE_ARN": {"Fn::GetAtt": [queue, "JobQueueArn"]},
        "FIT_JOB_DEFINITION_ARN": {"Ref": definitions["StanFleet-fit"]},
        "COMPILE_JOB_DEFINITION_ARN": {"Ref": definitions["StanFleet-compile"]},
        "MANIFEST_PREFIX": "manifests/",
        "CLAIM_PREFIX": "claims/",
    }


def test_failed_events_go_to_an_encrypted_queue_after_two_retries(default_template: Template) -> None:
    (queue,) = default_template.find_resources(
        "AWS::SQS::Queue", {"Properties": {"SqsManagedSseEnabled": True}}
    )
    default_template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 6 * 3600,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        },
    )
    default_template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_function_logs_to_its_own_log_group_with_retention(default_template: Template) -> None:
    log_group = _function(default_template)["LoggingConfig"]["LogGroup"]["Ref"]
    groups = default_template.find_resources("AWS::Logs::LogGroup")
    assert groups[log_group]["Properties"]["RetentionInDays"] == 30
    assert groups[log_group]["DeletionPolicy"] == "Delete"


def test_only_manifest_uploads_invoke_the_function(default_template: Template) -> None:
    (function,) = default_template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": trigger.HANDLER}}
    )
    default_template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "LambdaFunctionConfigurations": [
                    {
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": Match.array_equals(
                                    [
                                        {"Name": "suffix", "Value": prefixes.MANIFEST_SUFFIX},
                                        {"Name": "prefix", "Value": prefixes.MANIFESTS},
                                    ]
                                )
                            }
                        },
                        "LambdaFunctionArn": {"Fn::GetAtt": [function, "Arn"]},
                    }
                ]
            }
        },
    )
    default_template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "FunctionName": {"Fn::GetAtt": [function, "Arn"]},
        },
    )


# --- the asset ------------------------------------------------------------------------------------


def _staged_asset(app: Synthesized) -> Path:
    key = _function(app.template)["Code"]["S3Key"]
    return app.asset_dir(key.removesuffix(".zip"))


def test_asset_holds_exactly_the_handler_and_the_modules_it_imports(default_app: Synthesized) -> None:
    asset = _staged_asset(default_app)
    files = {path.relative_to(asset).as_posix() for path in asset.rglob("*") if path.is_file()}
    assert files == set(trigger.HANDLER_FILES)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _module_files(module: str) -> set[str]:
    """The file of a ``runtime`` module and the ``__init__.py`` of every package above it."""
    parts = module.split(".")
    files = {"/".join(parts[:depth]) + "/__init__.py" for depth in range(1, len(parts))}
    path = "/".join(parts)
    files.add(f"{path}/__init__.py" if (REPO_ROOT / path).is_dir() else f"{path}.py")
    return files


def _runtime_imports(path: Path) -> set[str]:
    """The ``runtime`` modules a file imports, ``from package import module`` included."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names if alias.name.startswith("runtime"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("runtime"):
            modules.add(node.module)
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if (REPO_ROOT / (submodule.replace(".", "/") + ".py")).exists():
                    modules.add(submodule)
    return modules


def test_handler_files_are_the_import_closure_of_the_handler() -> None:
    """If the handler starts importing another runtime module, HANDLER_FILES must list it (with the
    ``__init__.py`` of each package above it, which Python runs first)."""
    closure: set[str] = set()
    pending = [trigger.HANDLER.rsplit(".", 1)[0]]
    while pending:
        files = _module_files(pending.pop()) - closure
        closure |= files
        for name in files:
            pending.extend(_runtime_imports(REPO_ROOT / name))
    assert closure == set(trigger.HANDLER_FILES)


def test_no_handler_file_imports_numpy_or_an_engine(default_app: Synthesized) -> None:
    asset = _staged_asset(default_app)
    for name in trigger.HANDLER_FILES:
        imported = {module.split(".")[0] for module in _imports(asset / name)}
        assert not imported & HEAVY_MODULES, f"{name} imports {sorted(imported & HEAVY_MODULES)}"
        allowed = {"boto3", "botocore", "runtime"} | set(sys.stdlib_module_names)
        assert imported <= allowed, f"{name} imports {sorted(imported - allowed)}"
