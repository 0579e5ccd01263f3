"""The ensemble manifest: what the submitter uploads under ``manifests/`` to launch an ensemble on AWS.

Stdlib only: the trigger Lambda imports it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

MANIFEST_VERSION = 1
MAX_REPLICATES = 1_000_000
"""The largest ensemble: result keys number replicates with 6 digits, and the report reads every result
into memory (about 1 KB each). The submitter refuses more before writing anything."""
MAX_REPLICATES_PER_CHILD = 10_000
_ENSEMBLE_ID = re.compile(r"^[0-9a-f]{20}$")


class ManifestError(ValueError):
    """A manifest that cannot be acted on; the message names the field and what it got."""


@dataclass(frozen=True)
class Manifest:
    """Run replicates ``0..replicates-1`` of an ensemble already published to the bucket.

    ``replicates_per_child`` bin-packs short fits: each Batch array child fits that many replicates.
    """

    ensemble_id: str
    replicates: int
    replicates_per_child: int
    version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        """Serialise for upload."""
        return json.dumps(asdict(self), sort_keys=True).encode()


def parse_manifest(payload: bytes) -> Manifest:
    """Validate and decode a manifest; ManifestError on anything malformed."""
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest must be a JSON object, got {type(raw).__name__}")
    expected = {"ensemble_id", "replicates", "replicates_per_child", "version"}
    if set(raw) != expected:
        raise ManifestError(f"manifest must have exactly the fields {sorted(expected)}, got {sorted(raw)}")
    if raw["version"] != MANIFEST_VERSION:
        raise ManifestError(f"manifest version must be {MANIFEST_VERSION}, got {raw['version']!r}")
    if not isinstance(raw["ensemble_id"], str) or not _ENSEMBLE_ID.match(raw["ensemble_id"]):
        raise ManifestError(f"ensemble_id must be 20 lowercase hex digits, got {raw['ensemble_id']!r}")
    for name, limit in (("replicates", MAX_REPLICATES), ("replicates_per_child", MAX_REPLICATES_PER_CHILD)):
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise ManifestError(f"{name} must be an integer in 1..{limit}, got {value!r}")
    return Manifest(**raw)


TARGET_CHILD_SECONDS = 180.0
"""AWS recommends Batch jobs of 3-5 minutes: shorter ones pay start-up overhead for little work."""


AUTO = "auto"


def replicates_per_child(fit_seconds: float, target_seconds: float = TARGET_CHILD_SECONDS) -> int:
    """Replicates of ``fit_seconds`` each that fill about ``target_seconds`` of one child."""
    return max(1, min(MAX_REPLICATES_PER_CHILD, math.floor(target_seconds / max(fit_seconds, 1e-3))))
