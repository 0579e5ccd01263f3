"""Where an ensemble runs: the two backends behind the store and executor seams, chosen in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property

from runtime.engines.base import Engine
from runtime.engines.choice import cmdstan_available, get_engine, require_engine, resolve_engine_name
from runtime.errors import StanFleetError
from runtime.executors.local import LocalProcessExecutor
from runtime.executors.protocol import Executor
from runtime.store.choice import open_store
from runtime.store.protocol import ObjectStore


@dataclass(frozen=True)
class Backend:
    """A store, the engine that fits (recorded in the spec), and how to make the executor.

    ``local_engine`` compiles the generator and checks the model on this machine before anything is
    written; it is the fitting engine when that is installed here, else PyStan. It is imported on
    first use (a second of imports), so the local workers start first.
    """

    store: ObjectStore
    fit_engine: str
    local_engine_name: str
    where: str
    make_executor: Callable[[int, bool, int], Executor]
    vcpus_per_job: float | None = None
    warm_up: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    """Around a submission: the local backend starts its workers on entry (their start-up overlaps the
    submitter's checks and simulation) and stops any left without work on exit."""

    @cached_property
    def local_engine(self) -> Engine:
        """The engine that runs on this machine (see the class docstring)."""
        return get_engine(self.local_engine_name)

    @property
    def packs_replicates(self) -> bool:
        """Whether jobs fit several replicates each (the AWS backend's array children)."""
        return self.vcpus_per_job is not None

    def executor(self, *, requested: int, wait: bool, replicates_per_child: int = 1) -> Executor:
        """The executor for an ensemble of ``requested`` replicates."""
        return self.make_executor(requested, wait, replicates_per_child)


def open_backend(
    *, backend: str, engine: str, store: str, workers: int, wait: bool, stack: str, region: str | None
) -> Backend:
    """Build the backend named ``backend``, fitting with ``engine``.

    ``local``: ``workers`` processes on ``store``; ``aws``: the deployed ``stack`` in ``region``, its bucket
    the store.
    """
    if backend not in BACKENDS:
        raise StanFleetError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "aws":
        return _aws_backend(engine=engine, stack=stack, region=region)
    if not wait:
        raise StanFleetError("--no-wait needs --backend aws: local fits run in this command")
    fit_engine = require_engine(engine)
    local_store = open_store(store)
    executor = LocalProcessExecutor(local_store, workers, engine=fit_engine)
    return Backend(
        store=local_store,
        fit_engine=fit_engine,
        local_engine_name=fit_engine,
        where=f"on {workers} local worker(s)",
        make_executor=lambda requested, wait, per_child: executor,
        warm_up=lambda: executor,
    )


def _aws_backend(*, engine: str, stack: str, region: str | None) -> Backend:
    from runtime.aws.stack import read_stack_outputs, worker_vcpus
    from runtime.executors.batch import BatchExecutor
    from runtime.store.s3 import S3Store

    fit_engine = "cmdstanpy" if engine == "auto" else resolve_engine_name(engine)
    outputs = read_stack_outputs(stack, region)
    store = S3Store(outputs.bucket, region=region)
    local = fit_engine if fit_engine == "pystan" or cmdstan_available() else "pystan"
    return Backend(
        store=store,
        fit_engine=fit_engine,
        local_engine_name=require_engine(local),
        where=f"on AWS Batch (stack {stack})",
        make_executor=lambda requested, wait, per_child: BatchExecutor(
            store,
            outputs,
            requested=requested,
            replicates_per_child=per_child,
            wait=wait,
            region=region,
        ),
        vcpus_per_job=worker_vcpus(outputs.fit_job_definition_arn, region),
    )


BACKENDS = ("local", "aws")
