"""Run the worker entrypoint as a Batch child does, printing where its time goes.

bench/child_startup.py starts this script in place of ``python -m runtime.worker``, with the same
arguments, working directory and environment. It imports ``runtime.worker`` from the working directory
(as ``python -m`` does), wraps the calls a child makes before and between its fits (store reads, the
engine's import and model load, ``stanc --info`` runs, each fit, each batch write) with timers, and runs
``runtime.worker.main``. Each timed call prints one line to stderr::

    @probe {"name": "S3 GET", "start": 12.3, "end": 12.4, "key": "...", "bytes": 123}

with ``time.monotonic()`` seconds, which on Linux are system-wide: the parent passes its own reading
at spawn time in ``STANFLEET_PROBE_T0``, so the first line covers the interpreter's start too. ``cpu``
is the CPU time spent meanwhile by this process and the subprocesses that ended (stanc): a figure the
machine's other load disturbs less than the wall time.
Standard library only until the worker's own imports, so the probe adds next to nothing to them.

    python bench/child_probe.py --store s3://BUCKET --ensemble-id ID --plan KEY
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

PROBE_STARTED = time.monotonic()
PROBE_CPU = time.process_time()
PREFIX = "@probe "
SPAWNED_VARIABLE = "STANFLEET_PROBE_T0"

Describe = Callable[[tuple[Any, ...], Any], dict[str, Any]]


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished subprocesses (stanc, CmdStan)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def emit(name: str, start: float, end: float, **detail: Any) -> None:
    """One timed event as a line on stderr (``cpu``: CPU seconds spent meanwhile, if measured)."""
    sys.stderr.write(PREFIX + json.dumps({"name": name, "start": start, "end": end, **detail}) + "\n")
    sys.stderr.flush()


def timed(name: str, function: Callable[..., Any], describe: Describe | None = None) -> Callable[..., Any]:
    """``function``, emitting an event per call (``describe`` adds fields from the arguments and result)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.monotonic(), cpu_seconds()
        result = None
        try:
            result = function(*args, **kwargs)
            return result
        finally:
            detail = describe(args, result) if describe else {}
            emit(name, start, time.monotonic(), cpu=cpu_seconds() - cpu, cpu_at_start=cpu, **detail)

    return wrapper


def patch(owner: Any, attribute: str, name: str, describe: Describe | None = None) -> None:
    setattr(owner, attribute, timed(name, getattr(owner, attribute), describe))


def key_and_size(args: tuple[Any, ...], result: Any) -> dict[str, Any]:
    return {"key": str(args[1]), "bytes": len(result) if isinstance(result, bytes) else None}


def instrument_store() -> None:
    """Time every S3 request of the store, and the making of its client."""
    from runtime.store.s3 import S3Store

    for method, name in (("get", "S3 GET"), ("get_range", "S3 GET (range)"), ("put", "S3 PUT")):
        patch(S3Store, method, name, key_and_size)
    patch(S3Store, "exists", "S3 HEAD", lambda args, result: {"key": str(args[1])})
    listing = S3Store.list_keys

    def list_keys(self: S3Store, prefix: str) -> Iterator[str]:
        start, cpu = time.monotonic(), cpu_seconds()
        keys = list(listing(self, prefix))
        emit("S3 LIST", start, time.monotonic(), cpu=cpu_seconds() - cpu, key=prefix, count=len(keys))
        return iter(keys)

    S3Store.list_keys = list_keys  # type: ignore[method-assign]
    client = S3Store.__dict__["_client"]
    made = functools.cached_property(timed("S3 client", client.func))
    made.__set_name__(S3Store, "_client")
    S3Store._client = made  # type: ignore[assignment]


def instrument_engine() -> None:
    """Time the CmdStanPy engine's model load and its subprocesses (once its module is imported)."""
    module = sys.modules.get("runtime.engines.cmdstanpy_engine")
    if module is None or getattr(module, "_probed", False):
        return
    module._probed = True  # type: ignore[attr-defined]
    import cmdstanpy.compilation

    patch(module.CmdStanPyEngine, "shared_build", "engine: shared build key")
    patch(module.CmdStanPyEngine, "compile", "engine: compile (a fetched build: load it)")
    patch(module._CmdStanModel, "exe_info", "cmdstanpy: <exe> info")
    patch(cmdstanpy.compilation, "src_info", "cmdstanpy: stanc --info")


def instrument_worker() -> None:
    """Time the worker's steps (module attributes are looked up at call time, so patching them works)."""
    import runtime.fitting.result_batches as batches
    import runtime.fitting.session as session
    import runtime.model.stan_info as stan_info
    import runtime.worker as worker
    from runtime.store.inputs import InputReader

    patch(worker, "open_store", "open store")
    patch(worker, "replicates_of_child", "plan read")
    patch(session, "load_spec", "spec read")
    patch(session, "materialize_stan_program", "program written")
    patch(session, "compile_shared", "compiled model: fetch and load")
    patch(session, "read_model_info", "model info")
    patch(session, "conform_replicate", "conform inputs")
    patch(
        session,
        "fit_replicate",
        "fit",
        lambda args, result: {"seconds": getattr(result, "total_seconds", None)},
    )
    patch(stan_info, "_model_info", "runtime: stanc --info")
    patch(InputReader, "prefetch", "input reads")
    patch(batches.ResultBatcher, "_write_held", "batch write")
    get_engine = session.get_engine

    def engine(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.monotonic(), cpu_seconds()
        found = get_engine(*args, **kwargs)
        emit("engine import", start, time.monotonic(), cpu=cpu_seconds() - cpu)
        instrument_engine()
        return found

    session.get_engine = engine


def main(argv: list[str]) -> None:
    spawned = float(os.environ.get(SPAWNED_VARIABLE, PROBE_STARTED))
    emit("interpreter start", spawned, PROBE_STARTED, cpu=PROBE_CPU)
    sys.path.insert(0, os.getcwd())  # where python -m finds the package: the image's WORKDIR
    start, cpu = time.monotonic(), cpu_seconds()
    import runtime.worker

    emit("import runtime.worker", start, time.monotonic(), cpu=cpu_seconds() - cpu)
    start, cpu = time.monotonic(), cpu_seconds()
    import runtime.store.s3  # open_store imports it for an s3:// store

    emit("import boto3 (S3 store)", start, time.monotonic(), cpu=cpu_seconds() - cpu)
    instrument_store()
    instrument_worker()
    start, cpu = time.monotonic(), cpu_seconds()
    status = runtime.worker.main(argv)
    emit("main returned", start, time.monotonic(), cpu=cpu_seconds() - cpu, status=status)
    runtime.worker.exit_quickly(status)


if __name__ == "__main__":
    main(sys.argv[1:])
