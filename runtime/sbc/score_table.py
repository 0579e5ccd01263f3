"""An ensemble's results column by column: one row per replicate, one column per quantity.

The verdict, the figures and the replicate table read a :class:`ScoreTable`, not one object per result:
R = 10,000 replicates of a model with K = 1000 quantities are 10^7 scores, which take 0.8 GB as arrays
and many times that as Python objects. :class:`ScoreTableBuilder` fills the table from stored results
(the JSON of :meth:`runtime.sbc.results.ReplicateResult.to_json`) one at a time, so the results never
sit in memory all together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from runtime.sbc.results import ReplicateResult

PARAMETER = "parameter"
TEST_QUANTITY = "test_quantity"
SCORE_FIELDS = (
    "true_value",
    "rank",
    "max_rank",
    "mean",
    "sd",
    "q5",
    "median",
    "q95",
    "rhat",
    "ess_bulk",
    "ess_tail",
)
"""The fields of :class:`runtime.sbc.results.VariableScore`, in the order of the table's columns."""
INTEGER_FIELDS = ("rank", "max_rank")
"""Fields stored as int32, -1 where a replicate has no score."""
_KIND_OF_SECTION = {"variables": PARAMETER, "test_quantities": TEST_QUANTITY}
_FLUSH_SCORES = 1 << 15
"""Scores held as Python objects before they are copied into the arrays (tens of MB)."""


@dataclass(frozen=True)
class ScoreTable:
    """Every result of an ensemble as arrays, rows sorted by replicate.

    Per replicate (shape ``(n,)``): ``replicate``, ``seed``, ``ok``, ``has_diagnostics``, ``divergences``,
    ``max_treedepth_hits``, ``min_ebfmi`` (NaN without diagnostics) and ``total_seconds``; ``errors`` holds
    the error text of each failed replicate, by replicate. Per quantity (shape ``(K,)``): ``kinds``
    (parameters first) and ``names``. Per score, ``scores[field]`` is shaped ``(n, K)``; ``present`` says
    which replicate scored which quantity (a failed replicate scored none).
    """

    replicate: np.ndarray
    seed: np.ndarray
    ok: np.ndarray
    has_diagnostics: np.ndarray
    divergences: np.ndarray
    max_treedepth_hits: np.ndarray
    min_ebfmi: np.ndarray
    total_seconds: np.ndarray
    errors: dict[int, str]
    kinds: tuple[str, ...]
    names: tuple[str, ...]
    scores: dict[str, np.ndarray]
    present: np.ndarray

    @classmethod
    def from_results(cls, results: Iterable[ReplicateResult]) -> ScoreTable:
        """The table of ``results`` (any order)."""
        builder = ScoreTableBuilder()
        for result in results:
            builder.add(result.to_json())
        return builder.build()

    def __len__(self) -> int:
        return int(self.replicate.size)

    @property
    def succeeded(self) -> int:
        """Replicates whose fit succeeded."""
        return int(self.ok.sum())

    @property
    def failed_replicates(self) -> np.ndarray:
        """The replicates whose fit failed, ascending."""
        return self.replicate[~self.ok]

    def judged(self, exclude_divergent: bool) -> np.ndarray:
        """Rows (a boolean mask) of the succeeded replicates the verdict rests on.

        Those that had divergent transitions are left out when ``exclude_divergent``.
        """
        if not exclude_divergent:
            return self.ok.copy()
        return self.ok & ~(self.has_diagnostics & (self.divergences > 0))

    def max_rhat(self) -> np.ndarray:
        """Largest finite R-hat of each replicate over its quantities; NaN where there is none."""
        return _row_extreme(self.scores["rhat"], np.fmax, -math.inf)

    def min_ess(self) -> np.ndarray:
        """Smallest finite bulk or tail ESS of each replicate over its quantities; NaN where there is none."""
        bulk = _row_extreme(self.scores["ess_bulk"], np.fmin, math.inf)
        return np.fmin(bulk, _row_extreme(self.scores["ess_tail"], np.fmin, math.inf))


def _row_extreme(values: np.ndarray, reduce: np.ufunc, empty: float) -> np.ndarray:
    """``reduce`` over each row's finite values (NaN for a row without any), one block of rows at a time."""
    out = np.full(values.shape[0], empty)
    for start in range(0, values.shape[0], 4096):
        block = values[start : start + 4096]
        out[start : start + 4096] = reduce.reduce(
            np.where(np.isfinite(block), block, empty), axis=1, initial=empty
        )
    out[~np.isfinite(out)] = math.nan
    return out


