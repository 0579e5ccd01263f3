"""Posterior SBC's set-up: check ``--posterior``/``--predictive``/``--augment``, and get the reference fit.

The reference fit is reused from the store when the dataset set has one; otherwise it runs here, with the
local engine, and is written beside the dataset spec only when the ensemble is published (bad input
writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.engines.base import Engine
from runtime.ensemble.augmentation import check_predictive, open_augmentation, parse_predictive
from runtime.ensemble.posterior import PosteriorGenerator, posterior_source
from runtime.ensemble.reference import check_replicates, load_reference
from runtime.ensemble.spec import DatasetSpec, reference_seed
from runtime.errors import StanFleetError
from runtime.model.conform import conform_base_data, load_base_data
from runtime.model.dimensions import read_sized_declarations
from runtime.model.stan_info import ModelInfo
from runtime.pipeline.request import EnsembleRequest
from runtime.store.protocol import ObjectStore


@dataclass(frozen=True)
class PosteriorDatasets:
    """Posterior SBC's generator, its dataset spec, and what the run record says about it."""

    generator: PosteriorGenerator
    dataset: DatasetSpec
    record: dict[str, Any]


def open_posterior(
    request: EnsembleRequest, model_info: ModelInfo, engine: Engine, store: ObjectStore
) -> PosteriorDatasets:
    """Check the posterior SBC flags against the model and observed data; fit or reuse the reference fit.

    Raises StanFleetError in one line on observed data the model lacks or rejects, a ``--predictive``
    pair that does not match the model, an augmentation the declarations do not give, or more replicates
    than the reference fit keeps draws.
    """
    assert request.posterior is not None
    model_name, observed_name = request.model.name, request.posterior.name
    observed_raw = load_base_data(request.posterior, flag="--posterior")
    missing = [name for name in model_info.inputs if name not in observed_raw]
    if missing:
        raise StanFleetError(
            f"--posterior {observed_name} lacks {', '.join(map(repr, missing))}, data of {model_name}"
        )
    observed = conform_base_data(model_info, observed_raw, f"--posterior {observed_name}")
    predictive = parse_predictive(request.predictive or ())
    check_predictive(predictive, model_info, model_name)
    augmentation = open_augmentation(
        request.augment, predictive, model_info, lambda: read_sized_declarations(request.model), model_name
    )
    source = posterior_source(request.model.read_text(), predictive, request.settings, augmentation)
    dataset = DatasetSpec(generator=source, base_data=observed_raw, seed=request.seed)
    stored = load_reference(store, dataset.dataset_id)
    settings = request.settings
    if stored is None and isinstance(settings.thin, int):  # R is checked before a reference fit is made
        check_replicates(request.replicates, settings.chains, settings.samples, settings.thin)
    if stored is None:
        from runtime.fitting.reference_fit import fit_reference  # ArviZ: imported only when a fit runs

        print(f"reference fit: {model_name} to {observed_name} with {engine.name}", flush=True)
        reference, variables = fit_reference(
            engine.compile(request.model),
            observed,
            parameters=list(model_info.parameters),
            settings=request.settings,
            seed=reference_seed(request.seed),
            engine=engine.name,
            rejected_by=f"{model_name} rejects --posterior {observed_name}",
        )
    else:
        reference, variables = stored
    generator = PosteriorGenerator(
        source,
        parameters=list(model_info.parameters),
        observed=observed,
        predictive=predictive,
        augmentation=augmentation,
        reference=reference,
        variables=variables,
    )
    generator.check_replicates(request.replicates)
    print(f"reference fit ({'reused' if stored else 'new'}): {reference.describe()}", flush=True)
    if reference.warning is not None:
        print(reference.warning, flush=True)
    record = {
        "observed": str(request.posterior),
        "predictive": predictive,
        "augment": request.augment,
        "reference_fit": reference.to_dict(),
    }
    return PosteriorDatasets(generator, dataset, record)
