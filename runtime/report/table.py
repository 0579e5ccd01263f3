"""The verdict as a short fixed-width table for the terminal, printed after every run."""

from __future__ import annotations

from runtime.report.conditioning import reference_lines
from runtime.sbc.verdict import CORRECTION, PARAMETER, EnsembleSummary, p_value_sort_key

MAX_TABLE_ROWS = 30
"""At most this many quantities (those with the lowest p-values) get a row in the verdict table."""


def verdict_table(summary: EnsembleSummary) -> str:
    """A short fixed-width verdict for the terminal: one row per variable or quantity, then totals and verdict.

    With the per-variable verdict a row is a variable (with how many elements it has and those with the
    lowest p-values); with the per-element verdict, a scalar quantity.
    """
    lines = _variable_rows(summary) if summary.per_variable else _quantity_rows(summary)
    lines.append(
        f"replicates: {summary.succeeded} succeeded, {summary.failed} failed, {summary.reused} reused "
        f"({summary.requested} requested)"
    )
    for note in (summary.missing_note, summary.exclusion_note):
        if note is not None:
            lines.append(note)
    d = summary.diagnostics
    lines.append(
        f"diagnostics (replicates): {d.replicates_with_divergences} with divergences, "
        f"{d.replicates_with_max_treedepth} hit max treedepth, "
        f"{d.replicates_with_low_ebfmi} E-BFMI < {d.ebfmi_threshold:g}, "
        f"{d.replicates_with_high_rhat} R-hat > {d.rhat_threshold:g}, "
        f"{d.replicates_with_low_ess} ESS < {d.ess_threshold:g}"
    )
    unit = summary.family_unit
    method = "per-variable" if summary.per_variable else "per-element"
    test = f"{CORRECTION.capitalize()}-corrected {method} gamma tests, family-wise level {summary.family_level:g}"
    if summary.calibrated is None:
        verdict = f"UNDETERMINED (fewer than 2 succeeded replicates per {unit[:-1]})"
    elif summary.calibrated:
        verdict = f"CALIBRATED ({summary.family_size} {unit}, {test})"
    else:
        verdict = f"NOT CALIBRATED ({len(summary.flagged)} of {summary.family_size} {unit}, {test})"
    lines += reference_lines(summary.run)
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)


def _variable_rows(summary: EnsembleSummary) -> list[str]:
    tests = summary.variable_tests
    hidden = 0
    if len(tests) > MAX_TABLE_ROWS:
        hidden = len(tests) - MAX_TABLE_ROWS
        tests = sorted(tests, key=p_value_sort_key)[:MAX_TABLE_ROWS]
    width = max([len("variable"), *(len(t.label) for t in tests)])
    lines = [
        f"{'variable':<{width}}  {'elements':>8}  {'p-value':>8}  {'calibrated':<10}  {'mean z':>7}  "
        f"{'mean contraction':>16}  lowest p-values"
    ]
    for t in tests:
        lines.append(
            f"{t.label:<{width}}  {t.elements:>8}  {_fmt_p(t.p_value):>8}  {_yes_no(t.calibrated):<10}  "
            f"{_fmt(t.mean_z_score, '7.2f')}  {_fmt(t.mean_contraction, '16.2f')}  {t.lowest_note}".rstrip()
        )
    if hidden:
        lines.append(f"... {hidden} more variables with higher p-values not shown (see summary.json)")
    return lines


def _quantity_rows(summary: EnsembleSummary) -> list[str]:
    rows = summary.quantities()
    hidden = 0
    if len(rows) > MAX_TABLE_ROWS:
        hidden = len(rows) - MAX_TABLE_ROWS
        rows = sorted(rows, key=lambda row: p_value_sort_key(row[2]))[:MAX_TABLE_ROWS]
    labels = [name if kind == PARAMETER else f"{name} (test)" for kind, name, _ in rows]
    width = max([len("quantity"), *map(len, labels)])
    lines = [
        f"{'quantity':<{width}}  {'p-value':>8}  {'calibrated':<10}  {'mean z':>7}  {'mean contraction':>16}"
    ]
    for label, (_, _, q) in zip(labels, rows, strict=True):
        lines.append(
            f"{label:<{width}}  {_fmt_p(q.p_value):>8}  {_yes_no(q.calibrated):<10}  "
            f"{_fmt(q.mean_z_score, '7.2f')}  {_fmt(q.mean_contraction, '16.2f')}"
        )
    if hidden:
        lines.append(f"... {hidden} more quantities with higher p-values not shown (see summary.json)")
    return lines


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if value is None else format(value, spec)


def _fmt_p(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    return f"{p_value:.3f}" if p_value >= 0.001 else f"{p_value:.0e}"


def _yes_no(calibrated: bool | None) -> str:
    return "-" if calibrated is None else ("yes" if calibrated else "NO")
