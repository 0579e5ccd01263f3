"""StanFleet from Python (a notebook, a script, CI): ``run_ensemble`` and ``load_ensemble``.

Every option of ``python -m runtime.submit`` is a keyword argument of :func:`run_ensemble`, named as the
flag is (``--adapt-delta`` is ``adapt_delta``, ``--no-progress`` is ``no_progress``); the command line is
a thin layer over the same pipeline (:mod:`runtime.pipeline.run`): both build one
:class:`~runtime.pipeline.request.EnsembleRequest`, which holds the defaults. Errors raise :class:`~runtime.errors.StanFleetError`, never ``SystemExit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime.aws.stack import DEFAULT_STACK
from runtime.errors import StanFleetError
from runtime.pipeline.request import EnsembleRequest, check_types
from runtime.pipeline.run import run_request
from runtime.report.ensemble_report import EnsembleReport, SubmittedEnsemble
from runtime.report.stored import results_store, stored_report, write_ensemble_report
from runtime.sbc.verdict import DEFAULT_LEVEL, PER_VARIABLE, VerdictOptions

_DEFAULT = EnsembleRequest(model=Path(), generator="", replicates=1)
"""The request's defaults, which the keywords below take."""


def run_ensemble(
    model: str | Path,
    *,
    replicates: int,
    generator: str | Path | None = None,
    data: str | Path | None = None,
    posterior: str | Path | None = None,
    predictive: Mapping[str, str] | Sequence[str] | None = None,
    augment: str | None = None,
    seed: int = _DEFAULT.seed,
    workers: int | None = None,
    engine: str = _DEFAULT.engine,
    backend: str = _DEFAULT.backend,
    store: str | Path | None = None,
    out: str | Path | None = None,
    chains: int = _DEFAULT.chains,
    warmup: int = _DEFAULT.warmup,
    samples: int = _DEFAULT.samples,
    adapt_delta: float = _DEFAULT.adapt_delta,
    max_treedepth: int = _DEFAULT.max_treedepth,
    thin: int | str = _DEFAULT.thin,
    test_quantities: str | Sequence[str] | None = None,
    level: float = _DEFAULT.level,
    exclude_divergent: bool = False,
    verdict: str = _DEFAULT.verdict,
    fail_on_miscalibration: bool = False,
    retry_failed: bool = False,
    no_progress: bool = False,
    stack: str = _DEFAULT.stack,
    region: str | None = None,
    scheduler: str | Any | None = None,
    replicates_per_child: int | str = _DEFAULT.replicates_per_child,
    wait: bool = True,
    spot_price: float = _DEFAULT.spot_price,
) -> EnsembleReport | SubmittedEnsemble:
    """Simulate ``replicates`` datasets with ``generator`` (or draw them given ``posterior``), fit ``model`` to each, and return the report.

    Only what is not stored yet is fitted; the report files are written to ``out`` as the command line
    writes them.

    Every parameter is the flag of ``python -m runtime.submit`` of the same name, with its default.

    Parameters
    ----------
    model
        The Stan program to check.
    replicates
        R, the number of simulated datasets to fit; raising it later reuses earlier fits.
    generator
        Prior SBC: a Stan program run with fixed_param, or ``package.module:function`` called as
        ``function(numpy_rng, base_data) -> (true_values, data)``.
    data
        Base data (JSON) given to the generator and the model: sizes, covariates.
    posterior
        Posterior SBC (instead of ``generator``): the observed data (JSON). ``model`` is fitted to it once,
        and each replicate refits it augmented with one posterior predictive draw of that fit.
    predictive
        With ``posterior``: ``{generated quantity: data variable}`` such as ``{"y_rep": "y"}``.
    augment
        With ``posterior``: ``package.module:function`` called as ``function(observed, simulated) -> data``,
        for models whose declarations do not say how to append a draw to the observed data.
    seed
        The ensemble's seed: the datasets' and the fits' seeds derive from it.
    workers
        Local worker processes (default: every core).
    engine
        ``auto`` (CmdStanPy where CmdStan is installed, else PyStan), ``cmdstanpy`` or ``pystan``.
    backend
        ``local`` (worker processes here), ``aws`` (Batch jobs on the deployed stack) or ``dask`` (tasks on
        the Dask cluster of ``scheduler``).
    store
        Where specs, inputs and results live: a directory or ``s3://`` URI (default:
        ``$STANFLEET_STORE`` or ``~/.cache/stanfleet/store``).
    out
        The report's folder (default: ``sbc-report/<model>-<ensemble id prefix>/``).
    chains, warmup, samples, adapt_delta, max_treedepth
        NUTS settings of every fit.
    thin
        Keep every ``thin``-th draw for the ranks, or ``"auto"`` to thin by ``S / min(ESS)``.
    test_quantities
        Transformed parameters and generated quantities ranked like parameters: names, as a list or
        comma-separated, or ``"all"``.
    level
        Family-wise level of the Holm-corrected uniformity tests.
    exclude_divergent
        Give the verdict on the replicates whose fit had no divergent transitions.
    verdict
        ``"per-variable"`` (one test per variable, its elements combined; Holm across variables) or
        ``"per-element"`` (Holm across every scalar).
    fail_on_miscalibration
        Raise StanFleetError (after the report is written) when the verdict is miscalibrated.
    retry_failed
        Refit the replicates whose stored fit failed (the failed results are kept aside).
    no_progress
        Show no progress bar.
    stack, region
        The deployed stack and its region (``backend="aws"``).
    scheduler
        With ``backend="dask"``: the scheduler's address (default: ``$DASK_SCHEDULER_ADDRESS``) or a
        ``distributed.Client``. Every worker must reach ``store``.
    replicates_per_child
        Replicates per Batch array child or Dask task, or ``"auto"`` (about 3 minutes of fits per child,
        30 s per task).
    wait
        With ``backend="aws"``: follow the jobs and report; False returns a
        :class:`SubmittedEnsemble` once the jobs are submitted (read it later with
        :func:`load_ensemble`).
    spot_price
        Assumed USD per vCPU-hour for the cost estimate.

    Returns
    -------
    EnsembleReport or SubmittedEnsemble
        The report (``calibrated``, ``summary``, ``replicates``, ``figure(name)``), or the submitted
        ensemble with ``wait=False``.

    Raises
    ------
    StanFleetError
        Bad arguments (naming the argument, the rule and the value), a failed check of the model or the
        generator, a miscalibrated verdict with ``fail_on_miscalibration``, or replicates that errors of
        the machinery left without a result (after the report is written).
    """
    request = EnsembleRequest.from_keywords(**locals())
    outcome = run_request(request)
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
    verdict: str = PER_VARIABLE,
    out: str | Path | None = None,
    stack: str = DEFAULT_STACK,
    region: str | None = None,
) -> EnsembleReport:
    """The report of an ensemble from its stored results; nothing is refitted.

    Parameters
    ----------
    ensemble_id
        The id :func:`run_ensemble` (or the submitter) printed and returned.
    store
        Where the results are: a directory or an ``s3://`` URI. ``None``: the deployed stack's bucket.
    replicates
        R: results ``0..R-1`` are read. ``None``: the ensemble's own R (from its manifest, else one past
        the highest replicate with a result).
    level
        Family-wise level of the uniformity tests, in (0, 1).
    exclude_divergent
        Judge calibration only on the fits without divergent transitions.
    verdict
        ``"per-variable"`` or ``"per-element"``, as for :func:`run_ensemble`.
    out
        Directory to write the report files to. ``None``: no files are written.
    stack, region
        The deployed stack whose bucket is read when ``store`` is ``None``.

    Returns
    -------
    EnsembleReport
        The verdict, the per-replicate results and figures, as :func:`run_ensemble` returns them.

    Raises
    ------
    StanFleetError
        The ensemble is not in the store, or an argument is invalid (the message names it).
    """
    check_types(dict(replicates=replicates, level=level, exclude_divergent=exclude_divergent))
    report = stored_report(
        ensemble_id,
        store=results_store(None if store is None else str(store), stack, region),
        replicates=replicates,
        options=VerdictOptions(level=level, exclude_divergent=exclude_divergent, mode=verdict),
    )
    return report if out is None else write_ensemble_report(report, Path(out))