class ScoreTableBuilder:
    """Fills a :class:`ScoreTable` from stored results, one JSON payload at a time.

    ``expected`` sizes the arrays up front (they grow when more results come).
    """

    def __init__(self, expected: int = 0) -> None:
        self._rows = 0
        self._capacity = max(expected, 1)
        self._per_replicate: dict[str, np.ndarray] = {
            "replicate": np.zeros(self._capacity, dtype=np.int64),
            "seed": np.zeros(self._capacity, dtype=np.int64),
            "ok": np.zeros(self._capacity, dtype=bool),
            "has_diagnostics": np.zeros(self._capacity, dtype=bool),
            "divergences": np.zeros(self._capacity, dtype=np.int64),
            "max_treedepth_hits": np.zeros(self._capacity, dtype=np.int64),
            "min_ebfmi": np.full(self._capacity, math.nan),
            "total_seconds": np.zeros(self._capacity),
        }
        self._errors: dict[int, str] = {}
        self._columns: dict[tuple[str, str], int] = {}
        self._scores: dict[str, np.ndarray] = {
            field: _empty_scores(field, self._capacity, 0) for field in SCORE_FIELDS
        }
        self._present = np.zeros((self._capacity, 0), dtype=bool)
        self._placement: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._pending: dict[int, tuple[np.ndarray, list[int], list[tuple[Any, ...]]]] = {}
        self._pending_scores = 0

    def add(self, payload: bytes) -> None:
        """Add one result (a payload of :meth:`runtime.sbc.results.ReplicateResult.to_json`)."""
        raw: dict[str, Any] = orjson.loads(payload)
        row = self._new_row()
        columns = self._per_replicate
        columns["replicate"][row] = raw["replicate"]
        columns["seed"][row] = raw["seed"]
        columns["ok"][row] = raw["status"] == "ok"
        columns["total_seconds"][row] = raw.get("total_seconds") or 0.0
        diagnostics = raw.get("diagnostics")
        if diagnostics is not None:
            columns["has_diagnostics"][row] = True
            columns["divergences"][row] = diagnostics["divergences"]
            columns["max_treedepth_hits"][row] = diagnostics["max_treedepth_hits"]
            columns["min_ebfmi"][row] = _number(diagnostics["min_ebfmi"])
        if raw["status"] != "ok":
            self._errors[int(raw["replicate"])] = raw.get("error") or ""
            return
        for section, kind in _KIND_OF_SECTION.items():
            scores: dict[str, dict[str, Any]] = raw.get(section) or {}
            if scores:
                self._hold(
                    row, self._columns_of(kind, tuple(scores)), list(map(_SCORE_VALUES, scores.values()))
                )

    def build(self) -> ScoreTable:
        """The table of every result added, rows sorted by replicate."""
        self._flush()
        n = self._rows
        order = np.argsort(self._per_replicate["replicate"][:n], kind="stable")
        by_kind = sorted(self._columns.items(), key=lambda item: (item[0][0] != PARAMETER, item[1]))
        column_order = np.array([column for _, column in by_kind], dtype=np.intp)
        per_replicate = {name: values[:n][order] for name, values in self._per_replicate.items()}
        return ScoreTable(
            **per_replicate,
            errors=self._errors,
            kinds=tuple(kind for (kind, _), _ in by_kind),
            names=tuple(name for (_, name), _ in by_kind),
            scores={field: _take(values[:n], order, column_order) for field, values in self._scores.items()},
            present=_take(self._present[:n], order, column_order),
        )

    def _new_row(self) -> int:
        if self._rows == self._capacity:
            self._flush()
            self._capacity *= 2
            self._per_replicate = {
                name: _grown(values, self._capacity) for name, values in self._per_replicate.items()
            }
            self._scores = {field: _grown(values, self._capacity) for field, values in self._scores.items()}
            self._present = _grown(self._present, self._capacity)
        self._rows += 1
        return self._rows - 1

    def _columns_of(self, kind: str, names: tuple[str, ...]) -> np.ndarray:
        """The table columns of ``names`` (new columns are added for names not seen yet)."""
        placement = self._placement.get((kind, names))
        if placement is None:
            new = [(kind, name) for name in names if (kind, name) not in self._columns]
            if new:
                self._flush()
                for key in new:
                    self._columns[key] = len(self._columns)
                width = len(self._columns)
                self._scores = {field: _widened(values, width) for field, values in self._scores.items()}
                self._present = _widened(self._present, width)
            placement = np.array([self._columns[(kind, name)] for name in names], dtype=np.intp)
            self._placement[(kind, names)] = placement
        return placement

    def _hold(self, row: int, columns: np.ndarray, values: list[tuple[Any, ...]]) -> None:
        """Keep a row's scores until :meth:`_flush` copies them, with others of the same columns, at once."""
        _, rows, held = self._pending.setdefault(id(columns), (columns, [], []))
        rows.append(row)
        held.extend(values)
        self._pending_scores += len(values)
        if self._pending_scores >= _FLUSH_SCORES:
            self._flush()

    def _flush(self) -> None:
        for columns, rows, held in self._pending.values():
            block = np.array(held, dtype=float).reshape(len(rows), columns.size, len(SCORE_FIELDS))
            index = (np.array(rows, dtype=np.intp)[:, None], columns[None, :])
            for position, field in enumerate(SCORE_FIELDS):
                self._scores[field][index] = block[:, :, position]
            self._present[index] = True
        self._pending.clear()
        self._pending_scores = 0


_SCORE_VALUES = itemgetter(*SCORE_FIELDS)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _empty_scores(field: str, rows: int, columns: int) -> np.ndarray:
    if field in INTEGER_FIELDS:
        return np.full((rows, columns), -1, dtype=np.int32)
    return np.full((rows, columns), math.nan)


def _fill_value(values: np.ndarray) -> Any:
    if values.dtype == bool:
        return False
    return -1 if values.dtype == np.int32 else (math.nan if values.dtype.kind == "f" else 0)


def _grown(values: np.ndarray, rows: int) -> np.ndarray:
    extra = np.full((rows - values.shape[0], *values.shape[1:]), _fill_value(values), dtype=values.dtype)
    return np.concatenate([values, extra])


def _widened(values: np.ndarray, columns: int) -> np.ndarray:
    extra = np.full((values.shape[0], columns - values.shape[1]), _fill_value(values), dtype=values.dtype)
    return np.concatenate([values, extra], axis=1)


def _take(values: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``values[rows][:, columns]`` without a second full-size copy when nothing moves."""
    in_order = np.array_equal(rows, np.arange(rows.size))
    values = values[: rows.size] if in_order else values[rows]
    if np.array_equal(columns, np.arange(columns.size)):
        return values
    return values[:, columns]
