"""Posterior SBC end to end with real fits: the README's regression example through the API and the CLI,
reuse on a rerun and a larger R, the --augment hook, one-line refusals that write nothing, and the same
results on a Dask cluster."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.api import run_ensemble
from runtime.ensemble.reference import draw_order, load_reference, pooled_draws
from runtime.ensemble.spec import load_spec
from runtime.report.ensemble_report import EnsembleReport
from runtime.report.files import INDEX
from runtime.store.inputs import InputReader
from runtime.store.local import LocalDirectoryStore
from runtime.submit import main
from tests.runtime.helpers.browser import dump_dom, requires_chromium
from tests.runtime.helpers.dask_clusters import local_cluster
from tests.runtime.helpers.engines_present import ENGINES
from tests.runtime.helpers.stored_results import results_by_replicate

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "regression"
MODEL, OBSERVED = EXAMPLE / "regression.stan", EXAMPLE / "observed.json"
POSTERIOR_DATA = ROOT / "tests" / "data" / "posterior"
QUICK: dict[str, Any] = {
    "chains": 2,
    "warmup": 200,
    "samples": 200,
    "thin": 4,
    "workers": 2,
    "no_progress": True,
}
"""2 chains x 200 draws thinned by 4: the reference fit keeps 100 draws."""
R = 20


def run(store: Path, **arguments: Any) -> tuple[EnsembleReport, str]:
    """run_ensemble with the regression example's posterior SBC defaults; the report and what it printed."""
    printed = io.StringIO()
    keywords = {"posterior": OBSERVED, "predictive": {"y_rep": "y"}, "replicates": R, **QUICK, **arguments}
    with contextlib.redirect_stdout(printed):
        report = run_ensemble(keywords.pop("model", MODEL), store=store, **keywords)
    assert isinstance(report, EnsembleReport)
    return report, printed.getvalue()


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[EnsembleReport, Path, str]]:
    """One posterior SBC run per engine, made once per module."""
    made: dict[str, tuple[EnsembleReport, Path, str]] = {}

    def first_run(engine: str) -> tuple[EnsembleReport, Path, str]:
        if engine not in made:
            tmp = tmp_path_factory.mktemp(f"posterior-{engine}")
            report, printed = run(tmp / "store", engine=engine, out=tmp / "out")
            made[engine] = (report, tmp, printed)
        return made[engine]

    return first_run


@pytest.mark.parametrize("engine", ENGINES)
def test_a_posterior_run_reports_what_it_is_conditional_on_and_its_reference_fit(
    engine: str, ran: Callable[[str], tuple[EnsembleReport, Path, str]]
) -> None:
    report, tmp, printed = ran(engine)
    assert "reference fit (new): 2 chains x 200 draws, thinned by 4 to 100" in printed
    assert report.verdict.succeeded == R and report.calibrated is not None
    posterior = report.summary["run"]["posterior"]
    assert posterior["observed"] == str(OBSERVED) and posterior["predictive"] == {"y_rep": "y"}
    assert posterior["reference_fit"]["kept"] == 100 and posterior["reference_fit"]["engine"] == engine
    assert f"posterior SBC, conditional on {OBSERVED} (y_rep appended to y)" in str(report)
    assert "reference fit: 2 chains x 200 draws" in str(report)
    assert "Posterior SBC, conditional on" in report._repr_html_()  # the notebook's view
    assert json.loads((tmp / "out" / "summary.json").read_text())["run"]["posterior"] == posterior
    spec = load_spec(LocalDirectoryStore(tmp / "store"), report.ensemble_id)
    assert spec.dataset.generator.kind == "posterior" and spec.base_data == {}  # N, x and y all grow


@requires_chromium
def test_the_page_shows_the_conditioning_and_the_reference_fit(
    ran: Callable[[str], tuple[EnsembleReport, Path, str]],
) -> None:
    _, tmp, _ = ran("pystan")
    dom = dump_dom(tmp / "out" / INDEX, tmp / "profile")
    text = re.sub(r"<[^>]+>", " ", dom)
    assert re.search(r"Posterior SBC, conditional on \S*observed\.json \(y_rep appended to y\)", text)
    assert "Reference fit (posterior SBC)" in text and "kept for replicates" in text
    assert "Posterior SBC draws parameters from the model's posterior" in text


