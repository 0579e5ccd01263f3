"""Posterior SBC's generator on a made-up reference fit: θ* and augmented data per replicate, the shape
check of --predictive draws, and the cap on R."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.augmentation import plan_augmentation
from runtime.ensemble.posterior import PosteriorGenerator, posterior_source
from runtime.ensemble.reference import draw_order, load_reference
from runtime.ensemble.spec import DatasetSpec
from runtime.errors import StanFleetError
from runtime.model.dimensions import read_sized_declarations
from runtime.model.stan_info import read_model_info
from runtime.store.local import LocalDirectoryStore
from tests.runtime.ensemble.test_reference import RECORD

REGRESSION = Path(__file__).resolve().parents[3] / "examples" / "regression" / "regression.stan"
OBSERVED = {"N": 3, "x": [0.0, 1.0, 2.0], "y": [0.5, 1.5, 2.5]}
CHAINS, DRAWS = 2, 6


def reference_variables(y_rep_length: int = 3) -> dict[str, np.ndarray]:
    draws = np.arange(CHAINS * DRAWS, dtype=float).reshape(CHAINS, DRAWS)
    return {
        "alpha": draws,
        "beta": draws + 100,
        "sigma": draws + 200,
        "y_rep": np.repeat(draws[:, :, None], y_rep_length, axis=2) + 1000,
    }


def generator(variables: dict[str, np.ndarray] | None = None) -> PosteriorGenerator:
    model = read_model_info(REGRESSION)
    augmentation = plan_augmentation({"y_rep": "y"}, model, read_sized_declarations(REGRESSION), "regression")
    return PosteriorGenerator(
        posterior_source(REGRESSION.read_text(), {"y_rep": "y"}, SamplerSettings(), augmentation),
        parameters=list(model.parameters),
        observed=OBSERVED,
        predictive={"y_rep": "y"},
        augmentation=augmentation,
        reference=RECORD,  # 2 chains x 6 draws, thin 2: 6 kept
        variables=variables or reference_variables(),
    )


def test_replicates_take_the_thinned_draws_in_draw_order() -> None:
    block = generator().simulate_block("any", 0)
    pooled = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]  # every 2nd draw of chain 0 (0..5), then chain 1 (6..11)
    for replicate in range(6):
        values = block[replicate].values
        draw = pooled[draw_order(6)[replicate]]
        assert float(values["alpha"]) == draw and float(values["sigma"]) == draw + 200
        np.testing.assert_array_equal(values["y"], [0.5, 1.5, 2.5, draw + 1000, draw + 1000, draw + 1000])
        np.testing.assert_array_equal(values["x"], [0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
        assert int(values["N"]) == 6
    assert sorted(float(block[r].values["alpha"]) for r in range(6)) == pooled
    assert float(block[6].values["alpha"]) == float(block[0].values["alpha"])  # past the kept draws: wraps


def test_the_fixed_data_is_what_the_augmentation_leaves() -> None:
    assert generator().fixed_data == {}  # N, x and y all change
    assert generator().source.kind == "posterior"
    assert generator().source.posterior["predictive"] == {"y_rep": "y"}  # type: ignore[index]


def test_a_predictive_draw_shaped_unlike_the_data_is_refused() -> None:
    with pytest.raises(
        StanFleetError,
        match=r"^--predictive y_rep=y: each draw of 'y_rep' has shape \(4,\), 'y' in the observed data has "
        r"shape \(3,\)$",
    ):
        generator(reference_variables(y_rep_length=4))


def test_more_replicates_than_kept_draws_are_refused() -> None:
    generator().check_replicates(6)
    with pytest.raises(
        StanFleetError,
        match=r"^--replicates 7 exceeds the 6 draws the reference fit keeps \(2 chains x 6 draws, thinned by "
        r"2\): ask for at most 6 or raise --samples$",
    ):
        generator().check_replicates(7)


def test_publishing_writes_the_reference_beside_the_dataset(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    generator().publish_sources(store, "d1")
    record, variables = load_reference(store, "d1")  # type: ignore[misc]
    assert record == RECORD and set(variables) == {"alpha", "beta", "sigma", "y_rep"}


def test_the_dataset_id_changes_with_the_observed_data_model_settings_seed_and_pairs() -> None:
    model = read_model_info(REGRESSION)
    augmentation = plan_augmentation({"y_rep": "y"}, model, read_sized_declarations(REGRESSION), "regression")

    def dataset_id(**changes: Any) -> str:
        arguments = {
            "observed": OBSERVED,
            "code": REGRESSION.read_text(),
            "settings": SamplerSettings(),
            "seed": 1,
            "predictive": {"y_rep": "y"},
            **changes,
        }
        source = posterior_source(
            arguments["code"], arguments["predictive"], arguments["settings"], augmentation
        )
        return DatasetSpec(
            generator=source, base_data=arguments["observed"], seed=arguments["seed"]
        ).dataset_id

    base = dataset_id()
    assert dataset_id() == base
    changed = [
        dataset_id(observed={**OBSERVED, "y": [0.5, 1.5, 2.6]}),
        dataset_id(code=REGRESSION.read_text() + "\n// edited"),
        dataset_id(settings=SamplerSettings(adapt_delta=0.9)),
        dataset_id(seed=2),
        dataset_id(predictive={"y_rep": "x"}),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
