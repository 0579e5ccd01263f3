"""Choosing the backend: the engine rules, and the store and executor each backend gets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import runtime.engines.choice
import runtime.executors.choice
from runtime.errors import StanFleetError
from runtime.executors.batch import BatchExecutor
from runtime.executors.choice import open_backend
from runtime.executors.local import LocalProcessExecutor
from runtime.store.local import LocalDirectoryStore
from runtime.store.s3 import S3Store
from tests.runtime.helpers.batch_runner import create_stack


def arguments(**overrides: Any) -> dict[str, Any]:
    """``open_backend``'s keyword arguments: a local backend of 3 workers, with ``overrides``."""
    values: dict[str, Any] = {
        "backend": "local",
        "engine": "auto",
        "wait": True,
        "store": "store",
        "workers": 3,
        "stack": "StanFleet",
        "region": None,
    }
    return {**values, **overrides}


@pytest.fixture(autouse=True)
def no_cmdstan(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as the tests assume it: PyStan installed, CmdStan not."""
    monkeypatch.setattr(runtime.engines.choice, "cmdstan_available", lambda: False)
    monkeypatch.setattr(runtime.executors.choice, "cmdstan_available", lambda: False)


@pytest.fixture
def stack(aws_credentials: None) -> Iterator[str]:
    """A stack in moto (eu-west-1, not the default region) whose fit jobs take 4 vCPUs."""
    with mock_aws():
        fit = boto3.client("batch", region_name="eu-west-1").register_job_definition(
            jobDefinitionName="fit",
            type="container",
            containerProperties={
                "image": "worker",
                "command": ["--help"],
                "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "8192"}],
            },
        )["jobDefinitionArn"]
        outputs = {
            "BucketName": "stanfleet-bucket",
            "JobQueueArn": "arn:aws:batch:eu-west-1:123456789012:job-queue/q",
            "FitJobDefinitionArn": fit,
            "CompileJobDefinitionArn": fit,
        }
        create_stack("StanFleet", outputs, region="eu-west-1")
        yield "eu-west-1"


def test_an_unknown_backend_names_the_choices() -> None:
    with pytest.raises(StanFleetError, match=r"^--backend must be one of local, aws, dask, got 'slurm'$"):
        open_backend(**arguments(backend="slurm"))


def test_no_wait_needs_the_aws_backend() -> None:
    with pytest.raises(StanFleetError, match=r"^--no-wait needs --backend aws"):
        open_backend(**arguments(wait=False))


def test_local_auto_is_pystan_without_cmdstan(tmp_path: Path) -> None:
    backend = open_backend(**arguments(store=str(tmp_path / "store")))
    assert backend.fit_engine == "pystan"
    assert backend.local_engine.name == "pystan"
    assert isinstance(backend.store, LocalDirectoryStore)
    assert backend.store.uri == str(tmp_path / "store")
    assert backend.where == "on 3 local worker(s)"
    assert backend.vcpus_per_job is None
    assert isinstance(backend.executor(requested=5, wait=True), LocalProcessExecutor)


def test_local_cmdstanpy_without_cmdstan_is_refused_when_the_backend_opens(tmp_path: Path) -> None:
    with pytest.raises(StanFleetError, match=r"^--engine cmdstanpy needs CmdStan, which is not installed"):
        open_backend(**arguments(engine="cmdstanpy", store=str(tmp_path)))


def test_opening_the_local_backend_imports_no_stan_library(tmp_path: Path) -> None:
    """The engine is imported on first use, so the workers start a second sooner."""
    code = (
        "import sys; from runtime.executors.choice import open_backend; "
        f"b = open_backend(backend='local', engine='pystan', wait=True, store={str(tmp_path)!r}, "
        "workers=1, stack='StanFleet', region=None); "
        "print(sorted({'stan', 'cmdstanpy'} & set(sys.modules)), b.local_engine.name)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["[]", "pystan"]


def test_local_rejects_an_unknown_engine(tmp_path: Path) -> None:
    with pytest.raises(StanFleetError, match=r"--engine must be one of auto, cmdstanpy, pystan, got 'jax'"):
        open_backend(**arguments(engine="jax", store=str(tmp_path)))


def test_aws_auto_fits_with_cmdstanpy_and_checks_locally_with_pystan(stack: str) -> None:
    backend = open_backend(**arguments(backend="aws", region=stack))
    assert backend.fit_engine == "cmdstanpy"  # the worker image has CmdStan, whatever this machine has
    assert backend.local_engine.name == "pystan"
    assert isinstance(backend.store, S3Store)
    assert backend.store.uri == "s3://stanfleet-bucket"
    assert backend.vcpus_per_job == 4.0
    assert backend.where == "on AWS Batch (stack StanFleet)"
    assert backend.packing is not None and backend.packing.unit == "array child"
    executor = backend.executor(requested=10, wait=False, replicates_per_child=5)
    assert isinstance(executor, BatchExecutor)
    assert executor._replicates_per_child == 5


def test_aws_with_pystan_fits_with_pystan(stack: str) -> None:
    backend = open_backend(**arguments(backend="aws", engine="pystan", region=stack))
    assert (backend.fit_engine, backend.local_engine.name) == ("pystan", "pystan")


def test_aws_rejects_an_unknown_engine_before_looking_for_the_stack() -> None:
    with pytest.raises(StanFleetError, match=r"--engine must be one of auto, cmdstanpy, pystan, got 'jax'"):
        open_backend(**arguments(backend="aws", engine="jax"))


def test_aws_clients_use_the_stacks_region(stack: str) -> None:
    backend = open_backend(**arguments(backend="aws", region=stack, wait=False))
    assert isinstance(backend.store, S3Store)
    assert backend.store._client.meta.region_name == stack
    executor = backend.executor(requested=1, wait=False)
    assert isinstance(executor, BatchExecutor)
    assert executor._batch.meta.region_name == stack
    assert executor._s3.meta.region_name == stack


def test_aws_without_the_stack_is_a_clear_error(stack: str) -> None:
    with pytest.raises(StanFleetError, match=r"stack 'StanFleet' not found in region us-east-1"):
        open_backend(**arguments(backend="aws"))  # the stack is in eu-west-1, the default region is not