def test_replicates_hold_the_reference_draws_in_draw_order_and_the_observed_data_augmented(
    ran: Callable[[str], tuple[EnsembleReport, Path, str]],
) -> None:
    report, tmp, _ = ran("pystan")
    store = LocalDirectoryStore(tmp / "store")
    dataset_id = load_spec(store, report.ensemble_id).dataset_id
    record, variables = load_reference(store, dataset_id)  # type: ignore[misc]
    pooled = pooled_draws(variables, record.thin)
    observed = json.loads(OBSERVED.read_text())
    reader = InputReader(store, dataset_id)
    for replicate in (0, 1, 7, R - 1):
        values = reader.replicate(replicate).values
        draw = draw_order(record.kept)[replicate]
        for name in ("alpha", "beta", "sigma"):
            assert float(values[name]) == pytest.approx(pooled[name][draw])
        assert int(values["N"]) == 40
        np.testing.assert_allclose(values["y"], observed["y"] + list(pooled["y_rep"][draw]))
        np.testing.assert_allclose(values["x"], observed["x"] * 2)


def test_a_rerun_and_a_larger_r_reuse_the_reference_fit_and_the_fits(
    ran: Callable[[str], tuple[EnsembleReport, Path, str]],
) -> None:
    report, tmp, _ = ran("pystan")
    again, printed = run(tmp / "store", engine="pystan", replicates=R + 5, out=tmp / "again")
    assert again.ensemble_id == report.ensemble_id
    assert "reference fit (reused)" in printed and "reference fit: regression.stan to" not in printed
    assert f"{R + 5} replicates requested, {R} reused, 5 to fit" in printed
    other_seed, _ = run(tmp / "store", engine="pystan", replicates=2, seed=2, out=tmp / "seed2")
    assert other_seed.ensemble_id != report.ensemble_id  # its own reference fit and draws


