"""The Batch job definitions' commands, apart from the CDK constructs.

They are kept apart so that tests can import them without starting the CDK's Node runtime (the fake
Batch in ``tests/runtime/helpers/batch_runner.py`` runs them).
"""

from __future__ import annotations

FIT_COMMAND = ["--store", "Ref::store", "--ensemble-id", "Ref::ensemble_id", "--plan", "Ref::plan"]
"""Arguments to the image's ENTRYPOINT (``python -m runtime.worker``) for an array child: it fits its slice
of the plan the trigger wrote. Batch fills the ``Ref::`` parameters from the trigger's SubmitJob."""
COMPILE_COMMAND = [
    "--store",
    "Ref::store",
    "--ensemble-id",
    "Ref::ensemble_id",
    "--compile-only",
    "--compiled-marker",
    "Ref::compiled_marker",
]
"""The compile job's arguments: build the model once and publish the build to ``models/``."""
