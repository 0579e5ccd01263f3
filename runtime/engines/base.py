"""The Stan engine seam: what every engine (PyStan, CmdStanPy) provides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.engines.settings import SamplerSettings

StanData = Mapping[str, Any]


@dataclass(frozen=True)
class Draws:
    """Posterior draws of one NUTS fit.

    ``variables`` maps every parameter, transformed parameter and generated quantity to an
    array shaped ``(chains, draws, *dims)``. The sampler arrays are shaped ``(chains, draws)``.
    """

    variables: dict[str, np.ndarray]
    divergent: np.ndarray
    treedepth: np.ndarray
    energy: np.ndarray
    max_treedepth: int


class CompiledModel(Protocol):
    """A Stan program compiled by one engine, ready to run with any data."""

    def sample(self, data: StanData, settings: SamplerSettings, seed: int) -> Draws:
        """Run NUTS (diag_e, adaptation on) and return its draws."""
        ...

    def fixed_param(
        self, data: StanData, num_draws: int, seed: int, inits: StanData | None = None
    ) -> dict[str, np.ndarray]:
        """Run the fixed_param sampler with one chain.

        Returns every parameter, transformed parameter and generated quantity as an array
        shaped ``(num_draws, *dims)``. With ``inits`` the parameters are held at those values,
        so generated quantities are evaluated at them.
        """
        ...

    def quantities_at(self, data: StanData, values: StanData, seed: int) -> dict[str, np.ndarray]:
        """Every parameter, transformed parameter and generated quantity, evaluated once at ``values``.

        The parameters are held at ``values``; each quantity is shaped ``dims``. ``seed`` drives any RNG the
        program calls.
        """
        ...


@dataclass(frozen=True)
class SharedBuild:
    """A compiled artifact other machines can reuse: ``path`` locally, ``key`` in the object store."""

    key: str
    path: Path


class Engine(Protocol):
    """Compiles Stan programs. Compiling the same program twice must hit a cache."""

    name: str

    def compile(self, stan_file: Path) -> CompiledModel:
        """Compile ``stan_file`` (or reuse a cached build); a compile error raises StanFleetError."""
        ...

    def shared_build(self, stan_file: Path) -> SharedBuild | None:
        """Where this program's build lives locally and in the store, if it can be shared at all."""
        ...
