"""The Poisson generator as a Python function: ``--generator examples.poisson.generator:simulate``."""

from collections.abc import Mapping
from typing import Any

import numpy as np

PRIOR_SD = 6.44787


def simulate(rng: np.random.Generator, base_data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draw the rate from its half-normal prior, then N Poisson counts."""
    lam = abs(rng.normal(0.0, PRIOR_SD))
    return {"lambda": lam}, {"y": rng.poisson(lam, size=base_data["N"])}
