"""The CDK app: read and validate the context (defaults in cdk.json), then synthesize StanFleetStack.

The only code that reads CDK context. Override a default with ``-c key=value``, e.g.
``npx cdk deploy -c maxVcpus=256 -c architecture=arm64``. A bad value stops the synthesis with one
line naming the key and the value.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.compute import ARCHITECTURES, Architecture
from stacks.stanfleet_stack import StanFleetStack

MAX_JOB_ATTEMPTS = 10  # AWS Batch allows 1..10 attempts
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,119}$")  # leaves room for the "-compile" suffix


class ContextError(ValueError):
    """A context value that cannot be used; the message names the key and the value."""


def _present(key: str, raw: object) -> object:
    if raw is None:
        raise ContextError(f"context {key} is not set (cdk.json holds the defaults)")
    return raw


def context_int(key: str, raw: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer from cdk.json (a number) or ``-c`` (a string), within ``minimum..maximum``."""
    value = _present(key, raw)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value)
    bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ContextError(f"context {key} must be an integer {bounds}, got {raw!r}")
    return value


def context_bool(key: str, raw: object) -> bool:
    """``true``/``false`` from cdk.json (a boolean) or ``-c`` (a string, any case)."""
    value = _present(key, raw)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ContextError(f"context {key} must be true or false, got {raw!r}")


def context_architecture(key: str, raw: object) -> Architecture:
    """One of the architectures the compute environment knows (``x86_64``, ``arm64``)."""
    value = _present(key, raw)
    if not isinstance(value, str) or value not in ARCHITECTURES:
        raise ContextError(f"context {key} must be one of {', '.join(ARCHITECTURES)}, got {raw!r}")
    return cast(Architecture, value)


def context_stack_name(key: str, raw: object) -> str:
    """A CloudFormation stack name (letters, digits, hyphens; starts with a letter)."""
    value = _present(key, raw)
    if not isinstance(value, str) or not _STACK_NAME.match(value):
        raise ContextError(
            f"context {key} must start with a letter and hold only letters, digits and hyphens "
            f"(at most 120 characters), got {raw!r}"
        )
    return value


@dataclass(frozen=True)
class Settings:
    """The validated context: everything the stack is configured by."""

    stack_name: str
    architecture: Architecture
    max_vcpus: int
    destroy_data: bool
    worker_vcpus: int
    worker_memory_mib: int
    job_timeout_minutes: int
    job_attempts: int

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Settings:
        """Read each key with ``get`` (``app.node.try_get_context``) and validate it."""
        settings = cls(
            stack_name=context_stack_name("stackName", get("stackName")),
            architecture=context_architecture("architecture", get("architecture")),
            max_vcpus=context_int("maxVcpus", get("maxVcpus")),
            destroy_data=context_bool("destroyData", get("destroyData")),
            worker_vcpus=context_int("workerVcpus", get("workerVcpus")),
            worker_memory_mib=context_int("workerMemoryMiB", get("workerMemoryMiB"), minimum=128),
            job_timeout_minutes=context_int("jobTimeoutMinutes", get("jobTimeoutMinutes")),
            job_attempts=context_int("jobAttempts", get("jobAttempts"), maximum=MAX_JOB_ATTEMPTS),
        )
        if settings.worker_vcpus > settings.max_vcpus:
            raise ContextError(
                f"context workerVcpus must not exceed maxVcpus ({settings.max_vcpus}), got {settings.worker_vcpus}"
            )
        return settings


def build(app: cdk.App, settings: Settings) -> StanFleetStack:
    """The stack for ``settings``, with cdk-nag's AwsSolutions checks registered on the app."""
    stack = StanFleetStack(
        app,
        settings.stack_name,
        stack_name=settings.stack_name,
        architecture=settings.architecture,
        max_vcpus=settings.max_vcpus,
        destroy_data=settings.destroy_data,
        worker_vcpus=settings.worker_vcpus,
        worker_memory_mib=settings.worker_memory_mib,
        job_timeout_minutes=settings.job_timeout_minutes,
        job_attempts=settings.job_attempts,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> None:
    """Build the stack from the CDK context's settings and synthesize it."""
    app = cdk.App()
    try:
        settings = Settings.from_context(app.node.try_get_context)
    except ContextError as exc:
        sys.exit(f"error: {exc}")
    build(app, settings)
    app.synth()


if __name__ == "__main__":
    main()
