"""app.py: context values from cdk.json or ``-c`` become typed settings, or one clear error."""

from __future__ import annotations

from typing import Any

import pytest

from app import ContextError, Settings
from tests.stacks.conftest import CDK_JSON


def _settings(**overrides: Any) -> Settings:
    return Settings.from_context({**CDK_JSON["context"], **overrides}.get)


def test_cdk_json_holds_the_documented_defaults() -> None:
    assert CDK_JSON["app"] == ".venv/bin/python app.py"
    assert _settings() == Settings(
        stack_name="StanFleet",
        architecture="x86_64",
        max_vcpus=128,
        destroy_data=False,
        worker_vcpus=1,
        worker_memory_mib=2048,
        job_timeout_minutes=60,
        job_attempts=3,
    )


def test_command_line_strings_are_parsed() -> None:
    """``-c key=value`` always arrives as a string."""
    settings = _settings(
        maxVcpus="256", destroyData="TRUE", architecture="arm64", workerVcpus="2", jobAttempts="10"
    )
    assert (settings.max_vcpus, settings.destroy_data, settings.architecture) == (256, True, "arm64")
    assert (settings.worker_vcpus, settings.job_attempts) == (2, 10)
    assert _settings(destroyData="false").destroy_data is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("maxVcpus", "lots", r"^context maxVcpus must be an integer >= 1, got 'lots'$"),
        ("maxVcpus", 0, r"^context maxVcpus must be an integer >= 1, got 0$"),
        ("maxVcpus", True, r"^context maxVcpus must be an integer >= 1, got True$"),
        ("architecture", "x86", r"^context architecture must be one of x86_64, arm64, got 'x86'$"),
        ("destroyData", "yes", r"^context destroyData must be true or false, got 'yes'$"),
        ("workerMemoryMiB", "64", r"^context workerMemoryMiB must be an integer >= 128, got '64'$"),
        ("jobTimeoutMinutes", "1.5", r"^context jobTimeoutMinutes must be an integer >= 1, got '1.5'$"),
        ("jobAttempts", 11, r"^context jobAttempts must be an integer 1..10, got 11$"),
        ("stackName", "9lives", r"^context stackName must start with a letter .*, got '9lives'$"),
        ("workerVcpus", "200", r"^context workerVcpus must not exceed maxVcpus \(128\), got 200$"),
        ("stackName", None, r"^context stackName is not set \(cdk.json holds the defaults\)$"),
    ],
)
def test_bad_values_fail_with_one_line_naming_key_and_value(key: str, value: object, message: str) -> None:
    with pytest.raises(ContextError, match=message):
        _settings(**{key: value})
