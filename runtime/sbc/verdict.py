"""The calibration verdict of an ensemble.

``summarize`` turns the ensemble's results (a :class:`~runtime.sbc.score_table.ScoreTable`) into an
:class:`EnsembleSummary` (the verdict; :mod:`runtime.report.table` renders it for the terminal).
``quantity_scores`` gives one quantity's scores across replicates, for the verdict here and for the plots of
:mod:`runtime.report.figures`.
Pure NumPy (SciPy through :mod:`runtime.sbc.uniformity`): no matplotlib or ArviZ.

The uniformity test of each quantity is the gamma statistic of Säilynoja et al. (2022) on
randomized PIT values ``u = (rank + U(0,1)) / (max_rank + 1)``. With ``--verdict per-variable`` (the
default) the elements of each variable are combined into one test per variable
(:mod:`runtime.sbc.combination`) and the variables are Holm-corrected together at a family-wise level
(``--level``, 0.01 by default); with ``--verdict per-element`` every scalar is its own member of the Holm
family. With ``--exclude-divergent`` the verdict leaves out the replicates whose fit had divergent
transitions.

References
----------
.. [1] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
   Scandinavian Journal of Statistics 6(2), 65-70.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from runtime.errors import StanFleetError
from runtime.sbc.combination import (
    COMBINATION_METHOD,
    PooledCounts,
    PooledEcdf,
    bonferroni_pair,
    bootstrap_seed,
    cauchy_combination,
    variable_name,
)
from runtime.sbc.score_table import PARAMETER, TEST_QUANTITY, ScoreTable
from runtime.sbc.uniformity import gamma_uniformity_pvalue, randomized_pit

UNIFORMITY_METHOD = (
    "gamma statistic (Säilynoja et al. 2022) on randomized PIT u = (rank + U(0,1)) / (max_rank + 1), "
    "Monte Carlo p-value"
)
CORRECTION = "holm"
EBFMI_THRESHOLD = 0.3
"""A replicate with min E-BFMI below this is flagged (Betancourt 2016)."""
RHAT_THRESHOLD = 1.01
"""A replicate with any R-hat above this is flagged (Vehtari et al. 2021)."""
ESS_THRESHOLD = 400.0
"""A replicate with any bulk or tail ESS below this is flagged (100 per chain for 4 chains)."""
DEFAULT_LEVEL = 0.01
"""The family-wise level of the verdict unless ``--level`` says otherwise."""
PER_VARIABLE = "per-variable"
"""One test per variable (its elements combined), Holm across variables: the default."""
PER_ELEMENT = "per-element"
"""One test per scalar element, Holm across all of them."""
VERDICT_MODES = (PER_VARIABLE, PER_ELEMENT)
LOWEST_ELEMENTS = 3
"""A variable's test names at most this many of its elements, those with the lowest p-values."""


@dataclass(frozen=True)
class VerdictOptions:
    """How the verdict is reached.

    Attributes
    ----------
    level
        The family-wise level of the Holm-corrected uniformity tests.
    exclude_divergent
        Whether replicates whose fit had divergent transitions are left out.
    mode
        ``per-variable`` (Holm across variables, each variable's elements combined) or ``per-element``
        (Holm across every scalar).
    """

    level: float = DEFAULT_LEVEL
    exclude_divergent: bool = False
    mode: str = PER_VARIABLE

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise StanFleetError(f"--level must lie strictly between 0 and 1, got {self.level:g}")
        if self.mode not in VERDICT_MODES:
            raise StanFleetError(f"--verdict must be one of {', '.join(VERDICT_MODES)}, got {self.mode!r}")


DEFAULT_VERDICT = VerdictOptions()


@dataclass(frozen=True)
class QuantitySummary:
    """Calibration statistics of one checked quantity over the succeeded replicates.

    Every statistic is None when fewer than two replicates scored the quantity.
    ``prior_variance`` is the variance (ddof=1) of the quantity's true values across the ensemble.
    """

    replicates: int
    calibrated: bool | None
    p_value: float | None
    mean_z_score: float | None
    mean_contraction: float | None
    mean_rank: float | None
    max_rank: int | None
    prior_variance: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "calibrated": self.calibrated,
            "p_value": self.p_value,
            "mean_z_score": self.mean_z_score,
            "mean_contraction": self.mean_contraction,
            "mean_rank": self.mean_rank,
            "max_rank": self.max_rank,
            "prior_variance": self.prior_variance,
            "replicates": self.replicates,
        }


