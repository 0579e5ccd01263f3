"""An ensemble's report as a Python object: what ``run_ensemble`` and ``load_ensemble`` return.

In Jupyter it shows the verdict and the table of quantities; its figures are matplotlib figures and its
per-replicate scores a pandas DataFrame, all computed from the stored results (nothing is refitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.report.figures import draw_figures
from runtime.report.files import INDEX
from runtime.report.html import summary_html
from runtime.report.replicates_table import replicates_frame
from runtime.report.table import verdict_table
from runtime.sbc.score_table import ScoreTable
from runtime.sbc.verdict import EnsembleSummary

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class EnsembleReport:
    """The verdict of one ensemble, its replicates' scores, and where its report files are (if written)."""

    verdict: EnsembleSummary
    scores: ScoreTable
    out_dir: Path | None = None

    @property
    def ensemble_id(self) -> str:
        """The ensemble's id (a content hash of its datasets, model, settings and engine)."""
        return self.verdict.ensemble_id

    @property
    def calibrated(self) -> bool | None:
        """True when every quantity passes, False when any is flagged, None when undetermined."""
        return self.verdict.calibrated

    @property
    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds."""
        return self.verdict.to_dict()

    @property
    def replicates(self) -> pandas.DataFrame:
        """What ``replicates.parquet`` holds: one row per replicate and quantity, one per failed replicate."""
        return replicates_frame(self.scores)

    @property
    def index_html(self) -> Path | None:
        """The report's page, when the report files were written."""
        return None if self.out_dir is None else self.out_dir / INDEX

    def figure(self, name: str) -> Figure:
        """One figure of the report.

        ``name`` is ``rank_histograms``, ``ecdf_difference``, ``coverage``, ``recovery``,
        ``z_score_vs_contraction`` or ``diagnostics``.

        The figure belongs to no pyplot state: in Jupyter it shows itself once ``%matplotlib inline`` has
        run; elsewhere ``figure.savefig(path)`` writes it.
        """
        return draw_figures(self.verdict, self.scores, [name])[name]

    def __str__(self) -> str:
        return verdict_table(self.verdict)

    def __repr__(self) -> str:
        v = self.verdict
        return (
            f"EnsembleReport(ensemble_id={v.ensemble_id!r}, calibrated={v.calibrated}, "
            f"quantities={len(v.quantities())}, succeeded={v.succeeded}, failed={v.failed})"
        )

    def _repr_html_(self) -> str:
        return summary_html(self.verdict)


@dataclass(frozen=True)
class SubmittedEnsemble:
    """An ensemble handed to AWS Batch without waiting (``wait=False``).

    Collect its report later with ``load_ensemble(ensemble_id)`` or ``python -m runtime.collect``.
    """

    ensemble_id: str
