"""The run record: how the submitter ran an ensemble, so that a later report says the same.

The submitter writes it to ``ensembles/<id>/run.json`` (:func:`runtime.store.keys.run_key`) before its jobs
start; ``python -m runtime.collect`` reads it back for the report's ``run`` section and cost estimate.
Ensembles published before the record existed have none.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from runtime.errors import StanFleetError
from runtime.store.keys import run_key
from runtime.store.protocol import ObjectStore

RUN_FIELDS = ("model", "model_name", "generator", "engine", "backend", "seed", "settings")
"""The fields of a report's ``run`` section, in order (the cost estimate joins them at report time)."""
PRICING_FIELDS = ("vcpus_per_job", "usd_per_vcpu_hour")
_FIELD_TYPES: dict[str, tuple[type, str]] = {"seed": (int, "an integer"), "settings": (dict, "a JSON object")}


class RunRecordError(ValueError):
    """A run record that cannot be read; the message names the field and what it got."""


@dataclass(frozen=True)
class RunRecord:
    """The submitting command line's view of an ensemble.

    ``pricing = (vCPUs per job, USD per vCPU-hour)`` when the backend has one (AWS), else None.
    ``posterior`` describes posterior SBC (the observed data, the ``--predictive`` pairs, the ``--augment``
    hook and the reference fit's record); None for prior SBC.
    """

    model: str
    model_name: str
    generator: str
    engine: str
    backend: str
    seed: int
    settings: dict[str, Any]
    pricing: tuple[float, float] | None = None
    posterior: dict[str, Any] | None = None

    @property
    def run(self) -> dict[str, Any]:
        """The report's ``run`` section, without the cost estimate."""
        run = {name: getattr(self, name) for name in RUN_FIELDS}
        if self.posterior is not None:
            run["posterior"] = self.posterior
        return run

    def to_json(self) -> bytes:
        """Serialise for the store."""
        raw: dict[str, Any] = self.run  # with posterior, when there is one
        if self.pricing is not None:
            raw["pricing"] = dict(zip(PRICING_FIELDS, self.pricing, strict=True))
        return json.dumps(raw, indent=1).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> RunRecord:
        """Validate and decode :meth:`to_json`'s output; RunRecordError on anything malformed."""
        try:
            raw = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunRecordError(f"not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise RunRecordError(f"must be a JSON object, got {type(raw).__name__}")
        fields = set(raw) - {"pricing", "posterior"}
        if fields != set(RUN_FIELDS):
            raise RunRecordError(f"must have the fields {sorted(RUN_FIELDS)}, got {sorted(fields)}")
        for name in RUN_FIELDS:
            expected, described = _FIELD_TYPES.get(name, (str, "a string"))
            if isinstance(raw[name], bool) or not isinstance(raw[name], expected):
                raise RunRecordError(f"{name} must be {described}, got {raw[name]!r}")
        posterior = raw.get("posterior")
        if posterior is not None and not isinstance(posterior, dict):
            raise RunRecordError(f"posterior must be a JSON object, got {posterior!r}")
        return cls(
            **{name: raw[name] for name in RUN_FIELDS},
            pricing=_pricing(raw.get("pricing")),
            posterior=posterior,
        )


def _pricing(raw: Any) -> tuple[float, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != set(PRICING_FIELDS):
        raise RunRecordError(f"pricing must be an object with the fields {list(PRICING_FIELDS)}, got {raw!r}")
    for name in PRICING_FIELDS:
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise RunRecordError(f"pricing.{name} must be a finite non-negative number, got {value!r}")
    return float(raw["vcpus_per_job"]), float(raw["usd_per_vcpu_hour"])


def save_run_record(store: ObjectStore, ensemble_id: str, record: RunRecord) -> None:
    """Write the ensemble's run record, replacing the previous submission's."""
    store.put(run_key(ensemble_id), record.to_json())


def load_run_record(store: ObjectStore, ensemble_id: str) -> RunRecord | None:
    """The ensemble's run record; None when it has none; StanFleetError naming the key if corrupt."""
    key = run_key(ensemble_id)
    try:
        payload = store.get(key)
    except KeyError:
        return None
    try:
        return RunRecord.from_json(payload)
    except RunRecordError as exc:
        raise StanFleetError(f"run record {key} in {store.uri} is corrupt: {exc}") from None
