"""The report's figures rendered in forked processes: the same PNGs as in one process, nothing left."""

from __future__ import annotations

import multiprocessing

import pytest

from runtime.errors import StanFleetError
from runtime.report.figures import FIGURE_NAMES
from runtime.report.pngs import render_pngs
from runtime.sbc.verdict import summarize
from tests.runtime.helpers.sbc_results import many_quantities, table_of


def test_forked_processes_render_the_same_pngs_as_one_process() -> None:
    results = many_quantities(3, 30)
    summary = summarize(table_of(results), ensemble_id="ens-forked", requested=30, reused=0)
    before = set(multiprocessing.active_children())  # httpstan's pool, if an earlier test started it
    forked = render_pngs(summary, table_of(results), processes=2)
    assert list(forked) == list(FIGURE_NAMES)
    assert all(png.startswith(b"\x89PNG") for png in forked.values())
    assert forked == render_pngs(summary, table_of(results), processes=1)
    assert set(multiprocessing.active_children()) == before  # the rendering processes are gone


def test_names_keep_their_order_and_an_unknown_one_is_named_from_a_forked_process() -> None:
    results = many_quantities(2, 20)
    summary = summarize(table_of(results), ensemble_id="ens-order", requested=20, reused=0)
    assert list(render_pngs(summary, table_of(results), ["diagnostics", "coverage"], processes=2)) == [
        "diagnostics",
        "coverage",
    ]
    with pytest.raises(StanFleetError, match=r"^no figure 'funnel'"):
        render_pngs(summary, table_of(results), ["coverage", "funnel"], processes=2)
