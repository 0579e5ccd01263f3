"""The real thing: the pinned AWS CDK CLI synthesizes the app (cdk-nag included), then cfn-lint.

The three CLI synths (``runs``) live in ``conftest.py``, shared with ``test_checkov.py``. They need
node_modules from ``npm ci`` (``make`` runs it); synthesis needs no AWS account and no Docker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import trigger
from tests.stacks.conftest import Run

pytestmark = pytest.mark.slow  # the CDK CLI's synthesis, shared by the module's tests


@pytest.mark.parametrize("name", ["default", "custom"])
def test_cli_synthesizes_with_zero_unacknowledged_nag_errors(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert run.returncode == 0, run.stderr
    assert "ERROR" not in run.stderr and "Synthesis finished with errors" not in run.stderr
    report = json.loads((run.outdir / "validation-report.json").read_text())
    errors = [
        violation["ruleName"]
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        if violation["severity"] == "error"
    ]
    assert errors == []


@pytest.fixture(scope="module")
def lint(runs: dict[str, Run]) -> tuple[int, list[dict], str]:
    """cfn-lint over both synthesized templates in one run: (exit status, findings, stderr)."""
    templates = [str(runs[name].template_path) for name in ("default", "custom")]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout or "[]"), done.stderr


def test_cfn_lint_finds_no_errors(lint: tuple[int, list[dict], str]) -> None:
    returncode, findings, stderr = lint
    assert not stderr.strip(), stderr
    errors = [
        f"{f['Filename']}: {f['Rule']['Id']}: {f['Message']}" for f in findings if f["Level"] == "Error"
    ]
    assert errors == []
    assert returncode & 2 == 0  # cfn-lint's exit status: bit 2 means errors


def test_context_flags_reach_the_cli_template(runs: dict[str, Run]) -> None:
    default, custom = runs["default"], runs["custom"]

    def one(template: dict, kind: str) -> dict:
        (resource,) = [r for r in template["Resources"].values() if r["Type"] == kind]
        return resource

    assert (
        one(default.template(), "AWS::Batch::ComputeEnvironment")["Properties"]["ComputeResources"][
            "MaxvCpus"
        ]
        == 128
    )
    resources = one(custom.template(), "AWS::Batch::ComputeEnvironment")["Properties"]["ComputeResources"]
    assert (resources["MaxvCpus"], resources["InstanceTypes"]) == (256, ["c7g", "m7g"])
    assert one(default.template(), "AWS::S3::Bucket")["DeletionPolicy"] == "Retain"
    assert one(custom.template(), "AWS::S3::Bucket")["DeletionPolicy"] == "Delete"


def test_assets_are_staged_without_building_the_image(runs: dict[str, Run]) -> None:
    for name, platform in (("default", "linux/amd64"), ("custom", "linux/arm64")):
        outdir = runs[name].outdir
        manifest = json.loads((outdir / "StanFleet.assets.json").read_text())
        (image,) = manifest["dockerImages"].values()
        assert image["source"]["platform"] == platform
        assert (outdir / image["source"]["directory"] / "container" / "Dockerfile").is_file()
        (function,) = [
            r
            for r in runs[name].template()["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == trigger.HANDLER
        ]
        staged = outdir / function["Metadata"]["aws:asset:path"]
        files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
        assert files == set(trigger.HANDLER_FILES)


def test_bad_context_value_fails_with_one_line(runs: dict[str, Run]) -> None:
    run = runs["bad"]
    assert run.returncode != 0
    assert "error: context maxVcpus must be an integer >= 1, got 'lots'" in run.stderr.splitlines()
    assert "Traceback" not in run.stderr
