"""The ensemble spec: everything that determines an ensemble's results, and its identity."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from runtime.errors import StanFleetError
from runtime.keys import spec_key
from runtime.settings import SamplerSettings
from runtime.store import ObjectStore

GeneratorKind = Literal["stan", "python"]


@dataclass(frozen=True)
class GeneratorSource:
    """Where simulated ensembles come from.

    ``kind == "stan"``: ``code`` is a Stan program run with the fixed_param sampler.
    ``kind == "python"``: ``target`` is ``package.module:function`` and ``code`` the module's source
    (kept so that editing the generator changes the ensemble id).
    """

    kind: GeneratorKind
    code: str
    target: str = ""


@dataclass(frozen=True)
class EnsembleSpec:
    """What to fit and how. Its content hash is the ensemble id; the model name is cosmetic."""

    model_name: str
    model_code: str
    generator: GeneratorSource
    base_data: dict[str, Any]
    seed: int
    settings: SamplerSettings
    engine: str

    @property
    def ensemble_id(self) -> str:
        """SHA-256 (first 20 hex digits) of model, generator, base data, seed, settings and engine."""
        identity = {
            "model_code": self.model_code,
            "generator": {
                "kind": self.generator.kind,
                "code": self.generator.code,
                "target": self.generator.target,
            },
            "base_data": self.base_data,
            "seed": self.seed,
            "settings": self.settings.to_dict(),
            "engine": self.engine,
        }
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    def to_json(self) -> bytes:
        """Serialise, including the id for readers that only want to check it."""
        return json.dumps(
            {
                "ensemble_id": self.ensemble_id,
                "model_name": self.model_name,
                "model_code": self.model_code,
                "generator": {
                    "kind": self.generator.kind,
                    "code": self.generator.code,
                    "target": self.generator.target,
                },
                "base_data": self.base_data,
                "seed": self.seed,
                "settings": self.settings.to_dict(),
                "engine": self.engine,
            },
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> EnsembleSpec:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(payload)
        return cls(
            model_name=raw["model_name"],
            model_code=raw["model_code"],
            generator=GeneratorSource(**raw["generator"]),
            base_data=raw["base_data"],
            seed=raw["seed"],
            settings=SamplerSettings.from_dict(raw["settings"]),
            engine=raw["engine"],
        )


def _derived_seed(ensemble_id: str, purpose: str, index: int) -> int:
    digest = hashlib.sha256(f"{ensemble_id}/{purpose}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def fit_seed(ensemble_id: str, replicate: int) -> int:
    """The sampler seed of one replicate, in ``[0, 2**31)``, derived from the ensemble id."""
    return _derived_seed(ensemble_id, "fit", replicate)


def generator_seed(ensemble_id: str, index: int) -> int:
    """The generator seed of one input block (Stan) or replicate (Python), derived from the id."""
    return _derived_seed(ensemble_id, "generate", index)


def load_spec(store: ObjectStore, ensemble_id: str) -> EnsembleSpec:
    """The ensemble's spec; StanFleetError if the store does not hold the ensemble."""
    try:
        return EnsembleSpec.from_json(store.get(spec_key(ensemble_id)))
    except KeyError:
        raise StanFleetError(f"ensemble {ensemble_id} is not in the store {store.uri}") from None
