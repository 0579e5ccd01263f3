"""Posterior SBC's generator: replicates drawn from the model's reference fit to the observed data.

Replicate ``r`` takes one thinned draw of the reference fit (:func:`runtime.ensemble.reference.draw_order`):
its parameters are the true values θ*, and its ``--predictive`` generated quantities, appended to the
observed data (:mod:`runtime.ensemble.augmentation`), are the data the replicate fits. Under correct
inference θ*'s ranks among that fit's draws are uniform, as in prior SBC (Säilynoja, Schmitt, Bürkner and
Vehtari 2025, arXiv:2502.03279).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.augmentation import Augmentation
from runtime.ensemble.reference import (
    ReferenceFit,
    check_replicates,
    draw_order,
    pooled_draws,
    save_reference,
)
from runtime.ensemble.spec import GeneratorSource
from runtime.errors import StanFleetError
from runtime.model.conform import SimulatedReplicate
from runtime.store.keys import block_replicates
from runtime.store.protocol import ObjectStore


def posterior_source(
    model_code: str, predictive: Mapping[str, str], settings: SamplerSettings, augmentation: Augmentation
) -> GeneratorSource:
    """The identity of posterior draws: the model, the ``--predictive`` pairs, the reference settings, the hook."""
    return GeneratorSource(
        kind="posterior",
        code=model_code,
        target=augmentation.identity.get("augment", ""),
        posterior={
            "predictive": dict(predictive),
            "settings": settings.to_dict(),
            "augment_code": augmentation.identity.get("augment_code", ""),
        },
    )


class PosteriorGenerator:
    """Replicates from the reference fit's draws: θ* and the observed data augmented with the draw's predictions."""

    def __init__(
        self,
        source: GeneratorSource,
        *,
        parameters: list[str],
        observed: Mapping[str, Any],
        predictive: Mapping[str, str],
        augmentation: Augmentation,
        reference: ReferenceFit,
        variables: dict[str, np.ndarray],
    ) -> None:
        self.source = source
        self.reference = reference
        self._observed = dict(observed)
        self._predictive = dict(predictive)
        self._parameters = parameters
        self._augmentation = augmentation
        self._variables = variables
        for quantity, data in predictive.items():
            drawn, given = variables[quantity].shape[2:], np.shape(observed[data])
            if drawn != given:
                raise StanFleetError(
                    f"--predictive {quantity}={data}: each draw of {quantity!r} has shape {drawn}, "
                    f"{data!r} in the observed data has shape {given}"
                )
        self._draws = pooled_draws(
            {name: variables[name] for name in [*parameters, *predictive]}, reference.thin
        )
        self._order = draw_order(reference.kept)

    @property
    def fixed_data(self) -> dict[str, Any]:
        """The observed data every replicate shares (what the augmentation leaves as it is)."""
        replaced = self._augmentation.replaced
        if replaced is None:
            return {}
        return {name: value for name, value in self._observed.items() if name not in replaced}

    def check_replicates(self, replicates: int) -> None:
        """Refuse more replicates than the reference fit keeps draws."""
        check_replicates(
            replicates, self.reference.chains, self.reference.draws_per_chain, self.reference.thin
        )

    def simulate_block(self, dataset_id: str, block: int) -> list[SimulatedReplicate]:
        """θ* and the augmented data of every replicate of ``block``.

        Replicates past the kept draws (never fitted: :meth:`check_replicates`) wrap around to the first.
        """
        simulations = []
        for replicate in block_replicates(block):
            draw = int(self._order[replicate % self.reference.kept])
            truths = {name: self._draws[name][draw] for name in self._parameters}
            simulated = {data: self._draws[quantity][draw] for quantity, data in self._predictive.items()}
            data = self._augmentation.augment(self._observed, simulated)
            if both := sorted(set(truths) & set(data)):
                raise StanFleetError(
                    f"--augment returns the parameter(s) {', '.join(map(repr, both))} as data"
                )
            values = {name: np.asarray(value) for name, value in {**truths, **data}.items()}
            simulations.append(SimulatedReplicate(replicate, values))
        return simulations

    def publish_sources(self, store: ObjectStore, dataset_id: str) -> None:
        """Write the reference fit's draws and record beside the dataset spec, unless they are there."""
        save_reference(store, dataset_id, self.reference, self._variables)