@dataclass(frozen=True)
class VariableTest:
    """The per-variable uniformity test of one variable, all its elements together.

    For a scalar, ``p_value`` is its gamma-test p-value; for several elements it is the Bonferroni of
    ``cauchy_p_value`` (Cauchy combination of the elements' p-values) and ``pooled_p_value`` (the pooled-ECDF
    test over the ``replicates`` that scored every element; None with fewer than two). ``lowest`` names
    the elements with the lowest p-values. ``calibrated`` is the verdict of Holm across variables (None
    without a p-value); ``mean_z_score`` and ``mean_contraction`` average the elements' means.
    """

    kind: str
    name: str
    elements: int
    replicates: int
    p_value: float | None
    calibrated: bool | None
    cauchy_p_value: float | None
    pooled_p_value: float | None
    lowest: tuple[tuple[str, float], ...]
    mean_z_score: float | None
    mean_contraction: float | None
    pooled: PooledEcdf | None = field(default=None, compare=False, repr=False)
    """The pooled-ECDF test itself (for the report's per-variable panel); not part of summary.json."""

    @property
    def key(self) -> str:
        """``kind:name``, unique across parameters and test quantities."""
        return f"{self.kind}:{self.name}"

    @property
    def label(self) -> str:
        """The name, with ``(test)`` after a test quantity's."""
        return self.name if self.kind == PARAMETER else f"{self.name} (test)"

    @property
    def lowest_note(self) -> str:
        """``z[22] p = 1e-04, z[7] p = 0.003``: the elements with the lowest p-values (empty for a scalar)."""
        if self.elements < 2:
            return ""
        return ", ".join(f"{name} p = {p:.2g}" for name, p in self.lowest)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "kind": self.kind,
            "name": self.name,
            "elements": self.elements,
            "replicates": self.replicates,
            "p_value": self.p_value,
            "calibrated": self.calibrated,
            "cauchy_p_value": self.cauchy_p_value,
            "pooled_p_value": self.pooled_p_value,
            "lowest_elements": [{"name": name, "p_value": p} for name, p in self.lowest],
            "mean_z_score": self.mean_z_score,
            "mean_contraction": self.mean_contraction,
        }


@dataclass(frozen=True)
class DiagnosticsSummary:
    """How many succeeded replicates tripped each sampler diagnostic, and the thresholds used."""

    replicates_with_divergences: int
    replicates_with_max_treedepth: int
    replicates_with_low_ebfmi: int
    replicates_with_high_rhat: int
    replicates_with_low_ess: int
    ebfmi_threshold: float = EBFMI_THRESHOLD
    rhat_threshold: float = RHAT_THRESHOLD
    ess_threshold: float = ESS_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Failure:
    """A failed replicate and the first line of its error."""

    replicate: int
    error: str


