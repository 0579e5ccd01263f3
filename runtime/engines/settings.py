"""Sampler settings shared by every engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runtime.errors import StanFleetError

AUTO_THIN = "auto"


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings for every fit of an ensemble, plus the thinning used for SBC ranks.

    ``thin`` is a positive int (keep every ``thin``-th draw of each chain) or ``"auto"``
    (per fit and variable, thin by ``ceil(S / min(ess_bulk, ess_tail))``, Säilynoja et al. 2022).
    """

    chains: int = 4
    warmup: int = 1000
    samples: int = 1000
    adapt_delta: float = 0.8
    max_treedepth: int = 10
    thin: int | str = 10

    def validate(self) -> None:
        """Raise StanFleetError naming the first setting that is out of range."""
        for name in ("chains", "samples", "max_treedepth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise StanFleetError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise StanFleetError(f"--warmup must be a non-negative integer, got {self.warmup!r}")
        if not 0 < self.adapt_delta < 1:
            raise StanFleetError(f"--adapt-delta must lie strictly between 0 and 1, got {self.adapt_delta!r}")
        if self.thin != AUTO_THIN and (not isinstance(self.thin, int) or self.thin < 1):
            raise StanFleetError(f"--thin must be a positive integer or 'auto', got {self.thin!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, used in the ensemble spec and its identity hash."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplerSettings:
        """Inverse of :meth:`to_dict`."""
        return cls(**values)