def test_the_augment_hook_builds_the_data_the_declarations_cannot(tmp_path: Path) -> None:
    report, _ = run(
        tmp_path / "store",
        model=POSTERIOR_DATA / "transposed.stan",
        posterior=POSTERIOR_DATA / "transposed_observed.json",
        augment="tests.data.posterior.transposed_augment:append_columns",
        replicates=8,
        engine="pystan",
        out=tmp_path / "out",
    )
    assert report.verdict.succeeded == 8
    assert (
        report.summary["run"]["posterior"]["augment"]
        == "tests.data.posterior.transposed_augment:append_columns"
    )
    store = LocalDirectoryStore(tmp_path / "store")
    values = InputReader(store, load_spec(store, report.ensemble_id).dataset_id).replicate(3).values
    assert int(values["N"]) == 12 and np.shape(values["Xt"]) == (1, 12) and np.shape(values["y"]) == (12,)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_on_a_dask_cluster_the_results_equal_the_local_backends(
    engine: str, tmp_path: Path, ran: Callable[[str], tuple[EnsembleReport, Path, str]]
) -> None:
    local, local_tmp, _ = ran(engine)
    with local_cluster() as client:
        report, _ = run(
            tmp_path / "store", engine=engine, backend="dask", scheduler=client, out=tmp_path / "o"
        )
    assert report.ensemble_id == local.ensemble_id
    dask_results = results_by_replicate(LocalDirectoryStore(tmp_path / "store"), report.ensemble_id, R)
    assert len(dask_results) == R
    assert dask_results == results_by_replicate(
        LocalDirectoryStore(local_tmp / "store"), local.ensemble_id, R
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SHORT_Y_REP = (
    MODEL.read_text()
    .replace("array[N] real y_rep", "array[N - 1] real y_rep")
    .replace("normal_rng(alpha + beta * x, sigma)", "normal_rng(alpha + beta * x[2:N], sigma)")
)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"observed": {"N": 2, "x": [0.0, 1.0]}},
            r"^--posterior observed\.json lacks 'y', data of regression\.stan$",
        ),
        (
            {"observed": {"N": 3, "x": [0.0, 1.0], "y": [1.0, 2.0, 3.0]}},
            r"^regression\.stan rejects --posterior observed\.json: .*x",
        ),
        (
            {"observed": {"N": 2, "x": [0.0, 1.0], "y": [1.0, "a"]}},
            r"^'y' must be numeric \(--posterior observed\.json\)",
        ),
        (
            {"predictive": ["mu=y"]},
            r"^--predictive mu=y: 'mu' is not a generated quantity of regression\.stan$",
        ),
        ({"predictive": ["alpha=y"]}, r"^--predictive alpha=y: 'alpha' is not a generated quantity"),
        ({"predictive": ["y_rep=N"]}, r"^--predictive y_rep=N: 'y_rep' has 1 dimension\(s\) and 'N' has 0$"),
        (
            {"model_code": SHORT_Y_REP},
            r"^--predictive y_rep=y: each draw of 'y_rep' has shape \(19,\), 'y' in the observed data has "
            r"shape \(20,\)$",
        ),
        ({"predictive": []}, r"^--posterior needs at least one --predictive QUANTITY=DATA"),
        ({"extra": ["--generator", "g.stan"]}, r"^--generator and --posterior exclude each other"),
        ({"extra": ["--data", "d.json"]}, r"^--data and --posterior exclude each other"),
        (
            {"extra": ["--replicates", "101"]},
            r"^--replicates 101 exceeds the 100 draws the reference fit keeps",
        ),
        (
            {
                "model": POSTERIOR_DATA / "transposed.stan",
                "observed_file": POSTERIOR_DATA / "transposed_observed.json",
            },
            r"^cannot append observations to 'Xt': it is sized by 'N' beyond its first dimension "
            r"\(matrix\[1, N\] Xt\); pass --augment package\.module:function",
        ),
    ],
)
def test_bad_posterior_input_gets_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: dict[str, Any], message: str
) -> None:
    model = str(arguments.get("model", MODEL))
    if "model_code" in arguments:
        model = write(tmp_path, "regression.stan", arguments["model_code"])
    observed = str(arguments.get("observed_file", OBSERVED))
    if "observed" in arguments:
        observed = write(tmp_path, "observed.json", json.dumps(arguments["observed"]))
    predictive = [f"--predictive={pair}" for pair in arguments.get("predictive", ["y_rep=y"])]
    argv = [model, "--posterior", observed, *predictive, "--store", str(tmp_path / "store")]
    argv += ["--out", str(tmp_path / "out"), "--engine", "pystan", "--no-progress"]
    argv += [f"--{key}={value}" for key, value in QUICK.items() if key not in ("workers", "no_progress")]
    extra = arguments.get("extra", [])
    assert main([*argv, *(extra if "--replicates" in extra else ["--replicates", "5", *extra])]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err.removeprefix("error: ")), err
    if "--replicates" in extra:  # refused before the reference fit is made
        assert "reference fit" not in out
    assert not (tmp_path / "store").exists() or not any(p.is_file() for p in (tmp_path / "store").rglob("*"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([str(MODEL), "--replicates", "5"], r"^give --generator \(prior SBC\) or --posterior OBSERVED\.json"),
        (
            [str(MODEL), "--generator", "g.stan", "--predictive", "y_rep=y", "-R", "5"],
            r"^--predictive needs --posterior",
        ),
        (
            [str(MODEL), "--generator", "g.stan", "--augment", "m:f", "-R", "5"],
            r"^--augment needs --posterior",
        ),
        (
            [str(MODEL), "--posterior", str(OBSERVED), "--predictive", "y_rep", "-R", "5"],
            r"^--predictive must be QUANTITY=DATA",
        ),
    ],
)
def test_the_flags_of_prior_and_posterior_sbc_do_not_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--store", str(tmp_path / "store")]) == 1
    err = capsys.readouterr().err
    assert re.search(message, err.removeprefix("error: ")) and err.count("\n") == 1, err
    assert not (tmp_path / "store").exists()


DATA = ROOT / "tests" / "data"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_posterior_sbc_flags_a_bug_of_large_counts_that_prior_sbc_passes(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench/posterior_sbc.py`` runs the same at R = 200 with every p-value printed."""
    common = {"chains": 2, "warmup": 300, "samples": 500, "thin": 5, "workers": 2, "no_progress": True}
    model = DATA / "poisson_large_counts_bug.stan"
    with contextlib.redirect_stdout(io.StringIO()):
        prior = run_ensemble(
            model,
            generator=DATA / "poisson_large_counts_generator.stan",
            data=DATA / "poisson_large_counts.json",
            replicates=100,
            engine=engine,
            store=tmp_path / "store",
            out=tmp_path / "prior",
            **common,
        )
        posterior = run_ensemble(
            model,
            posterior=DATA / "poisson_large_counts_observed.json",
            predictive={"y_rep": "y"},
            replicates=100,
            engine=engine,
            store=tmp_path / "store",
            out=tmp_path / "posterior",
            **common,
        )
    assert isinstance(prior, EnsembleReport) and isinstance(posterior, EnsembleReport)
    p_prior = prior.verdict.variables["lambda"].p_value
    p_posterior = posterior.verdict.variables["lambda"].p_value
    print(f"{engine}: prior SBC p = {p_prior:.3g}, posterior SBC p = {p_posterior:.3g}")
    assert prior.calibrated is True and p_prior is not None and p_prior > 0.01
    assert posterior.calibrated is False and p_posterior is not None and p_posterior < 1e-6
