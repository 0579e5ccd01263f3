"""Model versions fitted to the same datasets, compared quantity by quantity.

The table, the CSV and JSON files and the ECDF-difference figure that ``python -m runtime.compare``
writes. Ensembles fitted to different dataset sets are refused: a difference between them could come
from the draws rather than the models.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.ensemble.spec import load_spec
from runtime.ensemble.stored_results import load_score_table
from runtime.errors import StanFleetError
from runtime.report.figures import (
    MAX_PANELS,
    ecdf_axes,
    panel_grid,
    placeholder_figure,
    plot_ecdf_difference,
    png_bytes,
    quantity_label,
    quantity_summary,
)
from runtime.report.files import keep_nulls_on_disk
from runtime.report.stored import requested_replicates
from runtime.sbc.uniformity import gamma_band
from runtime.sbc.verdict import (
    DEFAULT_VERDICT,
    PARAMETER,
    EnsembleSummary,
    QuantityScores,
    QuantitySummary,
    VariableTest,
    VerdictOptions,
    iter_quantities,
    p_value_sort_key,
    summarize,
)
from runtime.store.atomic_file import write_atomically
from runtime.store.protocol import ObjectStore

COLUMNS = ("p_value", "calibrated", "mean_z_score", "mean_contraction")


@dataclass(frozen=True)
class ComparedEnsemble:
    """One model version: its summary and per-replicate scores over the compared replicates."""

    ensemble_id: str
    dataset_id: str
    label: str
    summary: EnsembleSummary
    quantities: list[QuantityScores]

    def quantity(self, kind: str, name: str) -> QuantitySummary | VariableTest | None:
        """The summary of one quantity, or of a variable's per-variable test; None if this version has neither."""
        rows = self.summary.variables if kind == PARAMETER else self.summary.test_quantities
        if name in rows:
            return rows[name]
        return next((t for t in self.summary.variable_tests if (t.kind, t.name) == (kind, name)), None)


def compare_ensembles(
    store: ObjectStore,
    ensemble_ids: Sequence[str],
    replicates: int | None = None,
    options: VerdictOptions = DEFAULT_VERDICT,
) -> list[ComparedEnsemble]:
    """Summarize each ensemble over replicates ``0..R-1``; refuse ensembles on different datasets.

    R is ``replicates``, else the smallest R any of them was submitted with.
    """
    specs = [load_spec(store, ensemble_id) for ensemble_id in ensemble_ids]
    first = specs[0]
    for ensemble_id, spec in zip(ensemble_ids[1:], specs[1:], strict=True):
        if spec.dataset_id != first.dataset_id:
            raise StanFleetError(
                f"ensembles {ensemble_ids[0]} and {ensemble_id} were fitted to different datasets "
                f"({first.dataset_id} and {spec.dataset_id}): compare versions run with the same "
                "generator, data and seed"
            )
    requested = replicates or min(requested_replicates(store, ensemble_id) for ensemble_id in ensemble_ids)
    compared = []
    keep_nulls_on_disk()
    for ensemble_id, spec in zip(ensemble_ids, specs, strict=True):
        table = load_score_table(store, ensemble_id, requested)
        summary = summarize(
            table,
            ensemble_id=ensemble_id,
            requested=requested,
            reused=0,
            options=options,
            run={"model_name": spec.model_name},
        )
        label = f"{spec.model_name} {ensemble_id[:8]}"
        quantities = list(iter_quantities(table, table.judged(options.exclude_divergent)))
        compared.append(ComparedEnsemble(ensemble_id, spec.dataset_id, label, summary, quantities))
    return compared


def quantity_keys(compared: Sequence[ComparedEnsemble]) -> list[tuple[str, str]]:
    """Every (kind, name) any version has, parameters first, each group by lowest p-value across versions.

    With the per-variable verdict the variables of several elements have rows too, next to their elements'.
    """
    keys = {(kind, name) for c in compared for kind, name, _ in c.summary.quantities()}
    keys |= {(t.kind, t.name) for c in compared for t in c.summary.variable_tests if t.elements > 1}

    def order(key: tuple[str, str]) -> tuple[bool, Any]:
        summaries = [q for c in compared if (q := c.quantity(*key)) is not None]
        return key[0] != PARAMETER, min(p_value_sort_key(q) for q in summaries)

    return sorted(keys, key=order)


def comparison_rows(compared: Sequence[ComparedEnsemble]) -> list[dict[str, Any]]:
    """One row per quantity and version: its p-value, verdict, mean z-score and mean contraction."""
    rows = []
    for kind, name in quantity_keys(compared):
        for version in compared:
            q = version.quantity(kind, name)
            rows.append(
                {
                    "quantity": name,
                    "kind": kind,
                    "ensemble_id": version.ensemble_id,
                    "label": version.label,
                    **{column: None if q is None else getattr(q, column) for column in COLUMNS},
                }
            )
    return rows


