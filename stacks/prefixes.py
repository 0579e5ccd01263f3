"""The bucket's key layout, in one place: S3 notifications and every IAM grant are built from these.

The runtime owns the prefixes and the exact keys (``runtime.store.keys``, imported here); the stack
builds from them the object-key patterns that IAM resources and ``s3:prefix`` conditions match (``*`` matches any run of
characters there, ``/`` included).
"""

from __future__ import annotations

from runtime.store.keys import (
    CLAIMS,
    COMPILED_MARKER_PREFIX,
    DATASETS,
    ENSEMBLES,
    MANIFEST_SUFFIX,
    MANIFESTS,
    MODELS,
)

__all__ = [
    "CLAIMS",
    "CLAIM_OBJECTS",
    "COMPILED_MARKER_OBJECTS",
    "DATASETS",
    "ENSEMBLES",
    "INPUT_OBJECTS",
    "MANIFESTS",
    "MANIFEST_OBJECTS",
    "MANIFEST_SUFFIX",
    "MODELS",
    "MODEL_OBJECTS",
    "RESULT_OBJECTS",
    "SPEC_OBJECTS",
]

SPEC_OBJECTS = f"{ENSEMBLES}*/spec.json"
INPUT_OBJECTS = f"{DATASETS}*/inputs/*"
RESULT_OBJECTS = f"{ENSEMBLES}*/results/*"
MODEL_OBJECTS = f"{MODELS}*"
COMPILED_MARKER_OBJECTS = f"{COMPILED_MARKER_PREFIX}*"
MANIFEST_OBJECTS = f"{MANIFESTS}*"
CLAIM_OBJECTS = f"{CLAIMS}*"
