"""The replicate table: one row per succeeded replicate and quantity, one row per failed replicate.

It is written as ``replicates.parquet`` (every report) and as ``replicates.csv`` while it stays small
(:data:`CSV_MAX_ROWS`); the API's ``EnsembleReport.replicates`` is the same table as a pandas DataFrame.
Both files are written in row groups of about :data:`BATCH_CELLS` rows straight from the score table, so
R = 10,000 replicates of 1000 quantities (10^7 rows) never exist as one table in memory. Non-finite
numbers (an R-hat of a constant chain, the z-score of a zero posterior sd) are empty (null).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from runtime.sbc.score_table import ScoreTable
from runtime.sbc.verdict import quantity_scores
from runtime.store.atomic_file import atomic_output

if TYPE_CHECKING:
    import pandas

PARQUET = "replicates.parquet"
CSV = "replicates.csv"
CSV_MAX_ROWS = 100_000
"""Above this many rows only the Parquet file is written: the CSV would take over 20 MB and seconds to read."""
BATCH_CELLS = 1 << 18
"""Rows per row group (about): a few tens of MB of columns at a time."""
_FLOATS = ("true_value", "mean", "sd", "q5", "median", "q95")
_DIAGNOSTICS = ("rhat", "ess_bulk", "ess_tail")
SCHEMA = pa.schema(
    [
        ("replicate", pa.int64()),
        ("seed", pa.int64()),
        ("status", pa.string()),
        ("quantity", pa.dictionary(pa.int32(), pa.string())),
        ("kind", pa.dictionary(pa.int8(), pa.string())),
        ("true_value", pa.float64()),
        ("rank", pa.int32()),
        ("max_rank", pa.int32()),
        ("mean", pa.float64()),
        ("sd", pa.float64()),
        ("q5", pa.float64()),
        ("median", pa.float64()),
        ("q95", pa.float64()),
        ("z_score", pa.float64()),
        ("contraction", pa.float64()),
        ("rhat", pa.float64()),
        ("ess_bulk", pa.float64()),
        ("ess_tail", pa.float64()),
        ("divergences", pa.int64()),
        ("max_treedepth_hits", pa.int64()),
        ("min_ebfmi", pa.float64()),
        ("error", pa.string()),
    ]
)
"""The table's columns, in the order both files have them."""
_CSV_SCHEMA = pa.schema(
    [pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in SCHEMA]
)
"""The same columns with the dictionary-encoded ones as plain strings, as CSV has them."""


def row_count(table: ScoreTable) -> int:
    """Rows of the replicate table: one per score, one per replicate without any."""
    scored = table.present.sum(axis=1)
    return int(scored.sum() + (scored == 0).sum())


def write_replicate_files(table: ScoreTable, out_dir: Path) -> list[Path]:
    """Write ``replicates.parquet``, and ``replicates.csv`` when the table has at most CSV_MAX_ROWS rows.

    Each file is written in full under a temporary name, then renamed into place; a CSV left by an
    earlier, smaller report of the same directory is removed when this one gets none.
    """
    import pyarrow.parquet as pq

    paths = [out_dir / PARQUET]
    with atomic_output(paths[0]) as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        for batch in record_batches(table):
            writer.write_batch(batch)
    if row_count(table) <= CSV_MAX_ROWS:
        paths.append(out_dir / CSV)
        with atomic_output(paths[1]) as tmp:
            _write_csv(table, tmp)
    else:
        (out_dir / CSV).unlink(missing_ok=True)
    return paths


def replicates_frame(table: ScoreTable) -> pandas.DataFrame:
    """The replicate table as a pandas DataFrame (``quantity`` and ``kind`` categorical)."""
    return pa.Table.from_batches(list(record_batches(table)), schema=SCHEMA).to_pandas()


def _write_csv(table: ScoreTable, path: Path) -> None:
    """The table as CSV: a plain header, strings quoted, nulls empty."""
    import pyarrow.csv as pcsv

    options = pcsv.WriteOptions(include_header=False, quoting_style="needed")
    with path.open("wb") as handle:
        handle.write((",".join(SCHEMA.names) + "\n").encode())
        with pcsv.CSVWriter(handle, _CSV_SCHEMA, write_options=options) as writer:
            for batch in record_batches(table):
                writer.write_batch(batch.cast(_CSV_SCHEMA))


