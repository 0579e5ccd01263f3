"""Posterior SBC's verdicts on real fits (issue 23): no false alarm on a correct model, and a bug found
that prior SBC misses.

1. ``correct``: the README's regression example (``examples/regression``), posterior SBC conditional on
   its ``observed.json`` with ``--predictive y_rep=y``, R = 200, for every engine present and each seed
   of ``--seeds``. Each run prints its variables' p-values and verdict; then Holm's procedure over every
   p-value of every run (engines x seeds x variables) at the verdict's level says whether any is a false
   alarm. The engines share each seed's reference fit and datasets (the dataset id does not name the
   engine; the first engine's reference fit is stored and reused), so their p-values for one seed are
   not independent.
2. ``bug``: ``tests/data/poisson_large_counts_bug.stan``, whose normal approximation for large counts has
   the wrong sd. Prior SBC (its generator puts the rate near 5) and posterior SBC conditional on 20 counts
   near 200, both R = 200 with the first engine: the p-values and verdicts of each.

Every run prints its mean fit time. Fits are kept in ``--store`` (default /tmp/stanfleet-posterior-sbc),
so a rerun judges again without refitting.

    CMDSTAN=... .venv/bin/python bench/posterior_sbc.py [--replicates 200] [--seeds 1 2 3 4]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.api import run_ensemble  # noqa: E402
from runtime.engines.choice import cmdstan_available  # noqa: E402
from runtime.report.ensemble_report import EnsembleReport  # noqa: E402
from runtime.sbc.verdict import DEFAULT_LEVEL, holm_calibrated  # noqa: E402

REGRESSION = ROOT / "examples" / "regression"
DATA = ROOT / "tests" / "data"


def run(store: Path, **arguments: object) -> EnsembleReport:
    """One ensemble through the API, its printing swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        report = run_ensemble(store=store, workers=2, no_progress=True, **arguments)  # type: ignore[arg-type]
    assert isinstance(report, EnsembleReport)
    return report


def describe(label: str, report: EnsembleReport) -> dict[str, float]:
    """Print one run's p-values, verdict and mean fit time; return its p-values by variable."""
    p_values = {name: q.p_value for name, q in report.verdict.variables.items() if q.p_value is not None}
    verdict_summary = report.verdict
    fit_ms = 1000 * verdict_summary.fit_seconds / max(1, verdict_summary.succeeded + verdict_summary.failed)
    shown = ", ".join(f"{name} p={p:.3g}" for name, p in p_values.items())
    verdict = {True: "CALIBRATED", False: "NOT CALIBRATED", None: "UNDETERMINED"}[report.calibrated]
    print(f"{label}: {verdict}; {shown}; mean fit {fit_ms:.0f} ms", flush=True)
    return p_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--store", type=Path, default=Path("/tmp/stanfleet-posterior-sbc"))
    parser.add_argument("--case", choices=["correct", "bug", "both"], default="both")
    parser.add_argument("--engines", nargs="+", help="default: every engine present")
    args = parser.parse_args()
    engines = args.engines or (["cmdstanpy", "pystan"] if cmdstan_available() else ["pystan"])
    print(f"engines: {', '.join(engines)}; R = {args.replicates}; level {DEFAULT_LEVEL}", flush=True)

    if args.case in ("correct", "both"):
        every: dict[str, float] = {}
        for engine in engines:
            for seed in args.seeds:
                report = run(
                    args.store,
                    model=REGRESSION / "regression.stan",
                    posterior=REGRESSION / "observed.json",
                    predictive={"y_rep": "y"},
                    replicates=args.replicates,
                    engine=engine,
                    seed=seed,
                )
                label = f"correct regression, {engine}, seed {seed}"
                for name, p in describe(label, report).items():
                    every[f"{engine}/{seed}/{name}"] = p
        rejected = [name for name, ok in holm_calibrated(every, DEFAULT_LEVEL).items() if not ok]
        print(
            f"Holm over {len(every)} p-values (engines x seeds x variables) at {DEFAULT_LEVEL}: "
            + (f"false alarms: {', '.join(rejected)}" if rejected else "no false alarm")
            + f"; smallest p = {min(every.values()):.3g}",
            flush=True,
        )

    if args.case in ("bug", "both"):
        model = DATA / "poisson_large_counts_bug.stan"
        prior = run(
            args.store,
            model=model,
            generator=DATA / "poisson_large_counts_generator.stan",
            data=DATA / "poisson_large_counts.json",
            replicates=args.replicates,
            engine=engines[0],
        )
        describe(f"large-count bug, prior SBC, {engines[0]}", prior)
        posterior = run(
            args.store,
            model=model,
            posterior=DATA / "poisson_large_counts_observed.json",
            predictive={"y_rep": "y"},
            replicates=args.replicates,
            engine=engines[0],
        )
        describe(f"large-count bug, posterior SBC given counts near 200, {engines[0]}", posterior)


if __name__ == "__main__":
    main()
