"""The real thing: the pinned AWS CDK CLI synthesizes the app (cdk-nag included), then cfn-lint.

Needs node_modules from ``npm ci`` (``make`` runs it). Synthesis needs no AWS account and no Docker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks import trigger
from tests.stacks.conftest import REPO_ROOT

CLI = REPO_ROOT / "node_modules" / "aws-cdk"
CUSTOM_CONTEXT = ["-c", "architecture=arm64", "-c", "maxVcpus=256", "-c", "destroyData=true"]
ENV = {
    **os.environ,
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    outdir: Path

    def template(self) -> dict:
        return json.loads((self.outdir / "StanFleet.template.json").read_text())


def _start(outdir: Path, *context: str) -> tuple[subprocess.Popen[str], Path]:
    command = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-o", str(outdir), *context]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process, outdir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Three synths at once: the defaults, every context flag changed, and a bad value."""
    installed = json.loads((CLI / "package.json").read_text())["version"] if CLI.exists() else None
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert installed == pinned, (
        f"node_modules has aws-cdk {installed}, package.json pins {pinned}: run `npm ci`"
    )
    base = tmp_path_factory.mktemp("cdk")
    started = {
        "default": _start(base / "default"),
        "custom": _start(base / "custom", *CUSTOM_CONTEXT),
        "bad": _start(base / "bad", "-c", "maxVcpus=lots"),
    }
    results = {}
    for name, (process, outdir) in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = Run(process.returncode, stdout, stderr, outdir)
    return results


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
    templates = [str(runs[name].outdir / "StanFleet.template.json") for name in ("default", "custom")]
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
