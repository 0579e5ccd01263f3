"""The example notebook runs top to bottom in a real Jupyter kernel and shows what it promises: the\nprior SBC run, its report reloaded, and a posterior SBC run with its reference fit."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "sbc_notebook.ipynb"


@pytest.mark.slow
def test_the_example_notebook_runs_and_shows_the_verdict_a_table_and_figures() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})]
    assert any('class="verdict' in page and "lambda" in page for page in html)  # the report's own view
    assert any("<table" in page and "quantity" in page for page in html)  # the replicates DataFrame
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 2  # the two figures
    (reloaded,) = [cell for cell in notebook.cells if "runtime.load_ensemble" in cell.source]
    last = reloaded.outputs[-1]["data"]["text/plain"]
    assert last.split()[:2] == ["(0.05,", "'per-element',"] and "index.html" in last
    assert any("Posterior SBC, conditional on" in page and "regression" in page for page in html)
    reference = notebook.cells[-1].outputs[-1]["data"]["text/plain"]
    assert "'kept': 200" in reference and "'divergences': 0" in reference
