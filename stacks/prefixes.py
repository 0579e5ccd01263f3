"""The bucket's key layout, in one place: S3 notifications and every IAM grant are built from these.

The runtime owns the exact keys (``runtime.store.keys``); the stack only needs the prefixes and the
object-key patterns that IAM resources and ``s3:prefix`` conditions match (``*`` matches any run of
characters there, ``/`` included).
"""

from __future__ import annotations

DATASETS = "datasets/"
"""``datasets/<dataset id>/spec.json`` and ``inputs/...``: simulated datasets, shared by every ensemble
fitted to them; jobs read only the inputs."""
ENSEMBLES = "ensembles/"
"""``ensembles/<id>/spec.json``, ``run.json`` and ``results/<r>.json``; jobs never read ``run.json``."""
MODELS = "models/"
"""The compiled-model cache: jobs read and write it."""
MANIFESTS = "manifests/"
"""The submitter uploads ``manifests/<id>.json`` here; an upload fires the trigger."""
MANIFEST_SUFFIX = ".json"
CLAIMS = "claims/"
"""The trigger's claim markers (which double as the array plans jobs read). Its only write prefix."""

SPEC_OBJECTS = f"{ENSEMBLES}*/spec.json"
INPUT_OBJECTS = f"{DATASETS}*/inputs/*"
RESULT_OBJECTS = f"{ENSEMBLES}*/results/*"
MODEL_OBJECTS = f"{MODELS}*"
COMPILED_MARKER_OBJECTS = f"{MODELS}compiled/*"
"""Compile jobs' markers (``runtime.store.keys.compiled_marker_key``): the trigger checks for one per model."""
MANIFEST_OBJECTS = f"{MANIFESTS}*"
CLAIM_OBJECTS = f"{CLAIMS}*"
