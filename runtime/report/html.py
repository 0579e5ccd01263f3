"""``index.html``: the whole report of an ensemble on one self-contained page.

Images are inline (``data:`` URIs) and the styles are in the page: it opens offline, from a mail
attachment or a CI artifact, and has no external scripts, styles or fonts. One small inline script marks
an image that failed to decode and records on ``<body>`` how many decoded (``data-images-decoded``), which
is what the browser test reads.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from typing import Any

from runtime.ensemble.cost import CostEstimate, estimate_cost
from runtime.report.conditioning import conditioning_line, posterior_run, reference_fit
from runtime.report.figures import MAX_PANELS
from runtime.sbc.verdict import (
    CORRECTION,
    EBFMI_THRESHOLD,
    ESS_THRESHOLD,
    PARAMETER,
    RHAT_THRESHOLD,
    EnsembleSummary,
    Failure,
    QuantitySummary,
    p_value_sort_key,
)

MAX_FAILURES_LISTED = 200
"""At most this many failed replicates are listed on the page (the replicate table has them all)."""

PLOT_CAPTIONS = {
    "rank_histograms": "Rank histograms: under correct inference each is flat within the shaded pointwise band.",
    "ecdf_difference": (
        "PIT ECDF minus the uniform CDF. Each band is the uniformity test the verdict uses, at level/m: "
        "a curve that leaves it is flagged. Above zero throughout: the posteriors sit above the true values; "
        "below: under them. Above zero on the left and below on the right: posteriors too narrow "
        "(overconfident); the reverse: too wide."
    ),
    "coverage": (
        "Empirical coverage of central posterior intervals against their nominal width, with a 95% "
        "uncertainty band. Below the diagonal: intervals too narrow; above: too wide."
    ),
    "recovery": (
        "True value against the posterior median, with 5-95% posterior intervals. Points on the "
        "diagonal with short intervals mean the data pin the quantity down."
    ),
    "z_score_vs_contraction": (
        "Posterior z-score against posterior contraction, one dot per replicate: good fits sit at high "
        "contraction with |z| below 2."
    ),
    "diagnostics": "Sampler diagnostics per replicate, with their thresholds; failed replicates in red.",
}
"""Each plot of the page, in order, and what it shows."""

_STYLE_SUMMARY = """
.verdict{font-size:1.3rem;font-weight:600;padding:.8rem 1rem;border-radius:6px;margin:1rem 0}
.calibrated{background:#e6f4ea;color:#1e4620}.miscalibrated{background:#fce8e6;color:#8a1c12}
.undetermined{background:#f1f3f4;color:#3c4043}
.scroll{max-height:32rem;overflow:auto;border:1px solid #ddd}
tr.flagged td{color:#8a1c12;font-weight:600}
"""
"""The styles of the verdict and the table of quantities: the page's, and a notebook's view of a report."""

_STYLE = (
    _STYLE_SUMMARY
    + """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 1.5rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem;width:100%}
th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
th{position:sticky;top:0;background:#fafafa;cursor:pointer}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}td.name,th.name,td.text{text-align:left}
td.text{white-space:normal;font-family:ui-monospace,monospace;font-size:.85rem}
figure{margin:1.5rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#555}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600}dd{margin:0;font-family:ui-monospace,monospace;font-size:.9rem}
.broken{color:#8a1c12;font-weight:600}
"""
)

_SCRIPT = """
window.addEventListener("load", function () {
  var decoded = 0;
  document.querySelectorAll("img").forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { decoded += 1; return; }
    var note = document.createElement("p");
    note.className = "broken";
    note.textContent = "This image could not be decoded: open the PNG file next to this page.";
    img.replaceWith(note);
  });
  document.body.dataset.imagesDecoded = String(decoded);
  quantityTable();
});
function quantityTable() {
  var table = document.getElementById("quantities");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var input = document.getElementById("quantity-filter");
  var count = document.getElementById("quantity-count");
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function filter() {
    var needle = input.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var match = needle === "" || row.textContent.toLowerCase().indexOf(needle) >= 0;
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " quantities shown";
  }
  function key(row, column) {
    var cell = row.cells[column];
    if (cell.dataset.value === undefined) { return cell.textContent; }
    var number = parseFloat(cell.dataset.value);
    return isNaN(number) ? null : number;
  }
  function sort(column, descending) {
    rows.sort(function (a, b) {
      var x = key(a, column), y = key(b, column);
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      var order = typeof x === "number" ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (th, index) {
      th.setAttribute("aria-sort", index === column ? (descending ? "descending" : "ascending") : "none");
    });
    table.dataset.sortedBy = headers[column].dataset.key + (descending ? " descending" : " ascending");
  }
  headers.forEach(function (th, index) {
    th.addEventListener("click", function () {
      sort(index, th.getAttribute("aria-sort") === "ascending");
    });
  });
  input.addEventListener("input", filter);
  var view = new URLSearchParams(window.location.hash.slice(1));
  if (view.has("filter")) { input.value = view.get("filter"); }
  if (view.has("sort")) {
    var wanted = view.get("sort").split(" ");
    headers.forEach(function (th, index) {
      if (th.dataset.key === wanted[0]) { sort(index, wanted[1] === "descending"); }
    });
  }
  filter();
}
"""


def render_index(summary: EnsembleSummary, plots: Mapping[str, bytes], table_file: str) -> bytes:
    """The page for ``summary``, with ``plots`` (name to PNG bytes, in :data:`PLOT_CAPTIONS` order).

    ``table_file`` names the replicate table next to the page (``replicates.csv`` or ``.parquet``).
    """
    model = str(summary.run.get("model_name", "model"))
    sections = [
        f"<h1>SBC report: {_e(model)}</h1>",
        f"<p>Ensemble <code>{_e(summary.ensemble_id)}</code></p>",
        _verdict(summary),
        *(["<h2>Variables</h2>", _variable_table(summary)] if summary.per_variable else []),
        "<h2>Quantities</h2>",
        _quantity_table(summary, interactive=True),
        "<h2>Plots</h2>",
        _undrawn_note(summary, table_file),
        *(_figure(name, png) for name, png in plots.items()),
        "<h2>Sampler diagnostics</h2>",
        _diagnostics(summary),
        *_reference_fit(summary),
        "<h2>Failed replicates</h2>",
        _failures(summary, table_file),
        "<h2>How the ensemble ran</h2>",
        _run(summary),
        "<h2>How to read this</h2>",
        _how_to_read(summary),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>SBC report: {_e(model)} {_e(summary.ensemble_id[:8])}</title>\n"
        f"<style>{_STYLE}</style>\n<script>{_SCRIPT}</script>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )
    return page.encode()


def summary_html(summary: EnsembleSummary) -> str:
    """The verdict and the table of quantities as an HTML fragment (a notebook's view of a report)."""
    variables = _variable_table(summary) if summary.per_variable else ""
    quantities = _quantity_table(summary, interactive=False)
    return f"<div><style>{_STYLE_SUMMARY}</style>{_verdict(summary)}{variables}{quantities}</div>"


def verdict_text(summary: EnsembleSummary) -> str:
    """The verdict in words, as the top of the page says it."""
    unit = summary.family_unit
    if summary.calibrated is None:
        return f"UNDETERMINED: fewer than 2 succeeded replicates per {unit[:-1]}"
    if summary.calibrated:
        return f"CALIBRATED: all {summary.family_size} {unit} pass"
    return f"NOT CALIBRATED: {len(summary.flagged)} of {summary.family_size} {unit} flagged"


def _verdict(summary: EnsembleSummary) -> str:
    css = {None: "undetermined", True: "calibrated", False: "miscalibrated"}[summary.calibrated]
    details = [
        f"{summary.succeeded} of {summary.requested} replicates succeeded, {summary.failed} failed, "
        f"{summary.reused} reused",
        f"{CORRECTION.capitalize()}-corrected {summary.mode} uniformity tests at family-wise level "
        f"{summary.family_level:g}; each ECDF band at level {summary.band_level:.3g}",
    ]
    details += [note for note in (summary.missing_note, summary.exclusion_note) if note is not None]
    conditioning = conditioning_line(summary.run)
    if conditioning is not None:
        details.insert(0, conditioning[0].upper() + conditioning[1:])
    items = "".join(f"<li>{_e(d)}</li>" for d in details)
    return f'<div class="verdict {css}">{_e(verdict_text(summary))}</div>\n<ul>{items}</ul>'


def _variable_table(summary: EnsembleSummary) -> str:
    """The per-variable tests, lowest p-value first, each naming its elements with the lowest p-values."""
    tests = sorted(summary.variable_tests, key=p_value_sort_key)
    named = ("variable", "kind", "lowest p-values")
    labels = ("variable", "kind", "elements", "p-value", "verdict", "mean z", "lowest p-values")
    head = "".join(
        f'<th class="name">{label}</th>' if label in named else f"<th>{label}</th>" for label in labels
    )
    rows = []
    for test in tests:
        verdict = {None: "-", True: "calibrated", False: "NOT calibrated"}[test.calibrated]
        css = ' class="flagged"' if test.calibrated is False else ""
        kind = "parameter" if test.kind == PARAMETER else "test quantity"
        cells = [
            f'<td class="name">{_e(test.name)}</td>',
            f'<td class="name">{kind}</td>',
            _numeric_cell(test.elements, "d"),
            _numeric_cell(test.p_value, ".3g"),
            f"<td>{verdict}</td>",
            _numeric_cell(test.mean_z_score, ".2f"),
            f'<td class="name">{_e(test.lowest_note)}</td>',
        ]
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    return (
        f"<p>{len(tests)} variables, lowest p-value first. A variable of several elements is tested as one: "
        "the Cauchy combination of its elements' p-values and a pooled-ECDF test, Bonferroni-combined.</p>"
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def _quantity_table(summary: EnsembleSummary, *, interactive: bool) -> str:
    """Every quantity, lowest p-value first; the page's copy can be filtered and sorted (by its script)."""
    rows = sorted(summary.quantities(), key=lambda row: p_value_sort_key(row[2]))
    body = "\n".join(_quantity_row(kind, name, q) for kind, name, q in rows)
    head = "".join(_header(key, label) for key, label in _COLUMNS)
    controls = (
        "; click a column to sort, type to filter (the address can carry a view: "
        "<code>#filter=z[&amp;sort=p-value descending</code>).</p>"
        '<p><input id="quantity-filter" type="search" placeholder="filter: a name, a kind or NOT" '
        'aria-label="filter quantities"> <span id="quantity-count"></span></p>'
        if interactive
        else ".</p>"
    )
    table_id = ' id="quantities"' if interactive else ""
    return (
        f"<p>{len(rows)} quantities, lowest p-value first{controls}"
        f'<div class="scroll"><table{table_id}><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


_COLUMNS = (
    ("quantity", "quantity"),
    ("kind", "kind"),
    ("p-value", "p-value"),
    ("verdict", "verdict"),
    ("mean-z", "mean z"),
    ("mean-contraction", "mean contraction"),
    ("replicates", "replicates"),
)
"""The table's columns: the key a view in the address names, and the header."""


def _header(key: str, label: str) -> str:
    css = ' class="name"' if key in ("quantity", "kind") else ""
    sort = "ascending" if key == "p-value" else "none"
    return f'<th{css} data-key="{key}" aria-sort="{sort}" title="sort">{label}</th>'


def _quantity_row(kind: str, name: str, q: QuantitySummary) -> str:
    verdict = {None: "-", True: "calibrated", False: "NOT calibrated"}[q.calibrated]
    css = ' class="flagged"' if q.calibrated is False else ""
    label = "parameter" if kind == PARAMETER else "test quantity"
    cells = [
        f'<td class="name">{_e(name)}</td>',
        f'<td class="name">{label}</td>',
        _numeric_cell(q.p_value, ".3g"),
        f"<td>{verdict}</td>",
        _numeric_cell(q.mean_z_score, ".2f"),
        _numeric_cell(q.mean_contraction, ".2f"),
        _numeric_cell(q.replicates, "d"),
    ]
    return f"<tr{css}>{''.join(cells)}</tr>"


def _numeric_cell(value: float | None, spec: str) -> str:
    """A cell showing ``value`` formatted, carrying the exact value to sort by (empty: none)."""
    exact = "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else repr(value)
    return f'<td data-value="{exact}">{_number(value, spec)}</td>'


def _undrawn_note(summary: EnsembleSummary, table_file: str) -> str:
    """Which quantities the plots leave out, when there are more than MAX_PANELS to draw."""
    drawable = sum(q.replicates >= 2 for _, _, q in summary.quantities())
    if drawable <= MAX_PANELS:
        return ""
    return (
        f'<p class="undrawn">Each quantity plot draws the {MAX_PANELS} quantities with the lowest p-values; '
        f"{drawable - MAX_PANELS} of the {drawable} quantities are not drawn. Every quantity is in the table "
        f"above, and every replicate's scores in <code>{_e(table_file)}</code>.</p>"
    )


def _figure(name: str, png: bytes) -> str:
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    caption = PLOT_CAPTIONS.get(name, name)
    return (
        f'<figure id="{_e(name)}"><img src="{source}" alt="{_e(name.replace("_", " "))}">'
        f"<figcaption>{_e(caption)} (<code>{_e(name)}.png</code>)</figcaption></figure>"
    )


def _diagnostics(summary: EnsembleSummary) -> str:
    d = summary.diagnostics
    rows = [
        ("with divergent transitions", d.replicates_with_divergences, "any"),
        ("hit the maximum tree depth", d.replicates_with_max_treedepth, "any"),
        ("with low E-BFMI", d.replicates_with_low_ebfmi, f"< {d.ebfmi_threshold:g}"),
        ("with high R-hat", d.replicates_with_high_rhat, f"> {d.rhat_threshold:g}"),
        ("with low bulk or tail ESS", d.replicates_with_low_ess, f"< {d.ess_threshold:g}"),
    ]
    body = "".join(
        f'<tr><td class="name">{label}</td><td>{count}</td><td>{_e(threshold)}</td></tr>'
        for label, count, threshold in rows
    )
    return (
        f"<p>Of {summary.succeeded} succeeded replicates:</p><table>"
        '<thead><tr><th class="name">replicates</th><th>count</th><th>threshold</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _reference_fit(summary: EnsembleSummary) -> list[str]:
    """Posterior SBC's reference fit: its draws and diagnostics, and a warning when any is flagged."""
    reference = reference_fit(summary.run)
    if reference is None:
        return []
    rows = [
        ("draws", f"{reference.chains} chains x {reference.draws_per_chain}", ""),
        ("kept for replicates", f"{reference.kept} (every {reference.thin}th draw of each chain)", ""),
        ("divergent transitions", str(reference.divergences), "any"),
        ("at the maximum tree depth", str(reference.max_treedepth_hits), "any"),
        ("lowest E-BFMI", _number(reference.min_ebfmi, ".2f"), f"< {EBFMI_THRESHOLD:g}"),
        (
            "highest R-hat",
            f"{_number(reference.max_rhat, '.3f')} ({reference.max_rhat_of})",
            f"> {RHAT_THRESHOLD:g}",
        ),
        (
            "lowest bulk ESS",
            f"{_number(reference.min_ess_bulk, '.0f')} ({reference.min_ess_bulk_of})",
            f"< {ESS_THRESHOLD:g}",
        ),
        (
            "lowest tail ESS",
            f"{_number(reference.min_ess_tail, '.0f')} ({reference.min_ess_tail_of})",
            f"< {ESS_THRESHOLD:g}",
        ),
    ]
    body = "".join(
        f'<tr><td class="name">{_e(label)}</td><td>{_e(value)}</td><td>{_e(threshold)}</td></tr>'
        for label, value, threshold in rows
    )
    verdict = (
        f'<p class="broken">{_e(reference.warning)}</p>'
        if reference.warning is not None
        else "<p>No diagnostic flags the reference fit.</p>"
    )
    return [
        "<h2>Reference fit (posterior SBC)</h2>",
        f"<p>The model fitted once to the observed data (seed {reference.seed}, {_e(reference.engine)}): each "
        "replicate's true values and simulated data are one of its kept draws.</p>",
        verdict,
        '<table><thead><tr><th class="name">diagnostic</th><th>value</th><th>flagged when</th></tr></thead>'
        f"<tbody>{body}</tbody></table>",
    ]


def _failures(summary: EnsembleSummary, table_file: str) -> str:
    machinery = ""
    if summary.machinery_errors:
        machinery = (
            f"<p>{len(summary.machinery_errors)} replicates hit errors of the machinery, not the model "
            "(a killed sampler process, I/O, memory), retried and still failing: they have no result, "
            "count in no verdict, and a rerun of the same command fits them. The submitter's error names "
            f"the worker log that holds every attempt's full text.</p>{_failure_table(summary.machinery_errors, 'machinery_errors in summary.json')}"
        )
    if not summary.failures:
        return machinery or "<p>None.</p>"
    return machinery + (
        f"<p>{summary.failed} replicates failed for the model's reasons, as Stan reported them. Failed fits "
        f"are data: the full error text of each is in its result file (<code>error_detail</code>); "
        "<code>--retry-failed</code> refits them.</p>"
        f"{_failure_table(summary.failures, table_file)}"
    )


def _failure_table(failures: list[Failure], rest_in: str) -> str:
    shown = failures[:MAX_FAILURES_LISTED]
    body = "".join(f'<tr><td>{f.replicate}</td><td class="text">{_e(f.error)}</td></tr>' for f in shown)
    more = len(failures) - len(shown)
    note = f"<p>{more} more in <code>{_e(rest_in)}</code>.</p>" if more else ""
    return (
        '<div class="scroll"><table><thead><tr><th>replicate</th><th class="name">error</th></tr></thead>'
        f"<tbody>{body}</tbody></table></div>{note}"
    )


def _run(summary: EnsembleSummary) -> str:
    run: dict[str, Any] = dict(summary.run)
    posterior = run.pop("posterior", None)
    if isinstance(posterior, Mapping):
        run["predictive"] = ", ".join(f"{q}={d}" for q, d in posterior["predictive"].items())
        if posterior.get("augment"):
            run["augment"] = posterior["augment"]
    cost = run.pop("cost_estimate", None)
    settings = run.pop("settings", None)
    entries = [(key.replace("_", " "), value) for key, value in run.items()]
    if isinstance(settings, Mapping):
        entries += [(f"sampler {key.replace('_', ' ')}", value) for key, value in settings.items()]
    if isinstance(cost, Mapping) and "usd" in cost:
        estimate = CostEstimate(**cost)
        entries.append(("cost estimate on AWS", estimate.describe().removeprefix("estimated cost: ")))
    else:  # a local run: what its fits would cost as spot jobs of one vCPU each
        estimate = estimate_cost(summary.fit_seconds, 1)
        entries.append(
            (
                "cost estimate on AWS",
                f"{estimate.describe().removeprefix('estimated cost: ')}, on 1-vCPU jobs",
            )
        )
    entries.append(("fit time, all replicates", f"{summary.fit_seconds:.1f} s"))
    items = "".join(f"<dt>{_e(key)}</dt><dd>{_e(str(value))}</dd>" for key, value in entries)
    return f"<dl>{items}</dl>"


def _how_to_read(summary: EnsembleSummary) -> str:
    paragraphs = [
        (
            "Posterior SBC draws parameters from the model's posterior given the observed data (the "
            "reference fit), simulates new data from each draw, fits the model to the observed data "
            "together with the new data, and asks where the drawn value falls among that fit's draws (its "
            "rank). If the model and the sampler are right where the observed data put the posterior, every "
            "rank is equally likely. Contraction is measured against the spread of the drawn values, so it "
            "says how much the new data narrow the posterior, not the prior."
            if posterior_run(summary.run) is not None
            else "Simulation-based calibration draws parameters from the prior, simulates data from them, "
            "fits the model to each dataset and asks where the true value falls among the posterior draws "
            "(its rank). If the model and the sampler are right, every rank is equally likely."
        ),
        (
            "Each variable's ranks are tested for uniformity, all its elements together (for z[1..J]: the "
            "Cauchy combination of the elements' p-values and a test of their pooled ECDF); the verdict "
            f"corrects for testing {summary.family_size} variables at once (Holm, family-wise level "
            f"{summary.family_level:g}). A variable's elements with the lowest p-values show where it fails. "
            if summary.per_variable
            else f"Each quantity's ranks are tested for uniformity; the verdict corrects for testing "
            f"{summary.family_size} quantities at once (Holm, family-wise level {summary.family_level:g}). "
        )
        + "A flagged quantity means the posterior is systematically off for it: too narrow, too wide, or "
        "shifted. The ECDF-difference plot shows which.",
        "Parameters alone miss some bugs: a model that leaves out its likelihood recovers its prior and "
        "passes. Data-dependent test quantities such as the log-likelihood catch that "
        "(--test-quantities).",
        "Sampler diagnostics are reported apart from the verdict: divergences or low ESS mean individual "
        "fits are unreliable even when the ranks look uniform.",
    ]
    return "".join(f"<p>{_e(p)}</p>" for p in paragraphs)


def _number(value: float | None, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
