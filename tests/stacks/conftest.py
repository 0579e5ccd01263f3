"""Synthesized stacks shared by the stack tests: each configuration is synthesized once per session."""

from __future__ import annotations

import json
import os
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
