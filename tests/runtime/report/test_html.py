"""index.html: self-contained, complete, readable with many quantities, and rendered by a real browser."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runtime.report.figures import FIGURE_NAMES
from runtime.report.files import INDEX, write_report
from runtime.report.html import verdict_text
from runtime.sbc.verdict import PER_ELEMENT, EnsembleSummary, VerdictOptions, p_value_sort_key, summarize
from runtime.submit import main as submit_main
from tests.runtime.helpers.browser import dump_dom, requires_chromium
from tests.runtime.helpers.poisson_example import QUICK_SAMPLER, example_arguments
from tests.runtime.helpers.sbc_results import failed_result, many_quantities, table_of

RUN = {
    "model": "models/means.stan",
    "model_name": "means",
    "generator": "gen.stan",
    "engine": "pystan",
    "backend": "local",
    "seed": 3,
    "settings": {"chains": 4, "warmup": 1000, "samples": 1000, "thin": 10},
}


class _Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def attributes(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def sixty_quantity_report(out: Path) -> EnsembleSummary:
    results = many_quantities(60, 40)  # every fifth theta has ranks piled up at the top
    results.append(failed_result(40, "RuntimeError: <b>chain 2</b> & died"))
    summary = summarize(
        table_of(results),
        ensemble_id="ens-sixty-quantities",
        requested=41,
        reused=0,
        run=RUN,
        options=VerdictOptions(mode=PER_ELEMENT),
    )
    write_report(summary, table_of(results), out)
    return summary


def test_the_per_variable_page_lists_each_variable_with_its_worst_elements(tmp_path: Path) -> None:
    results = many_quantities(20, 40)
    summary = summarize(table_of(results), ensemble_id="ens-twenty", requested=40, reused=0, run=RUN)
    write_report(summary, table_of(results), tmp_path)
    text = (tmp_path / INDEX).read_text(encoding="utf-8")
    assert verdict_text(summary) == "NOT CALIBRATED: 1 of 1 variables flagged"
    assert (
        text.index(verdict_text(summary))
        < text.index("<h2>Variables</h2>")
        < text.index("<h2>Quantities</h2>")
    )
    variables = text[text.index("<h2>Variables</h2>") : text.index("<h2>Quantities</h2>")]
    (row,) = re.findall(r'<tr class="flagged">(.*?)</tr>', variables)
    assert '<td class="name">theta</td>' in row and "NOT calibrated" in row
    assert re.search(r"theta\[(5|10|15|20)\] p = ", row)
    assert "corrects for testing 1 variables at once" in text


@pytest.mark.slow
def test_the_page_is_self_contained_and_has_every_part(tmp_path: Path) -> None:
    summary = sixty_quantity_report(tmp_path)
    text = (tmp_path / INDEX).read_text(encoding="utf-8")
    page = _Page(text)
    # Nothing is fetched: no links, no external scripts, styles, fonts or images.
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    for reference in ("http:", "https:", "url(", "@import", "//"):
        assert reference not in without_images, f"the page refers to the network: {reference}"
    assert page.attributes("link") == [] and all(a.get("src") is None for a in page.attributes("script"))
    assert all((a.get("href") or "#").startswith("#") for _, a in page.tags)
    images = page.attributes("img")
    assert len(images) == len(FIGURE_NAMES)
    for name, image in zip(FIGURE_NAMES, images, strict=True):
        source = image["src"] or ""
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]) == (tmp_path / f"{name}.png").read_bytes()
    # The verdict on top, then every quantity, lowest p-value first.
    assert text.index(verdict_text(summary)) < text.index("<h2>Quantities</h2>")
    assert verdict_text(summary) == "NOT CALIBRATED: 12 of 60 quantities flagged"
    quantity_rows = [row for row in page.rows if len(row) == 7]
    expected = sorted(summary.variables.items(), key=lambda item: p_value_sort_key(item[1]))
    assert [row[0] for row in quantity_rows] == [name for name, _ in expected]
    assert {row[3] for row in quantity_rows} == {"calibrated", "NOT calibrated"}
    # The plots draw 24 quantities and the page says how many they leave out, and where they all are.
    assert (
        "Each quantity plot draws the 24 quantities with the lowest p-values; 36 of the 60 quantities "
        "are not drawn. Every quantity is in the table above, and every replicate's scores in "
        "<code>replicates.csv</code>."
    ) in text
    # The failed replicate with its one-line error, escaped; how the run went, with a cost estimate.
    assert ["40", "RuntimeError: <b>chain 2</b> & died"] in page.rows
    assert "&lt;b&gt;chain 2&lt;/b&gt; &amp; died" in text
    for field in (
        "means.stan",
        "gen.stan",
        "pystan",
        "sampler thin",
        "cost estimate on AWS",
        "on 1-vCPU jobs",
    ):
        assert field in text
    assert "How to read this" in text


@pytest.mark.slow
@requires_chromium
def test_chromium_renders_the_page_of_sixty_quantities(tmp_path: Path) -> None:
    summary = sixty_quantity_report(tmp_path / "report")
    dom = dump_dom(tmp_path / "report" / INDEX, tmp_path / "profile")
    assert "<title>SBC report: means ens-sixt</title>" in dom
    assert verdict_text(summary) in dom
    assert f'data-images-decoded="{len(FIGURE_NAMES)}"' in dom  # each image decoded with a size
    assert '<p class="broken">' not in dom


def _table_rows(dom: str) -> list[tuple[str, float | None, bool]]:
    """Each row of the table of quantities as the browser left it: name, exact p-value, hidden."""
    body = dom[dom.index('<table id="quantities"') :]
    body = body[: body.index("</table>")]
    rows = re.findall(
        r'<tr([^>]*)><td class="name">([^<]*)</td><td class="name">[^<]*</td><td data-value="([^"]*)"', body
    )
    return [
        (name, float(value) if value else None, "hidden" in attributes) for attributes, name, value in rows
    ]


@pytest.mark.slow
@requires_chromium
def test_chromium_filters_and_sorts_the_table_from_the_address(tmp_path: Path) -> None:
    summary = sixty_quantity_report(tmp_path / "report")
    flagged = {name for name, q in summary.variables.items() if q.calibrated is False}
    assert len(flagged) == 12  # every fifth of 60: the filter below must find exactly these
    dom = dump_dom(
        tmp_path / "report" / INDEX, tmp_path / "profile", fragment="#filter=NOT&sort=p-value%20descending"
    )
    rows = _table_rows(dom)
    assert len(rows) == 60  # every quantity is listed; the filter only hides rows
    shown = [(name, p) for name, p, hidden in rows if not hidden]
    assert {name for name, _ in shown} == flagged
    p_values = [p for _, p in shown]
    assert p_values == sorted(p_values, reverse=True)
    assert '<span id="quantity-count">12 of 60 quantities shown</span>' in dom
    assert 'data-sorted-by="p-value descending"' in dom


@requires_chromium
@pytest.mark.slow
def test_chromium_sorts_names_in_their_natural_order(tmp_path: Path) -> None:
    sixty_quantity_report(tmp_path / "report")
    dom = dump_dom(tmp_path / "report" / INDEX, tmp_path / "profile", fragment="#sort=quantity%20ascending")
    assert [name for name, _, _ in _table_rows(dom)] == [f"theta[{i}]" for i in range(1, 61)]


@pytest.mark.slow
@requires_chromium
def test_chromium_renders_the_report_of_the_bundled_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    arguments = [*example_arguments(), *QUICK_SAMPLER, "--replicates", "10", "--engine", "pystan"]
    assert (
        submit_main([*arguments, "--store", str(tmp_path / "store"), "--out", str(out), "--no-progress"]) == 0
    )
    assert capsys.readouterr().out.endswith(f"report: {out / INDEX}\n")  # the terminal's last line
    dom = dump_dom(out / INDEX, tmp_path / "profile")
    assert "<title>SBC report: fit_data " in dom
    assert re.search(r'<div class="verdict (calibrated|miscalibrated)">(NOT )?CALIBRATED: ', dom)
    assert f'data-images-decoded="{len(FIGURE_NAMES)}"' in dom
    assert "lambda" in dom and "log_lik" in dom
