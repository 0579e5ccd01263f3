"""The dataset and ensemble specs.

What determines simulated datasets and an ensemble's results, and their identities.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runtime.engines.settings import SamplerSettings
from runtime.errors import StanFleetError
from runtime.store.keys import spec_key
from runtime.store.protocol import ObjectStore

GeneratorKind = Literal["stan", "python", "posterior"]


@dataclass(frozen=True)
class GeneratorSource:
    """Where simulated ensembles come from.

    ``kind == "stan"``: ``code`` is a Stan program run with the fixed_param sampler.
    ``kind == "python"``: ``target`` is ``package.module:function`` and ``code`` the module's source
    (kept so that editing the generator changes the ensemble id).
    ``kind == "posterior"`` (posterior SBC): ``code`` is the model whose reference fit to the observed data
    (the dataset's base data) gives the draws; ``posterior`` holds the ``--predictive`` pairs, the reference
    fit's sampler settings and the ``--augment`` hook (``target``) and its module's source.
    """

    kind: GeneratorKind
    code: str
    target: str = ""
    posterior: dict[str, Any] | None = None


def content_hash(identity: Mapping[str, Any]) -> str:
    """SHA-256 (first 20 hex digits) of a JSON-able mapping, keys sorted."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class DatasetSpec:
    """What determines an ensemble's simulated datasets. Its content hash is the dataset id.

    ``base_data`` is DATA.json as given (not cast to any model's types), so every model version fitted
    to the same generator, data and seed shares the datasets.
    """

    generator: GeneratorSource
    base_data: dict[str, Any]
    seed: int

    @property
    def dataset_id(self) -> str:
        """Hash of generator (kind, code, target), base data and seed."""
        return content_hash(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the id); ``posterior`` only for posterior SBC, so older ids stand."""
        generator: dict[str, Any] = {
            "kind": self.generator.kind,
            "code": self.generator.code,
            "target": self.generator.target,
        }
        if self.generator.posterior is not None:
            generator["posterior"] = self.generator.posterior
        return {"generator": generator, "base_data": self.base_data, "seed": self.seed}

    def to_json(self) -> bytes:
        """Serialise, including the id."""
        return json.dumps({"dataset_id": self.dataset_id, **self.to_dict()}, indent=1).encode()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatasetSpec:
        """Inverse of :meth:`to_dict` (an ``dataset_id`` key is ignored)."""
        return cls(
            generator=GeneratorSource(**raw["generator"]), base_data=raw["base_data"], seed=raw["seed"]
        )


@dataclass(frozen=True)
class EnsembleSpec:
    """What to fit and how: a model fitted to a dataset set. Its content hash is the ensemble id.

    ``base_data`` is the dataset's base data cast to this model's declared types (what the fits get);
    the model name is cosmetic. ``test_quantities`` names the transformed parameters and generated
    quantities whose every scalar element is ranked like a parameter (the sum of ``log_lik`` is
    ranked whenever the model declares it).
    """

    model_name: str
    model_code: str
    dataset: DatasetSpec
    base_data: dict[str, Any]
    settings: SamplerSettings
    engine: str
    test_quantities: tuple[str, ...] = ()

    @property
    def dataset_id(self) -> str:
        """The id of the datasets this ensemble fits."""
        return self.dataset.dataset_id

    @property
    def ensemble_id(self) -> str:
        """Hash of the dataset id, model, settings, engine and test quantities.

        Test quantities count only when any are named: ensembles from before they existed keep their ids.
        """
        identity: dict[str, Any] = {
            "dataset_id": self.dataset_id,
            "model_code": self.model_code,
            "settings": self.settings.to_dict(),
            "engine": self.engine,
        }
        if self.test_quantities:
            identity["test_quantities"] = list(self.test_quantities)
        return content_hash(identity)

    def to_json(self) -> bytes:
        """Serialise, including both ids for readers that only want to check them."""
        return json.dumps(
            {
                "ensemble_id": self.ensemble_id,
                "dataset_id": self.dataset_id,
                "model_name": self.model_name,
                "model_code": self.model_code,
                "dataset": self.dataset.to_dict(),
                "base_data": self.base_data,
                "settings": self.settings.to_dict(),
                "engine": self.engine,
                "test_quantities": list(self.test_quantities),
            },
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> EnsembleSpec:
        """Inverse of :meth:`to_json`; a spec of the layout before datasets were shared is refused."""
        raw = json.loads(payload)
        if "dataset" not in raw:
            raise StanFleetError(
                f"ensemble {raw.get('ensemble_id', '?')} was written by an earlier StanFleet (before "
                "datasets were shared between models): resubmit it, which gives it a new id"
            )
        return cls(
            model_name=raw["model_name"],
            model_code=raw["model_code"],
            dataset=DatasetSpec.from_dict(raw["dataset"]),
            base_data=raw["base_data"],
            settings=SamplerSettings.from_dict(raw["settings"]),
            engine=raw["engine"],
            test_quantities=tuple(raw.get("test_quantities", ())),
        )


def _derived_seed(ensemble_id: str, purpose: str, index: int) -> int:
    digest = hashlib.sha256(f"{ensemble_id}/{purpose}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def fit_seed(ensemble_id: str, replicate: int) -> int:
    """The sampler seed of one replicate, in ``[0, 2**31)``, derived from the ensemble id."""
    return _derived_seed(ensemble_id, "fit", replicate)


def truth_seed(seed: int) -> int:
    """The seed of the quantities evaluated at a fit's true parameters, given the fit's sampler seed.

    Distinct from the sampler's, so a quantity that calls an RNG gets a true value independent of its
    posterior draws (its ranks are then uniform under correct inference).
    """
    return _derived_seed("truth", "fit-seed", seed)


def reference_seed(seed: int) -> int:
    """The sampler seed of posterior SBC's reference fit, derived from the ensemble seed."""
    return _derived_seed("reference", "seed", seed)


def generator_seed(dataset_id: str, index: int) -> int:
    """The generator seed of one input block (Stan) or replicate (Python), derived from the dataset id."""
    return _derived_seed(dataset_id, "generate", index)


def load_spec(store: ObjectStore, ensemble_id: str) -> EnsembleSpec:
    """The ensemble's spec; StanFleetError if the store does not hold the ensemble."""
    try:
        return EnsembleSpec.from_json(store.get(spec_key(ensemble_id)))
    except KeyError:
        raise StanFleetError(f"ensemble {ensemble_id} is not in the store {store.uri}") from None
