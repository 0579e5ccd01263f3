"""A stated estimate of what an ensemble's fits cost on spot capacity."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ASSUMED_SPOT_PRICE_PER_VCPU_HOUR = 0.02
"""USD; c-class spot in us-east-1 ran about 0.016-0.024 per vCPU-hour (NOTES §3)."""


@dataclass(frozen=True)
class CostEstimate:
    """vCPU-seconds used times an assumed spot price. Excludes instance start-up and idle time."""

    vcpu_seconds: float
    price_per_vcpu_hour: float
    usd: float
    assumption: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for summary.json."""
        return asdict(self)

    def describe(self) -> str:
        """One line for the terminal."""
        return (
            f"estimated cost: ${self.usd:.4f} ({self.vcpu_seconds:,.0f} vCPU-s at "
            f"${self.price_per_vcpu_hour}/vCPU-hour; {self.assumption})"
        )


def estimate_cost(
    fit_seconds: float, vcpus_per_job: float, price_per_vcpu_hour: float = ASSUMED_SPOT_PRICE_PER_VCPU_HOUR
) -> CostEstimate:
    """Cost of ``fit_seconds`` of worker time on jobs holding ``vcpus_per_job`` vCPUs each."""
    vcpu_seconds = fit_seconds * vcpus_per_job
    return CostEstimate(
        vcpu_seconds=vcpu_seconds,
        price_per_vcpu_hour=price_per_vcpu_hour,
        usd=vcpu_seconds / 3600 * price_per_vcpu_hour,
        assumption="spot price assumed, not billed; fit time only (no instance start-up or idle time)",
    )
