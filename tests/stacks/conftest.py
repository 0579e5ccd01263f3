"""Synthesized stacks shared by the stack tests: each configuration is synthesized once per session,
in process (``default_app``, ``custom_app``) and by the pinned CDK CLI (``runs``)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import Settings, build
from stacks.stanfleet_stack import StanFleetStack

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((REPO_ROOT / "cdk.json").read_text())

# jsii prints a banner on every start under Node 20; keep test output clean.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def default_settings() -> Settings:
    """The settings cdk.json's context defaults give."""
    return Settings.from_context(CDK_JSON["context"].get)


CUSTOM = {
    "architecture": "arm64",
    "max_vcpus": 256,
    "destroy_data": True,
    "worker_vcpus": 2,
    "worker_memory_mib": 4096,
    "job_timeout_minutes": 30,
    "job_attempts": 5,
}
"""Every setting away from its default, so one synthesis shows each one reaching the template."""


@dataclass(frozen=True)
class Synthesized:
    """One app, synthesized into its own directory."""

    app: cdk.App
    stack: StanFleetStack
    template: Template
    outdir: Path

    def assets_manifest(self) -> dict:
        return json.loads((self.outdir / f"{self.stack.artifact_id}.assets.json").read_text())

    def asset_dir(self, asset_hash: str) -> Path:
        return self.outdir / f"asset.{asset_hash}"


def synthesize(settings: Settings, outdir: Path) -> Synthesized:
    app = cdk.App(outdir=str(outdir), context=CDK_JSON["context"])
    stack = build(app, settings)
    return Synthesized(app, stack, Template.from_stack(stack), outdir)


@pytest.fixture(scope="session")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(default_settings(), tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def custom_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(replace(default_settings(), **CUSTOM), tmp_path_factory.mktemp("custom"))


@pytest.fixture(scope="session")
def default_template(default_app: Synthesized) -> Template:
    return default_app.template


@pytest.fixture(scope="session")
def custom_template(custom_app: Synthesized) -> Template:
    return custom_app.template


# --- the real thing: the pinned AWS CDK CLI -------------------------------------------------------

CLI = REPO_ROOT / "node_modules" / "aws-cdk"
CUSTOM_CONTEXT = ["-c", "architecture=arm64", "-c", "maxVcpus=256", "-c", "destroyData=true"]
CLI_ENV = {
    **os.environ,
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
}


@dataclass(frozen=True)
class Run:
    """One ``cdk synth`` by the CLI: its exit status, output and cloud assembly directory."""

    returncode: int
    stdout: str
    stderr: str
    outdir: Path

    @property
    def template_path(self) -> Path:
        return self.outdir / "StanFleet.template.json"

    def template(self) -> dict:
        return json.loads(self.template_path.read_text())


def _start(outdir: Path, *context: str) -> tuple[subprocess.Popen[str], Path]:
    command = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-o", str(outdir), *context]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process, outdir


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Three CLI synths at once, shared by every test that reads them (cfn-lint, checkov): the
    defaults, every context flag changed, and a bad value. Needs node_modules from ``npm ci``."""
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
