"""What an ensemble run needs, in one typed request: ``run_ensemble`` and the command line build one.

Every field is named as its flag of ``python -m runtime.submit`` (``--adapt-delta`` is ``adapt_delta``)
and has that flag's default; :meth:`EnsembleRequest.validate` checks them all at the edge, so the
pipeline (:func:`runtime.pipeline.run.run_request`) trusts its request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from runtime.aws.manifest import AUTO, MAX_REPLICATES, MAX_REPLICATES_PER_CHILD
from runtime.aws.stack import DEFAULT_STACK
from runtime.engines.settings import SamplerSettings
from runtime.ensemble.augmentation import parse_predictive
from runtime.ensemble.cost import ASSUMED_SPOT_PRICE_PER_VCPU_HOUR
from runtime.errors import StanFleetError
from runtime.executors.choice import BACKENDS
from runtime.sbc.verdict import DEFAULT_LEVEL, PER_VARIABLE, VerdictOptions

DEFAULT_STORE = "~/.cache/stanfleet/store"
_SAMPLER = SamplerSettings()


def default_store() -> str:
    """``$STANFLEET_STORE``, else the user's cache."""
    return os.environ.get("STANFLEET_STORE", DEFAULT_STORE)


def default_workers() -> int:
    """Every core of this machine."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class EnsembleRequest:
    """One ensemble run: the model, its generator and data, R, where and how to fit, how to judge.

    ``test_quantities`` holds names, comma-separated or as a sequence, or ``"all"``; the sampler fields
    make :attr:`settings`; ``level``, ``exclude_divergent`` and ``verdict`` make :attr:`verdict_options`.
    """

    model: Path
    generator: str | None
    replicates: int
    data: Path | None = None
    posterior: Path | None = None
    """OBSERVED.json: posterior SBC, conditional on it (instead of ``generator``)."""
    predictive: Mapping[str, str] | Sequence[str] | None = None
    """``{generated quantity: data variable}``, or ``QUANTITY=DATA`` strings (posterior SBC)."""
    augment: str | None = None
    """``package.module:function`` building a replicate's data from the observed and simulated data."""
    seed: int = 1
    workers: int = field(default_factory=default_workers)
    engine: str = "auto"
    backend: str = "local"
    store: str = field(default_factory=default_store)
    out: Path | None = None
    chains: int = _SAMPLER.chains
    warmup: int = _SAMPLER.warmup
    samples: int = _SAMPLER.samples
    adapt_delta: float = _SAMPLER.adapt_delta
    max_treedepth: int = _SAMPLER.max_treedepth
    thin: int | str = _SAMPLER.thin
    test_quantities: str | Sequence[str] | None = None
    level: float = DEFAULT_LEVEL
    exclude_divergent: bool = False
    verdict: str = PER_VARIABLE
    fail_on_miscalibration: bool = False
    retry_failed: bool = False
    no_progress: bool = False
    stack: str = DEFAULT_STACK
    region: str | None = None
    scheduler: str | Any | None = None
    """The Dask scheduler's address, or a ``distributed.Client`` (``backend="dask"``)."""
    replicates_per_child: int | str = AUTO
    wait: bool = True
    spot_price: float = ASSUMED_SPOT_PRICE_PER_VCPU_HOUR

    @classmethod
    def from_keywords(cls, **keywords: Any) -> EnsembleRequest:
        """A request from Python values.

        Paths may be ``str`` or ``Path``; None for ``workers`` or ``store`` keeps their defaults; an unknown
        keyword is a StanFleetError naming it.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise StanFleetError(
                f"unknown argument {unknown[0]!r}; the arguments are: {', '.join(sorted(known))}"
            )
        values = {k: v for k, v in keywords.items() if v is not None or k not in ("workers", "store")}
        for name in ("model", "data", "out", "posterior"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        for name in ("generator", "store", "augment"):
            if values.get(name) is not None:
                values[name] = str(values[name])
        return cls(**values)

    @property
    def settings(self) -> SamplerSettings:
        """The sampler settings every fit of the ensemble runs with."""
        return SamplerSettings(
            chains=self.chains,
            warmup=self.warmup,
            samples=self.samples,
            adapt_delta=self.adapt_delta,
            max_treedepth=self.max_treedepth,
            thin=self.thin,
        )

    @property
    def verdict_options(self) -> VerdictOptions:
        """How the verdict is given: the level, whether divergent fits are left out, per variable or element."""
        return VerdictOptions(level=self.level, exclude_divergent=self.exclude_divergent, mode=self.verdict)

    @property
    def test_quantity_list(self) -> str | None:
        """``test_quantities`` as the command line spells it: comma-separated names, ``all``, or None."""
        if self.test_quantities is None or isinstance(self.test_quantities, str):
            return self.test_quantities
        return ",".join(self.test_quantities)

    def validate(self) -> None:
        """Raise StanFleetError naming the first field that breaks its rule, and the value it has."""
        check_types({f.name: getattr(self, f.name) for f in fields(self)})
        self._validate_datasets_source()
        if not 1 <= self.replicates <= MAX_REPLICATES:
            raise StanFleetError(
                f"--replicates must be an integer in 1..{MAX_REPLICATES:,}, got {self.replicates:,}"
            )
        if self.scheduler is not None and not (
            isinstance(self.scheduler, str) or _is_dask_client(self.scheduler)
        ):
            raise StanFleetError(
                f"scheduler must be an address or a distributed.Client, got {type(self.scheduler).__name__}"
            )
        if self.workers < 1:
            raise StanFleetError(f"--workers must be a positive integer, got {self.workers}")
        if self.backend not in BACKENDS:
            raise StanFleetError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        per_child = self.replicates_per_child
        if per_child != AUTO and not (
            isinstance(per_child, int) and 1 <= per_child <= MAX_REPLICATES_PER_CHILD
        ):
            raise StanFleetError(
                f"--replicates-per-child must be 'auto' or an integer in 1..{MAX_REPLICATES_PER_CHILD}, "
                f"got {per_child}"
            )
        self.settings.validate()
        self.verdict_options  # noqa: B018 (VerdictOptions checks the level and mode as it is built)

    def _validate_datasets_source(self) -> None:
        """Prior SBC (``--generator``) or posterior SBC (``--posterior`` with ``--predictive``), not both."""
        if self.posterior is None:
            if self.generator is None:
                raise StanFleetError(
                    "give --generator (prior SBC) or --posterior OBSERVED.json (posterior SBC)"
                )
            for name, value in (("--predictive", self.predictive), ("--augment", self.augment)):
                if value is not None:
                    raise StanFleetError(f"{name} needs --posterior OBSERVED.json")
            return
        if self.generator is not None:
            raise StanFleetError(
                "--generator and --posterior exclude each other: posterior SBC draws its datasets from the "
                "model's fit to OBSERVED.json"
            )
        if self.data is not None:
            raise StanFleetError("--data and --posterior exclude each other: OBSERVED.json is the data")
        parse_predictive(self.predictive or ())


def _is_dask_client(value: object) -> bool:
    try:  # distributed is imported only when a Dask cluster is asked for
        from distributed import Client
    except ImportError:
        return False
    return isinstance(value, Client)


def field_default(name: str) -> object:
    """The request's default for the field ``name``, a factory's evaluated now (the flag's default)."""
    field = next(f for f in fields(EnsembleRequest) if f.name == name)
    return field.default_factory() if callable(field.default_factory) else field.default


_TYPES = {
    "replicates": int,
    "seed": int,
    "workers": int,
    "chains": int,
    "warmup": int,
    "samples": int,
    "max_treedepth": int,
    "adapt_delta": float,
    "level": float,
    "spot_price": float,
    "exclude_divergent": bool,
    "fail_on_miscalibration": bool,
    "retry_failed": bool,
    "no_progress": bool,
    "wait": bool,
}
_KIND_NAMES = {int: "an integer", float: "a number", bool: "True or False"}


def check_types(values: Mapping[str, object]) -> None:
    """Raise StanFleetError naming the first argument whose type is wrong (None passes).

    A Python caller's ``chains="4"`` is refused as a bad flag is on the command line.
    """
    for name, value in values.items():
        kind = _TYPES.get(name)
        if kind is not None and value is not None and not _is(value, kind):
            raise StanFleetError(f"{name} must be {_KIND_NAMES[kind]}, got {value!r}")


def _is(value: object, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) if kind is float else isinstance(value, kind)