@dataclass(frozen=True)
class EnsembleSummary:
    """The calibration verdict of one ensemble.

    ``calibrated`` is True when every checked quantity is calibrated, False when any is not, and
    None when the verdict cannot be given (fewer than two succeeded replicates, nothing checked).
    ``excluded_divergent`` counts the succeeded replicates left out of the verdict for divergent
    transitions; it is None unless they were to be left out. ``failed`` counts the fits that failed
    for the model's reasons (stored as results); ``machinery_errors`` lists the replicates this run
    left without a result because errors of the machinery persisted (a rerun fits them).
    """

    ensemble_id: str
    calibrated: bool | None
    requested: int
    succeeded: int
    failed: int
    reused: int
    family_level: float
    variables: dict[str, QuantitySummary]
    test_quantities: dict[str, QuantitySummary]
    diagnostics: DiagnosticsSummary
    failures: list[Failure]
    fit_seconds: float = 0.0
    run: dict[str, Any] = field(default_factory=dict)
    excluded_divergent: int | None = None
    machinery_errors: list[Failure] = field(default_factory=list)
    mode: str = PER_VARIABLE
    variable_tests: list[VariableTest] = field(default_factory=list)

    @property
    def missing(self) -> int:
        """Requested replicates without a result: not fitted yet, or left so by errors of the machinery."""
        return self.requested - self.succeeded - self.failed

    @property
    def missing_note(self) -> str | None:
        """What the replicates without a result are and what to do about them; None when there are none."""
        if not self.missing:
            return None
        errors = len(self.machinery_errors)
        cause = f" ({errors} hit errors of the machinery, not the model)" if errors else ""
        return f"{self.missing} replicates have no result{cause}: rerun the same command to fit them"

    @property
    def judged(self) -> int:
        """How many replicates the verdict rests on."""
        return self.succeeded - (self.excluded_divergent or 0)

    @property
    def per_variable(self) -> bool:
        """Whether the Holm family is the variables (each variable's elements combined), not the scalars."""
        return self.mode == PER_VARIABLE

    @property
    def family_unit(self) -> str:
        """What the Holm family's members are: ``variables`` or ``quantities``."""
        return "variables" if self.per_variable else "quantities"

    @property
    def flagged(self) -> list[str]:
        """Names of the variables (per-variable verdict) or quantities (per-element) the verdict flags."""
        if self.per_variable:
            return [test.name for test in self.variable_tests if test.calibrated is False]
        return [name for _, name, q in self.quantities() if q.calibrated is False]

    @property
    def exclusion_note(self) -> str | None:
        """With ``--exclude-divergent``, how many replicates the verdict left out and how many it rests on."""
        if self.excluded_divergent is None:
            return None
        return (
            f"--exclude-divergent: {self.excluded_divergent} replicates with divergent transitions left out; "
            f"the verdict rests on {self.judged}"
        )

    @property
    def family_size(self) -> int:
        """Number of members of the Holm family (those with a p-value): variables, or scalar quantities."""
        if self.per_variable:
            return sum(test.p_value is not None for test in self.variable_tests)
        return self.quantities_checked

    @property
    def band_level(self) -> float:
        """The level of each member's ECDF band: ``family_level / m`` for the ``m`` members of the Holm family.

        Holm's first step tests at this level, so an ECDF outside its band means the member is flagged
        (Holm's later steps may also flag one whose ECDF stays inside). A variable of several elements is
        flagged when its pooled ECDF leaves its band at half this level, or by its Cauchy combination.
        """
        return self.family_level / max(self.family_size, 1)

    @property
    def quantities_checked(self) -> int:
        """Number of scalar quantities with a p-value (the per-element verdict's Holm family)."""
        return sum(q.p_value is not None for _, _, q in self.quantities())

    @property
    def element_band_level(self) -> float:
        """``family_level / m`` for the :attr:`quantities_checked` ``m``: Holm's first step over elements.

        The per-element verdict's band level; plots of single elements draw their band at it.
        """
        return self.family_level / max(self.quantities_checked, 1)

    def quantities(self) -> list[tuple[str, str, QuantitySummary]]:
        """``(kind, name, summary)`` of every quantity, parameters first."""
        return [(PARAMETER, name, q) for name, q in self.variables.items()] + [
            (TEST_QUANTITY, name, q) for name, q in self.test_quantities.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form written as ``summary.json``; non-finite numbers become None."""
        return _json_safe(
            {
                "ensemble_id": self.ensemble_id,
                "calibrated": self.calibrated,
                "replicates": {
                    "requested": self.requested,
                    "succeeded": self.succeeded,
                    "failed": self.failed,
                    "missing": self.missing,
                    "machinery_errors": len(self.machinery_errors),
                    "reused": self.reused,
                    "judged": self.judged,
                },
                "uniformity_test": {
                    "method": UNIFORMITY_METHOD,
                    "verdict": self.mode,
                    "variable_combination": COMBINATION_METHOD if self.per_variable else None,
                    "family_level": self.family_level,
                    "correction": CORRECTION,
                    "exclude_divergent": self.excluded_divergent is not None,
                    "excluded_divergent": self.excluded_divergent or 0,
                    "family": self.family_unit,
                    "family_size": self.family_size,
                    "quantities_checked": self.quantities_checked,
                    "ecdf_band_level": self.band_level,
                },
                "variable_tests": [test.to_dict() for test in self.variable_tests],
                "variables": {name: q.to_dict() for name, q in self.variables.items()},
                "test_quantities": {name: q.to_dict() for name, q in self.test_quantities.items()},
                "diagnostics": self.diagnostics.to_dict(),
                "failures": [{"replicate": f.replicate, "error": f.error} for f in self.failures],
                "machinery_errors": [
                    {"replicate": f.replicate, "error": f.error} for f in self.machinery_errors
                ],
                "fit_seconds_total": self.fit_seconds,
                "run": self.run,
            }
        )


@dataclass(frozen=True)
class QuantityScores:
    """One quantity's scores across the succeeded replicates that have it, by replicate."""

    kind: str
    name: str
    replicates: np.ndarray
    true: np.ndarray
    rank: np.ndarray
    max_rank: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    median: np.ndarray
    q5: np.ndarray
    q95: np.ndarray

    @property
    def key(self) -> str:
        """``kind:name``, unique across parameters and test quantities."""
        return f"{self.kind}:{self.name}"

    def prior_variance(self) -> float:
        """Variance (ddof=1) of the finite true values; NaN with fewer than two."""
        finite = self.true[np.isfinite(self.true)]
        return float(np.var(finite, ddof=1)) if finite.size >= 2 else math.nan

    def z_scores(self) -> np.ndarray:
        """Posterior z-score ``(mean - true) / sd`` of each replicate."""
        return np.asarray(z_scores(self.mean, self.sd, self.true), dtype=float)

    def contraction(self) -> np.ndarray:
        """Posterior contraction ``1 - sd**2 / prior variance`` of each replicate."""
        return np.asarray(contraction(self.sd, self.prior_variance()), dtype=float)

    def pit(self, ensemble_id: str) -> np.ndarray:
        """Randomized PIT values, the jitter seeded by ensemble id and quantity (reproducible)."""
        digest = hashlib.sha256(f"{ensemble_id}\x00{self.kind}\x00{self.name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:16], "little"))
        return np.asarray(randomized_pit(self.rank, self.max_rank, rng), dtype=float)


def summarize(
    table: ScoreTable,
    *,
    ensemble_id: str,
    requested: int,
    reused: int,
    options: VerdictOptions = DEFAULT_VERDICT,
    run: dict[str, Any] | None = None,
    machinery_errors: Sequence[Failure] = (),
) -> EnsembleSummary:
    """Aggregate replicate results into the ensemble's calibration verdict.

    Parameters
    ----------
    table
        The succeeded and failed replicates' results.
    ensemble_id
        Identifies the ensemble; also seeds the PIT randomization, so the verdict is reproducible.
    requested, reused
        Replicates asked for, and how many results were reused from an earlier run.
    options
        The family-wise level of the Holm-corrected uniformity tests over all checked quantities, and
        whether replicates with divergent transitions are left out of the verdict.
    run
        How the ensemble was produced (model, generator, engine, settings), copied into the summary.
    machinery_errors
        Replicates the run left without a result because errors of the machinery persisted.

    Returns
    -------
    EnsembleSummary
        Per-quantity statistics are None for quantities scored by fewer than two replicates.
    """
    judged = table.judged(options.exclude_divergent)
    per_variable = options.mode == PER_VARIABLE
    stats, variable_tests = _score_quantities(table, judged, ensemble_id, combine=per_variable)
    if per_variable:
        family = {test.key: test.p_value for test in variable_tests if test.p_value is not None}
        verdicts = holm_calibrated(family, options.level) if family else {}
        variable_tests = [replace(test, calibrated=verdicts.get(test.key)) for test in variable_tests]
        # A scalar is its own variable; an element of a larger variable is judged with it, not alone.
        element_verdicts = {
            (test.kind, test.lowest[0][0]): test.calibrated
            for test in variable_tests
            if test.elements == 1 and test.lowest
        }
        family_verdicts = [test.calibrated for test in variable_tests]
    else:
        p_values = {
            f"{kind}:{name}": q["p_value"] for (kind, name), q in stats.items() if q["p_value"] is not None
        }
        verdicts = holm_calibrated(p_values, options.level) if p_values else {}
        element_verdicts = {(kind, name): verdicts.get(f"{kind}:{name}") for kind, name in stats}
        family_verdicts = list(element_verdicts.values())
    summaries: dict[str, dict[str, QuantitySummary]] = {PARAMETER: {}, TEST_QUANTITY: {}}
    for (kind, name), quantity_stats in stats.items():
        summaries[kind][name] = QuantitySummary(
            calibrated=element_verdicts.get((kind, name)), **quantity_stats
        )
    overall = None
    if family_verdicts and None not in family_verdicts:
        overall = all(family_verdicts)
    return EnsembleSummary(
        ensemble_id=ensemble_id,
        calibrated=overall,
        requested=requested,
        succeeded=table.succeeded,
        failed=len(table) - table.succeeded,
        reused=reused,
        family_level=options.level,
        variables=summaries[PARAMETER],
        test_quantities=summaries[TEST_QUANTITY],
        diagnostics=_diagnostics(table),
        failures=[
            Failure(replicate, _first_line(error)) for replicate, error in sorted(table.errors.items())
        ],
        fit_seconds=float(table.total_seconds.sum()),
        run=dict(run or {}),
        excluded_divergent=table.succeeded - int(judged.sum()) if options.exclude_divergent else None,
        machinery_errors=sorted(machinery_errors, key=lambda f: f.replicate),
        mode=options.mode,
        variable_tests=variable_tests,
    )


# --- aggregation helpers ---------------------------------------------------------------------


def _score_quantities(
    table: ScoreTable, judged: np.ndarray, ensemble_id: str, *, combine: bool
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[VariableTest]]:
    """Each quantity's statistics by ``(kind, name)``, and with ``combine`` each variable's test.

    The statistics are the fields of a :class:`QuantitySummary` but ``calibrated``; the tests' verdicts
    are still open (Holm across them decides).
    """
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    tests: list[VariableTest] = []
    for (kind, variable), columns in variable_columns(table, judged).items():
        # The pooled test's units: the replicates that scored every element of the variable.
        common = judged & table.present[:, columns].all(axis=1)
        pooled = (
            PooledCounts(int(common.sum())) if combine and len(columns) > 1 and common.sum() >= 2 else None
        )
        for column in columns:
            quantity = quantity_scores(table, judged, column)
            p_value = None
            if quantity.replicates.size >= 2:
                pit = quantity.pit(ensemble_id)
                # rng=None: the null distribution is computed once per sample size.
                p_value = _finite_or_none(gamma_uniformity_pvalue(pit))
                if pooled is not None:
                    pooled.add(pit[common[judged & table.present[:, column]]])
            stats[(kind, quantity.name)] = _quantity_stats(quantity, p_value)
        if combine:
            elements = [stats[(kind, table.names[c])] | {"name": table.names[c]} for c in columns]
            tests.append(_variable_test(kind, variable, elements, pooled, int(common.sum()), ensemble_id))
    return stats, tests


def variable_columns(table: ScoreTable, rows: np.ndarray) -> dict[tuple[str, str], list[int]]:
    """The columns of each variable ``(kind, name)`` that some row of ``rows`` scored, in table order."""
    scored = table.present[rows].any(axis=0)
    variables: dict[tuple[str, str], list[int]] = {}
    for column in np.flatnonzero(scored):
        key = (table.kinds[column], variable_name(table.names[column]))
        variables.setdefault(key, []).append(int(column))
    return variables


def _quantity_stats(quantity: QuantityScores, p_value: float | None) -> dict[str, Any]:
    """The fields of a :class:`QuantitySummary` but ``calibrated``."""
    n = quantity.replicates.size
    return {
        "replicates": n,
        "p_value": p_value,
        "mean_z_score": _finite_mean(quantity.z_scores()) if n >= 2 else None,
        "mean_contraction": _finite_mean(quantity.contraction()) if n >= 2 else None,
        "mean_rank": _finite_mean(quantity.rank.astype(float)) if n >= 2 else None,
        "max_rank": int(quantity.max_rank.max()) if n >= 2 else None,
        "prior_variance": _finite_or_none(quantity.prior_variance()),
    }


def _variable_test(
    kind: str,
    variable: str,
    elements: list[dict[str, Any]],
    counts: PooledCounts | None,
    common_replicates: int,
    ensemble_id: str,
) -> VariableTest:
    """The per-variable test (its verdict still open) from its elements' statistics and pooled counts."""
    tested = sorted((e for e in elements if e["p_value"] is not None), key=lambda e: e["p_value"])
    cauchy = pooled = None
    if len(elements) == 1:
        p_value = elements[0]["p_value"]
    elif tested:
        cauchy = float(cauchy_combination([e["p_value"] for e in tested]))
        if counts is not None and counts.elements == len(elements):
            pooled = counts.test(bootstrap_seed(ensemble_id, kind, variable))
        p_value = cauchy if pooled is None else bonferroni_pair(cauchy, pooled.p_value)
    else:
        p_value = None
    return VariableTest(
        kind=kind,
        name=variable,
        elements=len(elements),
        replicates=common_replicates if len(elements) > 1 else elements[0]["replicates"],
        p_value=p_value,
        calibrated=None,
        cauchy_p_value=cauchy,
        pooled_p_value=None if pooled is None else pooled.p_value,
        lowest=tuple((e["name"], e["p_value"]) for e in tested[:LOWEST_ELEMENTS]),
        mean_z_score=_mean_of(e["mean_z_score"] for e in elements),
        mean_contraction=_mean_of(e["mean_contraction"] for e in elements),
        pooled=pooled,
    )


def _mean_of(values: Iterator[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def quantity_scores(table: ScoreTable, rows: np.ndarray, column: int) -> QuantityScores:
    """The scores of the table's quantity ``column`` in the rows ``rows`` (a mask) that have it."""
    have = np.flatnonzero(rows & table.present[:, column])
    scores = table.scores
    return QuantityScores(
        kind=table.kinds[column],
        name=table.names[column],
        replicates=table.replicate[have],
        true=scores["true_value"][have, column],
        rank=scores["rank"][have, column].astype(int),
        max_rank=scores["max_rank"][have, column].astype(int),
        mean=scores["mean"][have, column],
        sd=scores["sd"][have, column],
        median=scores["median"][have, column],
        q5=scores["q5"][have, column],
        q95=scores["q95"][have, column],
    )


def iter_quantities(table: ScoreTable, rows: np.ndarray) -> Iterator[QuantityScores]:
    """Each quantity's scores in the rows ``rows`` (a mask), parameters first; those no row has are skipped.

    One quantity at a time: the scores of all quantities together would copy the table.
    """
    scored = table.present[rows].any(axis=0)
    for column in np.flatnonzero(scored):
        yield quantity_scores(table, rows, int(column))


def _diagnostics(table: ScoreTable) -> DiagnosticsSummary:
    ok = table.ok
    fits = ok & table.has_diagnostics
    with np.errstate(invalid="ignore"):
        return DiagnosticsSummary(
            replicates_with_divergences=int((table.divergences[fits] > 0).sum()),
            replicates_with_max_treedepth=int((table.max_treedepth_hits[fits] > 0).sum()),
            replicates_with_low_ebfmi=int((table.min_ebfmi[fits] < EBFMI_THRESHOLD).sum()),
            replicates_with_high_rhat=int((table.max_rhat()[ok] > RHAT_THRESHOLD).sum()),
            replicates_with_low_ess=int((table.min_ess()[ok] < ESS_THRESHOLD).sum()),
        )


def _first_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    return lines[0].strip() if lines else "unknown error"


def _finite_or_none(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _finite_mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(value)
    return value


def p_value_sort_key(q: QuantitySummary | VariableTest) -> float:
    """Sort key putting the lowest p-values first and quantities (or variables) without one last."""
    return q.p_value if q.p_value is not None else math.inf


def holm_calibrated(p_values: Mapping[str, float], family_level: float) -> dict[str, bool]:
    """Holm's step-down procedure at family-wise error rate ``family_level`` [4]_.

    Sorting the ``m`` p-values ascending, the ``j``-th (0-based) is rejected while
    ``p_(j) <= family_level / (m - j)``; the first that is not stops the procedure.

    Parameters
    ----------
    p_values : Mapping of str to float
        One p-value per tested quantity; NaN counts as untestable and is never rejected.
    family_level : float
        In ``(0, 1)``.

    Returns
    -------
    dict of str to bool
        ``True`` when the quantity's uniformity hypothesis is *not* rejected (looks calibrated).
    """
    if not 0 < family_level < 1:
        raise ValueError(f"family_level must lie in (0, 1), got {family_level}")
    order = sorted(p_values, key=lambda name: (math.isnan(p_values[name]), p_values[name]))
    m = len(order)
    calibrated = dict.fromkeys(p_values, True)
    for j, name in enumerate(order):
        p = p_values[name]
        if math.isnan(p) or p > family_level / (m - j):
            break
        calibrated[name] = False
    return calibrated


def z_scores(mean: npt.ArrayLike, sd: npt.ArrayLike, true: npt.ArrayLike) -> np.ndarray:
    """Posterior z-scores ``(mean - true) / sd`` (infinite or NaN where ``sd`` is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(mean, dtype=float) - np.asarray(true, dtype=float)) / np.asarray(sd, dtype=float)


def contraction(posterior_sd: npt.ArrayLike, prior_variance: float) -> np.ndarray:
    """Posterior contraction ``1 - posterior_var / prior_var``.

    ``prior_variance`` is estimated from the ensemble's true values; the result is NaN where it
    is zero, negative or not finite.
    """
    sd = np.asarray(posterior_sd, dtype=float)
    if not math.isfinite(prior_variance) or prior_variance <= 0:
        return np.full(sd.shape, np.nan)
    return 1.0 - sd**2 / prior_variance
