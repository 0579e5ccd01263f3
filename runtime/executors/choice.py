"""Where an ensemble runs: the backends behind the store and executor seams, chosen in one place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from runtime.aws.manifest import TARGET_CHILD_SECONDS
from runtime.engines.base import Engine
from runtime.engines.choice import cmdstan_available, get_engine, require_engine, resolve_engine_name
from runtime.errors import StanFleetError
from runtime.executors.local import LocalProcessExecutor
from runtime.executors.protocol import Executor
from runtime.store.choice import open_store
from runtime.store.protocol import ObjectStore


@dataclass(frozen=True)
class Packing:
    """Replicates packed into one unit of work: about ``target_seconds`` of fits per ``unit``."""

    target_seconds: float
    unit: str


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
    packing: Packing | None = None
    """How the backend packs replicates into its jobs or tasks; None: one replicate at a time."""
    warm_up: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    """Around a submission: the local backend starts its workers on entry (their start-up overlaps the
    submitter's checks and simulation) and stops any left without work on exit."""

    @cached_property
    def local_engine(self) -> Engine:
        """The engine that runs on this machine (see the class docstring)."""
        return get_engine(self.local_engine_name)

    def executor(self, *, requested: int, wait: bool, replicates_per_child: int = 1) -> Executor:
        """The executor for an ensemble of ``requested`` replicates."""
        return self.make_executor(requested, wait, replicates_per_child)


def open_backend(
    *,
    backend: str,
    engine: str,
    store: str,
    workers: int,
    wait: bool,
    stack: str,
    region: str | None,
    scheduler: str | Any | None = None,
) -> Backend:
    """Build the backend named ``backend``, fitting with ``engine``.

    ``local``: ``workers`` processes on ``store``; ``aws``: the deployed ``stack`` in ``region``, its bucket
    the store; ``dask``: the cluster of ``scheduler`` (an address or a ``distributed.Client``), its
    workers using ``store``.
    """
    if backend not in BACKENDS:
        raise StanFleetError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise StanFleetError(f"--scheduler needs --backend dask, got --backend {backend}")
    if backend == "aws":
        return _aws_backend(engine=engine, stack=stack, region=region)
    if not wait:
        raise StanFleetError(f"--no-wait needs --backend aws: {backend} fits are followed by this command")
    if backend == "dask":
        return _dask_backend(engine=engine, store=store, scheduler=scheduler)
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
        packing=Packing(TARGET_CHILD_SECONDS, "array child"),
    )


def _dask_backend(*, engine: str, store: str, scheduler: str | Any | None) -> Backend:
    scheduler = scheduler or os.environ.get(SCHEDULER_VARIABLE)
    if not scheduler:
        raise StanFleetError("--backend dask needs --scheduler ADDRESS (or $DASK_SCHEDULER_ADDRESS)")
    fit_engine = require_engine(engine)
    shared_store = open_store(store)
    try:  # distributed is imported only when a Dask cluster is asked for
        from runtime.executors.dask_cluster import (
            DaskExecutor,
            check_store_from_workers,
            connect,
        )
    except ImportError as exc:
        raise StanFleetError(f"--backend dask needs the distributed package: {exc}") from None
    client, owns_client = connect(scheduler)
    try:
        workers = check_store_from_workers(client, shared_store)
    except BaseException:
        if owns_client:
            client.close()
        raise
    executor = DaskExecutor(client, shared_store, replicates_per_task=1, owns_client=owns_client)
    executor.preload(fit_engine)
    return Backend(
        store=shared_store,
        fit_engine=fit_engine,
        local_engine_name=fit_engine,
        where=f"on the Dask cluster at {client.scheduler.address} ({workers} worker(s) now)",
        make_executor=lambda requested, wait, per_task: executor.with_replicates_per_task(per_task),
        packing=Packing(TARGET_TASK_SECONDS, "Dask task"),
        warm_up=lambda: executor,
    )


BACKENDS = ("local", "aws", "dask")
TARGET_TASK_SECONDS = 30.0
"""Fits per Dask task, in seconds: tens of seconds, as Dask's guidance for many short tasks asks."""
SCHEDULER_VARIABLE = "DASK_SCHEDULER_ADDRESS"
"""The Dask scheduler's address when ``--scheduler`` is not given (Dask's own variable)."""
