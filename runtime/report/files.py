"""The ensemble report files: ``summary.json``, the replicate table, a PNG per figure and ``index.html``.

``write_report`` writes an :class:`~runtime.sbc.verdict.EnsembleSummary` (see :mod:`runtime.sbc.verdict`), the
per-replicate scores (:mod:`runtime.report.replicates_table`), the figures of :mod:`runtime.report.figures` and
the page of :mod:`runtime.report.html` into a directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime.model.files import cache_root
from runtime.report.html import render_index
from runtime.report.pngs import render_pngs
from runtime.report.replicates_table import write_replicate_files
from runtime.sbc.score_table import ScoreTable
from runtime.sbc.verdict import EnsembleSummary
from runtime.store.atomic_file import write_atomically

INDEX = "index.html"
"""The report's page: everything on one self-contained page."""
NULLS_DIRECTORY = "gamma-nulls"
"""Under the cache directory (``$STANFLEET_CACHE_DIR``, default ``~/.cache/stanfleet``)."""


def preload_report(replicates: int) -> None:
    """Import what the plots need and simulate the uniformity test's null distribution, ahead of time.

    The imports (ArviZ, matplotlib, scipy.stats, pyarrow's Parquet and CSV writers) and a first figure
    (:func:`runtime.report.figures.warm_up`) take seconds; the null distribution is for ``replicates`` PIT
    values.

    The submitter runs this in a thread while the fits run, so the report starts at once.
    """
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401

    from runtime.report.figures import warm_up
    from runtime.sbc.uniformity import prepare_gamma_null

    keep_nulls_on_disk()
    prepare_gamma_null(replicates)
    warm_up()


def keep_nulls_on_disk() -> None:
    """Keep the uniformity test's simulated null distributions in StanFleet's cache directory.

    A report of the same R in a later run then reads them back instead of simulating them again.
    """
    from runtime.sbc.uniformity import use_gamma_null_cache

    use_gamma_null_cache(cache_root() / NULLS_DIRECTORY)


def write_report(summary: EnsembleSummary, table: ScoreTable, out_dir: Path) -> list[Path]:
    """Write the report's files into ``out_dir``.

    The files are ``summary.json``, ``replicates.parquet`` (and ``replicates.csv`` while it is small),
    ``<figure>.png`` for every figure of :data:`runtime.report.figures.FIGURE_NAMES`, then ``index.html``.

    Every file is written to a temporary file in ``out_dir`` and renamed into place, so a crash
    never leaves a half-written file. Returns the paths written, in that order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    paths = [write_atomically(out_dir / "summary.json", payload.encode())]
    table_files = write_replicate_files(table, out_dir)
    paths += table_files
    pngs = render_pngs(summary, table)
    paths += [write_atomically(out_dir / f"{name}.png", png) for name, png in pngs.items()]
    paths.append(write_atomically(out_dir / INDEX, render_index(summary, pngs, table_files[-1].name)))
    return paths
