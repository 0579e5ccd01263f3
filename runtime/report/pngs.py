"""The report's figures as PNG files, drawn in parallel.

Matplotlib draws on one core, and a report's six figures take seconds (tens of seconds with many
quantities), all after the last fit, when every core is free. :func:`render_pngs` splits the figures
among forked processes, which inherit the summary and the score table instead of receiving a copy.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from runtime.executors.local import usable_cores
from runtime.report.figures import FIGURE_NAMES, figure_pngs
from runtime.sbc.score_table import ScoreTable
from runtime.sbc.verdict import EnsembleSummary

_inputs: tuple[EnsembleSummary, ScoreTable] | None = None
"""What a forked rendering process draws from, set by :func:`_inherit` when the process starts."""


def render_pngs(
    summary: EnsembleSummary,
    table: ScoreTable,
    names: Sequence[str] = FIGURE_NAMES,
    *,
    processes: int | None = None,
) -> dict[str, bytes]:
    """The figures ``names`` of :func:`runtime.report.figures.figure_pngs` as PNG bytes, in the order of ``names``.

    They are drawn in ``processes`` forked processes (default: one per usable core, at most one per
    figure); with one process, or where the platform cannot fork, in this one.
    """
    processes = min(len(names), processes or usable_cores())
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _render(summary, table, names)
    shares = [list(names[index::processes]) for index in range(processes)]
    with ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_inherit,
        initargs=(summary, table),
    ) as pool:
        rendered: dict[str, bytes] = {}
        for share in pool.map(_render_share, shares):
            rendered |= share
    return {name: rendered[name] for name in names}


def _render(summary: EnsembleSummary, table: ScoreTable, names: Sequence[str]) -> dict[str, bytes]:
    return figure_pngs(summary, table, names)


def _inherit(summary: EnsembleSummary, table: ScoreTable) -> None:
    global _inputs
    _inputs = (summary, table)


def _render_share(names: list[str]) -> dict[str, bytes]:
    assert _inputs is not None, "called outside a process started by render_pngs"
    return _render(*_inputs, names)
