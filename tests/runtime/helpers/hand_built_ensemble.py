"""An ensemble of the Poisson model published to a store by hand: a spec and input blocks, no generator."""

from pathlib import Path

import numpy as np

from runtime.engines.settings import SamplerSettings
from runtime.ensemble.spec import DatasetSpec, EnsembleSpec, GeneratorSource
from runtime.model.conform import SimulatedReplicate
from runtime.store.inputs import publish_inputs
from runtime.store.keys import block_replicates, spec_key
from runtime.store.local import LocalDirectoryStore

ROOT = Path(__file__).resolve().parents[3]
MODEL_CODE = (ROOT / "examples" / "poisson" / "fit_data.stan").read_text()


def hand_built_spec(engine: str = "pystan") -> EnsembleSpec:
    """A small, fast Poisson ensemble (2 chains of 200 + 200 iterations)."""
    return EnsembleSpec(
        model_name="fit_data",
        model_code=MODEL_CODE,
        dataset=DatasetSpec(
            GeneratorSource(kind="python", code="# by hand", target="tests:by_hand"), {"N": 5}, 3
        ),
        base_data={"N": 5},
        settings=SamplerSettings(chains=2, warmup=200, samples=200, thin=4),
        engine=engine,
    )


def publish_block(
    store: LocalDirectoryStore, spec: EnsembleSpec, block: int, bad_replicates: set[int]
) -> None:
    """Publish one input block; each replicate in ``bad_replicates`` gets data the model rejects."""
    rng = np.random.default_rng(block)
    simulations = []
    for replicate in block_replicates(block):
        lam = float(rng.gamma(2.0))
        y = rng.poisson(lam, size=5)
        if replicate in bad_replicates:
            y[0] = -1  # violates the model's lower bound: Stan rejects the data
        simulations.append(SimulatedReplicate(replicate, {"lambda": np.array(lam), "y": y}))
    publish_inputs(store, spec.dataset_id, {block: simulations})


def publish_ensemble(store: LocalDirectoryStore, bad_replicates: set[int], engine: str = "pystan") -> str:
    """Publish the spec and input block 0 (replicates 0..INPUT_BLOCK_SIZE-1); return the ensemble id."""
    spec = hand_built_spec(engine)
    store.put(spec_key(spec.ensemble_id), spec.to_json())
    publish_block(store, spec, 0, bad_replicates)
    return spec.ensemble_id
