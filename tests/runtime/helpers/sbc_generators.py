"""Python generators for the CLI tests: the Poisson example's generator, and broken variants."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from examples.poisson.generator import simulate

Output = tuple[dict[str, Any], dict[str, Any]]


def wrong_size(rng: np.random.Generator, base: Mapping[str, Any]) -> Output:
    """y has N + 1 elements."""
    truths, data = simulate(rng, base)
    return truths, {"y": np.append(data["y"], 1)}


def real_counts(rng: np.random.Generator, base: Mapping[str, Any]) -> Output:
    """y holds non-integers where the model declares int."""
    truths, _ = simulate(rng, base)
    return truths, {"y": rng.normal(size=base["N"]) ** 2}


def missing_data(rng: np.random.Generator, base: Mapping[str, Any]) -> Output:
    """No y at all."""
    truths, _ = simulate(rng, base)
    return truths, {}


def vector_rate(rng: np.random.Generator, base: Mapping[str, Any]) -> Output:
    """lambda given as a vector where the model declares a scalar."""
    truths, data = simulate(rng, base)
    return {"lambda": np.array([truths["lambda"], 1.0])}, data


def negative_rate(rng: np.random.Generator, base: Mapping[str, Any]) -> Output:
    """A true lambda outside its declared support (lower=0)."""
    _, data = simulate(rng, base)
    return {"lambda": -1.0}, data


def not_a_pair(rng: np.random.Generator, base: Mapping[str, Any]) -> list[float]:
    """Returns the wrong kind of thing."""
    return [1.0]
