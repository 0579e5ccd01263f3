"""StanFleet from Python (a notebook, a script, CI): ``run_ensemble`` and ``load_ensemble``.

Every option of ``python -m runtime.submit`` is a keyword argument of :func:`run_ensemble`, named as the
flag is (``--adapt-delta`` is ``adapt_delta``, ``--no-progress`` is ``no_progress``); the command line is
a thin layer over it. Errors raise :class:`~runtime.errors.StanFleetError`, never ``SystemExit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.aws_stack import DEFAULT_STACK
from runtime.collect import results_store, stored_report, write_ensemble_report
from runtime.cost import ASSUMED_SPOT_PRICE_PER_VCPU_HOUR
from runtime.ensemble_report import EnsembleReport, SubmittedEnsemble
from runtime.errors import StanFleetError
from runtime.settings import SamplerSettings
from runtime.summary import DEFAULT_LEVEL, VerdictOptions

_SAMPLER = SamplerSettings()


def run_ensemble(
    model: str | Path,
    *,
    generator: str | Path,
    replicates: int,
    data: str | Path | None = None,
    seed: int = 1,
    workers: int | None = None,
    engine: str = "auto",
    backend: str = "local",
    store: str | Path | None = None,
    out: str | Path | None = None,
    chains: int = _SAMPLER.chains,
    warmup: int = _SAMPLER.warmup,
    samples: int = _SAMPLER.samples,
    adapt_delta: float = _SAMPLER.adapt_delta,
    max_treedepth: int = _SAMPLER.max_treedepth,
    thin: int | str = _SAMPLER.thin,
    test_quantities: str | Sequence[str] | None = None,
    level: float = DEFAULT_LEVEL,
    exclude_divergent: bool = False,
    fail_on_miscalibration: bool = False,
    retry_failed: bool = False,
    no_progress: bool = False,
    stack: str = DEFAULT_STACK,
    region: str | None = None,
    replicates_per_child: int | str = "auto",
    wait: bool = True,
    spot_price: float = ASSUMED_SPOT_PRICE_PER_VCPU_HOUR,
) -> EnsembleReport | SubmittedEnsemble:
    """Simulate ``replicates`` datasets with ``generator``, fit ``model`` to each (what is not stored yet),
    and return the report; the report files are written to ``out`` as the command line writes them.

    ``workers`` defaults to every core, ``store`` to ``$STANFLEET_STORE`` or the user's cache.
    ``test_quantities`` takes names (a list, or comma-separated) or ``"all"``. With ``backend="aws"`` and
    ``wait=False`` the ensemble is only submitted: the result is a :class:`SubmittedEnsemble`, whose
    report :func:`load_ensemble` reads later. With ``fail_on_miscalibration`` a miscalibrated verdict raises
    StanFleetError (after the report is written).
    """
    options = dict(locals())
    _check_types(options)
    from runtime.submit import build_parser, run  # the submitter's parser holds the defaults of the rest

    args = build_parser().parse_args([str(model), "--generator", str(generator), "--replicates", "1"])
    for name, value in options.items():  # None keeps the command line's default (workers, store)
        if value is not None or getattr(args, name) is None:
            setattr(args, name, value)
    args.model, args.generator = Path(model), str(generator)
    args.data = None if data is None else Path(data)
    args.out = None if out is None else Path(out)
    args.store = str(args.store)
    if test_quantities is not None and not isinstance(test_quantities, str):
        args.test_quantities = ",".join(test_quantities)
    outcome = run(args)
    if fail_on_miscalibration and isinstance(outcome, EnsembleReport) and outcome.calibrated is False:
        flagged = ", ".join(outcome.verdict.flagged)
        raise StanFleetError(f"ensemble {outcome.ensemble_id} is miscalibrated: {flagged} flagged")
    return outcome


def load_ensemble(
    ensemble_id: str,
    store: str | Path | None = None,
    *,
    replicates: int | None = None,
    level: float = DEFAULT_LEVEL,
    exclude_divergent: bool = False,
    out: str | Path | None = None,
    stack: str = DEFAULT_STACK,
    region: str | None = None,
) -> EnsembleReport:
    """The report of an ensemble from its stored results (``store``, else the deployed stack's bucket):
    results ``0..R-1`` for R ``replicates`` (default: the ensemble's own). Nothing is refitted; the report
    files are written only when ``out`` is given."""
    _check_types(dict(replicates=replicates, level=level, exclude_divergent=exclude_divergent))
    report = stored_report(
        ensemble_id,
        store=results_store(None if store is None else str(store), stack, region),
        replicates=replicates,
        options=VerdictOptions(level=level, exclude_divergent=exclude_divergent),
    )
    return report if out is None else write_ensemble_report(report, Path(out))


_INTEGERS = ("replicates", "seed", "workers", "chains", "warmup", "samples", "max_treedepth")
_NUMBERS = ("adapt_delta", "level", "spot_price")
_FLAGS = ("exclude_divergent", "fail_on_miscalibration", "retry_failed", "no_progress", "wait")


def _check_types(options: dict[str, Any]) -> None:
    """A wrong type is a StanFleetError naming the argument, as a bad flag is on the command line."""
    for name, value in options.items():
        if value is None:
            continue
        if name in _INTEGERS and (isinstance(value, bool) or not isinstance(value, int)):
            raise StanFleetError(f"{name} must be an integer, got {value!r}")
        if name in _NUMBERS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise StanFleetError(f"{name} must be a number, got {value!r}")
        if name in _FLAGS and not isinstance(value, bool):
            raise StanFleetError(f"{name} must be True or False, got {value!r}")
