"""The result of one replicate: the unit the worker writes and the report reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class VariableScore:
    """SBC statistics of one scalar quantity (a parameter element or a test quantity) in one fit.

    ``rank`` counts kept (thinned) posterior draws below the true value, ties broken at random;
    it lies in ``0..max_rank`` where ``max_rank`` is the number of kept draws.
    """

    true_value: float
    rank: int
    max_rank: int
    mean: float
    sd: float
    q5: float
    median: float
    q95: float
    rhat: float
    ess_bulk: float
    ess_tail: float


@dataclass(frozen=True)
class FitDiagnostics:
    """Sampler diagnostics of one fit."""

    divergences: int
    max_treedepth_hits: int
    min_ebfmi: float
    num_draws: int


@dataclass(frozen=True)
class ReplicateResult:
    """Everything StanFleet keeps about replicate ``replicate`` of an ensemble.

    ``variables`` maps Stan-style scalar names (``beta[1]``, ``Sigma[2,1]``) to scores;
    ``test_quantities`` holds data-dependent quantities such as ``log_lik``.
    A failed replicate has ``status == "failed"``, no scores, its error on one line (``error``) and
    the full text that line was trimmed from (``error_detail``: the engine's output, or a traceback).
    """

    replicate: int
    seed: int
    status: Status
    engine: str
    variables: dict[str, VariableScore] = field(default_factory=dict)
    test_quantities: dict[str, VariableScore] = field(default_factory=dict)
    diagnostics: FitDiagnostics | None = None
    error: str | None = None
    error_detail: str | None = None
    sample_seconds: float = 0.0
    total_seconds: float = 0.0

    def to_json(self) -> bytes:
        """Serialise to UTF-8 JSON (non-finite floats are written as null)."""
        return orjson.dumps(self, option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_json(cls, payload: bytes) -> ReplicateResult:
        """Inverse of :meth:`to_json`."""
        raw: dict[str, Any] = orjson.loads(payload)
        raw["variables"] = {k: VariableScore(**_nan_for_none(v)) for k, v in raw["variables"].items()}
        raw["test_quantities"] = {
            k: VariableScore(**_nan_for_none(v)) for k, v in raw["test_quantities"].items()
        }
        if raw["diagnostics"] is not None:
            raw["diagnostics"] = FitDiagnostics(**_nan_for_none(raw["diagnostics"]))
        return cls(**raw)


def _nan_for_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: float("nan") if v is None else v for k, v in values.items()}
