"""Compile once per ensemble, not once per machine: compiled artifacts travel through the store."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.engines.base import CompiledModel, Engine
from runtime.store.atomic_file import write_atomically
from runtime.store.protocol import ObjectStore


def compile_shared(engine: Engine, program: Path, store: ObjectStore, *, publish: bool) -> CompiledModel:
    """Compile ``program``, first fetching its build from the store when this machine lacks it.

    With ``publish`` (the compile job), a build the store lacks is uploaded for the workers.
    """
    shared = engine.shared_build(program)
    if shared is not None and not shared.path.is_file():
        try:
            payload = store.get(shared.key)
        except KeyError:
            payload = None
        if payload is not None:
            write_atomically(shared.path, payload)
            os.chmod(shared.path, 0o755)
    model = engine.compile(program)
    if publish and shared is not None and not store.exists(shared.key):
        store.put(shared.key, shared.path.read_bytes())
    return model
