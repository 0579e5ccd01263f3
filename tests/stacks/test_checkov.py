"""checkov, a second rule set, on the templates the CDK CLI synthesizes: no finding unacknowledged.

A deliberate finding is acknowledged where its resource is made (``stacks.nag.acknowledge_checkov``),
which writes the reason into the resource's template metadata; ``.checkov.yaml`` skips those check
ids. Besides the clean run with that configuration, these tests keep the two in step: the
configuration skips exactly the acknowledged ids, and with no skip at all each of those checks fails
on exactly the resources that acknowledge it, so no skip goes stale and none hides a new resource.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stacks.nag import CHECKOV_METADATA
from tests.stacks.conftest import REPO_ROOT, Run

pytestmark = pytest.mark.slow  # the CDK CLI's synthesis, shared by the module's tests

CHECKOV = Path(sys.executable).parent / "checkov"
CONFIG = REPO_ROOT / ".checkov.yaml"
SYNTHESES = ("default", "custom")

Finding = tuple[str, str, str]
"""(template, check id, resource as checkov names it: ``AWS::Lambda::Function.LogicalId``)."""


@dataclass(frozen=True)
class Scan:
    """One checkov run over every synthesized template."""

    returncode: int
    report: dict
    stderr: str

    def failed(self, names: dict[str, str]) -> list[Finding]:
        return sorted(
            (names[str(Path(check["file_abs_path"]).resolve())], check["check_id"], check["resource"])
            for check in self.report["results"]["failed_checks"]
        )


def template_paths(runs: dict[str, Run]) -> dict[str, Path]:
    """Every template of both CLI syntheses (nested stacks included, should any appear), by a short name."""
    paths = {}
    for synthesis in SYNTHESES:
        run = runs[synthesis]
        assert run.returncode == 0, run.stderr
        for path in sorted(run.outdir.glob("*.template.json")):
            paths[f"{synthesis}/{path.name}"] = path
    return paths


def templates_of(runs: dict[str, Run]) -> dict[str, dict]:
    return {name: json.loads(path.read_text()) for name, path in template_paths(runs).items()}


def acknowledged(templates: dict[str, dict]) -> dict[Finding, str]:
    """Each acknowledgment the stack code wrote into template metadata, with its reason."""
    return {
        (name, skip["id"], f"{resource['Type']}.{logical_id}"): skip["comment"]
        for name, template in templates.items()
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get(CHECKOV_METADATA, {}).get("skip", [])
    }


def start(paths: dict[str, Path], *options: str, home: Path) -> subprocess.Popen[str]:
    """checkov over ``paths`` with JSON output, run in ``home`` (no other configuration file found)."""
    files = [argument for path in paths.values() for argument in ("--file", str(path))]
    return subprocess.Popen(
        [str(CHECKOV), *options, "--output", "json", *files],
        cwd=home,
        env={**os.environ, "HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> Scan:
    stdout, stderr = process.communicate(timeout=300)
    assert stdout.lstrip().startswith(("{", "[")), f"checkov printed no report:\n{stderr[-3000:]}"
    report = json.loads(stdout)
    if isinstance(report, list):  # one report per framework; only CloudFormation is asked for
        (report,) = [r for r in report if r["check_type"] == "cloudformation"]
    return Scan(process.returncode, report, stderr)


@pytest.fixture(scope="module")
def scans(
    runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], Scan, Scan]:
    """Two checkov runs at once over every template: with ``.checkov.yaml``, and with no skip at all
    (the acknowledgments stripped from copies of the templates). Returns the path -> template name map
    and both scans."""
    work = tmp_path_factory.mktemp("checkov")
    configured = template_paths(runs)
    bare = {}
    for name, template in templates_of(runs).items():
        for resource in template["Resources"].values():
            resource.get("Metadata", {}).pop(CHECKOV_METADATA, None)
        bare[name] = work / name.replace("/", "-")
        bare[name].write_text(json.dumps(template))
    started = (
        start(configured, "--config-file", str(CONFIG), home=work),
        start(bare, "--framework", "cloudformation", "--skip-download", home=work),
    )
    with_config, without_skips = (finish(process) for process in started)
    names = {str(path.resolve()): name for paths in (configured, bare) for name, path in paths.items()}
    return names, with_config, without_skips


def skipped_ids() -> list[str]:
    return yaml.safe_load(CONFIG.read_text())["skip-check"]


def test_checkov_finds_nothing_unacknowledged(scans: tuple[dict[str, str], Scan, Scan]) -> None:
    names, scan, _ = scans
    summary = scan.report["summary"]
    failed = scan.failed(names)
    assert failed == [], "checkov findings not acknowledged in stacks/ and .checkov.yaml:\n" + "\n".join(
        f"  {check_id} on {resource} ({template})" for template, check_id, resource in failed
    )
    assert scan.returncode == 0, scan.stderr
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0, summary


def test_the_configuration_skips_exactly_the_acknowledged_checks(runs: dict[str, Run]) -> None:
    reasons = acknowledged(templates_of(runs))
    skipped, explained = set(skipped_ids()), {check_id for _, check_id, _ in reasons}
    assert not skipped - explained, (
        f"skipped in .checkov.yaml, acknowledged nowhere: {sorted(skipped - explained)}"
    )
    assert not explained - skipped, f"acknowledged in stacks/, not skipped: {sorted(explained - skipped)}"
    assert len(skipped_ids()) == len(skipped), "a check is skipped twice"
    assert all(reason.strip() for reason in reasons.values())
    uncommented = [
        line.strip()
        for line in CONFIG.read_text().splitlines()
        if re.match(r"\s*- CKV", line) and not re.search(r"#\s*\S", line)
    ]
    assert uncommented == [], "every skipped check carries a one-line reason in .checkov.yaml"


def test_each_skipped_check_fails_without_the_skip_exactly_where_acknowledged(
    runs: dict[str, Run], scans: tuple[dict[str, str], Scan, Scan]
) -> None:
    names, _, scan = scans
    failed = set(scan.failed(names))
    expected = set(acknowledged(templates_of(runs)))
    assert scan.report["summary"]["parsing_errors"] == 0
    assert not failed - expected, f"hidden by a skip but not acknowledged: {sorted(failed - expected)}"
    assert not expected - failed, f"acknowledged but passing without the skip: {sorted(expected - failed)}"