def comparison_table(compared: Sequence[ComparedEnsemble]) -> str:
    """The side-by-side table for the terminal: a row per quantity, a column group per version."""
    labels = [name if kind == PARAMETER else f"{name} (test)" for kind, name in quantity_keys(compared)]
    width = max([len("quantity"), *map(len, labels)])
    cell = 32  # p-value, verdict, mean z and contraction of one version
    header = f"{'':<{width}}  " + "   ".join(f"{c.label:<{cell}}" for c in compared)
    columns = f"{'quantity':<{width}}  " + "   ".join(
        f"{'p-value':>8} {'calibr.':<7} {'mean z':>7} {'contr.':>7}" for _ in compared
    )
    lines = [header.rstrip(), columns]
    for label, (kind, name) in zip(labels, quantity_keys(compared), strict=True):
        cells = []
        for version in compared:
            q = version.quantity(kind, name)
            if q is None:
                cells.append(f"{'-':>8} {'-':<7} {'-':>7} {'-':>7}")
                continue
            cells.append(
                f"{_number(q.p_value, '8.3g')} {_verdict(q.calibrated):<7} "
                f"{_number(q.mean_z_score, '7.2f')} {_number(q.mean_contraction, '7.2f')}"
            )
        lines.append(f"{label:<{width}}  " + "   ".join(cells))
    for version in compared:
        s = version.summary
        verdict = {None: "UNDETERMINED", True: "CALIBRATED", False: "NOT CALIBRATED"}[s.calibrated]
        lines.append(
            f"{version.label}: {verdict} ({s.succeeded} succeeded, {s.failed} failed of {s.requested})"
        )
    return "\n".join(lines)


def write_comparison(compared: Sequence[ComparedEnsemble], out_dir: Path) -> list[Path]:
    """Write comparison.csv, comparison.json and ecdf_difference.png into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(compared)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["quantity"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    payload = {
        "dataset_id": compared[0].dataset_id,
        "verdict": compared[0].summary.mode,
        "family_level": compared[0].summary.family_level,
        "ensembles": [
            {"ensemble_id": c.ensemble_id, "label": c.label, "calibrated": c.summary.calibrated}
            for c in compared
        ],
        "rows": rows,
    }
    return [
        write_atomically(out_dir / "comparison.csv", buffer.getvalue().encode()),
        write_atomically(
            out_dir / "comparison.json", (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode()
        ),
        write_atomically(
            out_dir / "ecdf_difference.png",
            comparison_ecdf_png([(c.label, c.summary, c.quantities) for c in compared]),
        ),
    ]


def _number(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if value is None else format(value, spec)


def _verdict(calibrated: bool | None) -> str:
    return {None: "-", True: "yes", False: "NO"}[calibrated]


def comparison_ecdf_png(
    versions: Sequence[tuple[str, EnsembleSummary, Sequence[QuantityScores]]],
) -> bytes:
    """Every version's PIT ECDF-difference curve in one panel per quantity (PNG).

    ``versions`` holds (label, summary, scores) of model versions fitted to the same datasets. The
    band is the first version's per-element uniformity test, at level ``family_level / m`` for its ``m``
    scalar quantities.
    """
    by_key: dict[str, list[tuple[int, QuantityScores]]] = {}
    for index, (_, _, quantities) in enumerate(versions):
        for quantity in quantities:
            if quantity.replicates.size >= 2:
                by_key.setdefault(quantity.key, []).append((index, quantity))
    lowest = {
        key: min(p_value_sort_key(quantity_summary(versions[i][1], q)) for i, q in scored)
        for key, scored in by_key.items()
    }
    keys = sorted(by_key, key=lambda key: lowest[key])
    note = f" ({MAX_PANELS} of {len(keys)} quantities: lowest p-values)" if len(keys) > MAX_PANELS else ""
    first = versions[0][1] if versions else None
    level = "" if first is None else f" at level {first.family_level:g}/{max(first.quantities_checked, 1)}"
    title = f"PIT ECDF minus uniform CDF by model version; band: the first version's per-element test{level}{note}"
    if not keys:
        return png_bytes(placeholder_figure(title, "fewer than 2 succeeded replicates"))
    figure, axes = panel_grid(len(keys[:MAX_PANELS]), title)
    for ax, key in zip(axes, keys, strict=False):
        scored = by_key[key]
        first_index, first_quantity = scored[0]
        first_summary = versions[first_index][1]
        for index, quantity in scored:
            label, summary, _ = versions[index]
            plot_ecdf_difference(ax, quantity.pit(summary.ensemble_id), color=f"C{index}", label=label)
        band_size = first_quantity.replicates.size
        ecdf_axes(ax, gamma_band(band_size, first_summary.element_band_level))
        ax.set_title(quantity_label(first_quantity), fontsize=9, y=1.0, pad=4)
    axes[0].legend(fontsize=7, loc="lower left")
    return png_bytes(figure)
