"""How many replicates each Batch array child fits: enough that a child runs minutes, not seconds."""

from __future__ import annotations

import math

from runtime.aws.manifest import MAX_REPLICATES_PER_CHILD

TARGET_CHILD_SECONDS = 180.0
"""AWS recommends Batch jobs of 3-5 minutes: shorter ones pay start-up overhead for little work."""
AUTO = "auto"


def replicates_per_child(fit_seconds: float, target_seconds: float = TARGET_CHILD_SECONDS) -> int:
    """Replicates of ``fit_seconds`` each that fill about ``target_seconds`` of one child."""
    return max(1, min(MAX_REPLICATES_PER_CHILD, math.floor(target_seconds / max(fit_seconds, 1e-3))))