def record_batches(table: ScoreTable) -> Iterator[pa.RecordBatch]:
    """The replicate table in record batches of about BATCH_CELLS rows, in replicate order."""
    prior_variance = _prior_variances(table)
    names = pa.array(table.names, pa.string())
    kinds = sorted(set(table.kinds))
    kind_index = np.array([kinds.index(kind) for kind in table.kinds], dtype=np.int8)
    step = max(1, BATCH_CELLS // max(len(table.names), 1))
    for start in range(0, len(table), step):
        rows = slice(start, start + step)
        yield _batch(table, rows, prior_variance, names, pa.array(kinds, pa.string()), kind_index)


def _prior_variances(table: ScoreTable) -> np.ndarray:
    """Each quantity's prior variance over the succeeded replicates, as the verdict defines it."""
    variances = np.full(len(table.names), math.nan)
    for column in range(len(table.names)):
        variances[column] = quantity_scores(table, table.ok, column).prior_variance()
    return variances


def _batch(
    table: ScoreTable,
    rows: slice,
    prior_variance: np.ndarray,
    names: pa.Array,
    kinds: pa.Array,
    kind_index: np.ndarray,
) -> pa.RecordBatch:
    """The table rows of replicates ``rows``: their scores, then one row for each replicate without any."""
    present = table.present[rows]
    block, column = np.nonzero(present)  # row-major: by replicate, then by quantity
    empty = np.flatnonzero(~present.any(axis=1))
    # Place the rows of replicates without scores among the others, in replicate order.
    position = np.concatenate([block, empty])
    order = np.argsort(position, kind="stable")
    block_row = position[order]
    is_score = order < block.size
    cell_column = np.where(
        is_score, np.concatenate([column, np.zeros(empty.size, dtype=column.dtype)])[order], 0
    )

    def per_replicate(values: np.ndarray) -> np.ndarray:
        return values[rows][block_row]

    def score(field: str) -> np.ndarray:
        values = _cells(table.scores[field][rows], block_row, cell_column)
        return values if values.dtype.kind != "f" else np.where(is_score, values, math.nan)

    floats = {field: score(field) for field in (*_FLOATS, *_DIAGNOSTICS)}
    with np.errstate(invalid="ignore", divide="ignore"):
        z_score = (floats["mean"] - floats["true_value"]) / floats["sd"]
        variance = _cells(prior_variance[None, :], np.zeros_like(cell_column), cell_column)
        usable = (variance > 0) & np.isfinite(variance)
        contraction = np.where(usable, 1.0 - floats["sd"] ** 2 / variance, math.nan)
    ok = per_replicate(table.ok)
    has_diagnostics = per_replicate(table.has_diagnostics)
    replicate = per_replicate(table.replicate)
    errors = np.full(replicate.size, None, dtype=object)
    failed = np.flatnonzero(~ok)
    errors[failed] = [table.errors.get(int(r), "") for r in replicate[failed]]
    columns: dict[str, pa.Array] = {
        "replicate": pa.array(replicate),
        "seed": pa.array(per_replicate(table.seed)),
        "status": pa.array(np.where(ok, "ok", "failed")),
        "quantity": pa.DictionaryArray.from_arrays(
            pa.array(cell_column.astype(np.int32), mask=~is_score), names
        ),
        "kind": pa.DictionaryArray.from_arrays(
            pa.array(_cells(kind_index[None, :], np.zeros_like(cell_column), cell_column), mask=~is_score),
            kinds,
        ),
        "rank": pa.array(score("rank"), mask=~is_score),
        "max_rank": pa.array(score("max_rank"), mask=~is_score),
        "z_score": _nullable(z_score),
        "contraction": _nullable(contraction),
        "divergences": pa.array(per_replicate(table.divergences), mask=~has_diagnostics),
        "max_treedepth_hits": pa.array(per_replicate(table.max_treedepth_hits), mask=~has_diagnostics),
        "min_ebfmi": _nullable(per_replicate(table.min_ebfmi)),
        "error": pa.array(errors, pa.string()),
    }
    columns |= {field: _nullable(values) for field, values in floats.items()}
    return pa.RecordBatch.from_arrays([columns[f.name] for f in SCHEMA], schema=SCHEMA)


def _cells(values: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``values[rows, columns]``; zeros where ``values`` has no columns (no replicate scored anything)."""
    if not values.shape[1]:
        return np.zeros(rows.size, dtype=values.dtype)
    return values[rows, columns]


def _nullable(values: np.ndarray) -> pa.Array:
    """A float column with every non-finite value null."""
    return pa.array(values, type=pa.float64(), mask=~np.isfinite(values))
