"""The Python API with real fits: run_ensemble and load_ensemble return the same report as the CLI."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pandas
import pytest

import runtime
from runtime.api import load_ensemble, run_ensemble
from runtime.errors import StanFleetError
from runtime.report.ensemble_report import EnsembleReport
from runtime.report.figures import FIGURE_NAMES
from runtime.submit import build_parser
from tests.runtime.helpers.poisson_example import DATA, GENERATOR, MODEL, ROOT

QUICK = {"chains": 2, "warmup": 300, "samples": 300, "thin": 3, "workers": 2, "no_progress": True}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[EnsembleReport, Path]:
    tmp = tmp_path_factory.mktemp("api")
    report = runtime.run_ensemble(
        MODEL,
        generator=GENERATOR,
        data=DATA,
        replicates=10,
        engine="pystan",
        store=tmp / "store",
        out=tmp / "out",
        test_quantities=["log_lik"],
        **QUICK,
    )
    assert isinstance(report, EnsembleReport)
    return report, tmp


def test_run_ensemble_returns_the_report_it_wrote(ran: tuple[EnsembleReport, Path]) -> None:
    report, tmp = ran
    # The example is calibrated, and its 10 seeded replicates say so: both p-values clear the level.
    assert report.calibrated is True
    p_values = {
        name: q["p_value"]
        for name, q in [*report.summary["variables"].items(), *report.summary["test_quantities"].items()]
    }
    assert min(p_values.values()) > report.summary["uniformity_test"]["family_level"]
    assert p_values == pytest.approx({"lambda": 0.1442, "log_lik": 0.0497}, abs=1e-3)
    assert report.summary == json.loads((tmp / "out" / "summary.json").read_text())
    assert report.index_html == tmp / "out" / "index.html" and report.index_html.is_file()
    table = report.replicates
    assert isinstance(table, pandas.DataFrame)
    assert len(table) == 10 * 2  # lambda and the log_lik test quantity
    assert list(table.columns) == (tmp / "out" / "replicates.csv").read_text().splitlines()[0].split(",")
    assert sorted(set(table["quantity"])) == ["lambda", "log_lik"]
    html = report._repr_html_()
    assert "CALIBRATED: all 2 variables pass" in html and "<table>" in html and "lambda" in html
    assert "NOT CALIBRATED" not in html
    assert "verdict: CALIBRATED (2 variables, " in str(report)
    assert repr(report) == (
        f"EnsembleReport(ensemble_id={report.ensemble_id!r}, calibrated=True, quantities=2, succeeded=10, failed=0)"
    )


@pytest.mark.parametrize("name", FIGURE_NAMES)
def test_every_figure_is_a_matplotlib_figure(ran: tuple[EnsembleReport, Path], name: str) -> None:
    from matplotlib.figure import Figure

    figure = ran[0].figure(name)
    assert isinstance(figure, Figure)
    assert [ax for ax in figure.axes if ax.get_visible()]


def test_an_unknown_figure_is_a_stanfleet_error(ran: tuple[EnsembleReport, Path]) -> None:
    with pytest.raises(StanFleetError, match=r"^no figure 'funnel'; the figures are rank_histograms, "):
        ran[0].figure("funnel")


def test_load_ensemble_reads_the_same_report_back_without_refitting(ran: tuple[EnsembleReport, Path]) -> None:
    report, tmp = ran
    results = sorted((tmp / "store").glob("ensembles/*/results/*.json"))
    stamps = [path.stat().st_mtime_ns for path in results]
    loaded = load_ensemble(report.ensemble_id, store=tmp / "store")
    assert loaded.summary == report.summary
    assert loaded.out_dir is None and not (tmp / "reloaded").exists()
    assert [path.stat().st_mtime_ns for path in results] == stamps
    judged = load_ensemble(report.ensemble_id, tmp / "store", level=0.2, out=tmp / "reloaded")
    assert judged.summary["uniformity_test"]["family_level"] == 0.2
    per_element = load_ensemble(report.ensemble_id, tmp / "store", verdict="per-element")
    assert per_element.summary["uniformity_test"]["verdict"] == "per-element"
    assert (tmp / "reloaded" / "index.html").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"replicates": "ten"}, r"^replicates must be an integer, got 'ten'$"),
        ({"replicates": 0}, r"^--replicates must be an integer in 1\.\.1,000,000, got 0$"),
        ({"level": 2.0}, r"^--level must lie strictly between 0 and 1, got 2$"),
        (
            {"verdict": "per-scalar"},
            r"^--verdict must be one of per-variable, per-element, got 'per-scalar'$",
        ),
        ({"engine": "jax"}, r"^--engine must be one of auto, cmdstanpy, pystan, got 'jax'$"),
        ({"wait": "yes"}, r"^wait must be True or False, got 'yes'$"),
        ({"model": ROOT / "no_such.stan"}, r"no_such\.stan: cannot read the Stan program"),
    ],
)
def test_bad_arguments_raise_stanfleet_errors_never_system_exit(
    tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    call = {
        "model": MODEL,
        "generator": GENERATOR,
        "data": DATA,
        "replicates": 3,
        "store": tmp_path,
        **arguments,
    }
    model = call.pop("model")
    with pytest.raises(StanFleetError, match=message):
        run_ensemble(model, **call)  # type: ignore[arg-type]
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


@pytest.mark.slow
def test_a_miscalibrated_verdict_raises_when_asked_to(tmp_path: Path) -> None:
    model = ROOT / "tests" / "data" / "poisson_no_likelihood.stan"
    arguments = {"generator": GENERATOR, "data": DATA, "replicates": 10, "engine": "pystan", **QUICK}
    with pytest.raises(StanFleetError, match=r"^ensemble \w+ is miscalibrated: log_lik flagged$"):
        run_ensemble(
            model, **arguments, store=tmp_path / "s", out=tmp_path / "o", fail_on_miscalibration=True
        )
    assert (tmp_path / "o" / "index.html").is_file()  # the report was written first


def test_every_command_line_flag_is_a_keyword_argument_with_the_same_default() -> None:
    parameters = inspect.signature(run_ensemble).parameters
    for action in build_parser()._actions:
        if action.dest == "help":
            continue
        assert action.dest in parameters, action.dest
        default = parameters[action.dest].default
        if default is None or default is inspect.Parameter.empty:
            continue  # required, or "the command line's default" (workers: every core; store: the cache)
        assert default == action.default, action.dest


def test_the_package_exports_the_api_lazily() -> None:
    assert runtime.run_ensemble is run_ensemble and runtime.load_ensemble is load_ensemble
    assert runtime.StanFleetError is StanFleetError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        runtime.nope  # noqa: B018
