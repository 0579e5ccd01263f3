"""Per-variable against per-element verdicts on real CmdStan fits of a 100-group hierarchical model (issue 20).

Two versions of the non-centered model ``tests/data/wide_noncentered.stan`` (``mu``, ``tau``, ``z[1..100]``)
are fitted to the same R datasets from its generator:

* **correct**: the model as the generator draws it; neither verdict should raise an alarm;
* **small bug in every group**: the same model with ``z ~ normal(0, SCALE)`` instead of ``std_normal()``
  (default SCALE = 1.2): every ``z[j]``'s posterior is a little too wide, so each element's ranks lean
  a little to the middle, too little for any one element's test at Holm's ``0.01 / 102``.

Each ensemble is judged both ways from the same stored fits (``load_ensemble(..., verdict=...)``), and the
script prints, per version and verdict: the verdict, the family size, and the p-values that decide it
(``z``'s combined p-value with its Cauchy and pooled parts; the smallest element p-value against Holm's
first threshold). Fits are kept in ``--store`` (default /tmp/stanfleet-verdict-real-fits), so a rerun
judges again without refitting.

    CMDSTAN=... .venv/bin/python bench/verdict_real_fits.py [--replicates 100] [--scale 1.2] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.api import load_ensemble, run_ensemble  # noqa: E402
from runtime.report.ensemble_report import EnsembleReport  # noqa: E402

DATA = ROOT / "tests" / "data"
MODEL = DATA / "wide_noncentered.stan"
GENERATOR = DATA / "wide_noncentered_generator.stan"
GROUPS = DATA / "wide_noncentered.json"
CORRECT_PRIOR = "z ~ std_normal();"


def buggy_model(directory: Path, scale: float) -> Path:
    """The model with every group's prior scale ``scale`` instead of 1 (the generator keeps 1)."""
    source = MODEL.read_text()
    if CORRECT_PRIOR not in source:
        raise SystemExit(f"{MODEL} no longer says {CORRECT_PRIOR!r}: update this bench")
    path = directory / f"wide_noncentered_z_scale_{format(scale, 'g').replace('.', '_')}.stan"
    directory.mkdir(parents=True, exist_ok=True)
    text = source.replace(CORRECT_PRIOR, f"z ~ normal(0, {scale!r});  // bug: the generator draws sd 1")
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def fitted(model: Path, args: argparse.Namespace) -> tuple[str, float]:
    """The ensemble's id and its seconds per fit (fits only what the store does not hold yet)."""
    started = time.perf_counter()
    report = run_ensemble(
        model,
        generator=GENERATOR,
        data=GROUPS,
        replicates=args.replicates,
        seed=args.seed,
        engine="cmdstanpy",
        store=args.store,
        out=args.store / "reports" / model.stem,
        no_progress=True,
    )
    assert isinstance(report, EnsembleReport)
    print(f"  {model.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    summary = report.summary
    return report.ensemble_id, summary["fit_seconds_total"] / max(summary["replicates"]["succeeded"], 1)


def judged(ensemble_id: str, store: Path, verdict: str) -> dict:
    return load_ensemble(ensemble_id, store, verdict=verdict).summary


def describe(summary: dict) -> str:
    """The verdict and the p-values it rests on, in one line."""
    test = summary["uniformity_test"]
    verdict = {None: "UNDETERMINED", True: "calibrated", False: "NOT CALIBRATED"}[summary["calibrated"]]
    family = f"{verdict:<15}family {test['family_size']:>3} at {test['family_level']:g}"
    if test["verdict"] == "per-variable":
        tests = {t["name"]: t for t in summary["variable_tests"]}
        z = tests["z"]
        return (
            f"{family}; z: p = {z['p_value']:.2g} (Cauchy {z['cauchy_p_value']:.2g}, pooled "
            f"{z['pooled_p_value']:.2g}); mu p = {tests['mu']['p_value']:.2g}, tau p = {tests['tau']['p_value']:.2g}"
        )
    elements = {name: q for name, q in summary["variables"].items() if name.startswith("z[")}
    worst = min(elements, key=lambda name: elements[name]["p_value"])
    flagged = sum(q["calibrated"] is False for q in summary["variables"].values())
    threshold = test["family_level"] / test["family_size"]
    return (
        f"{family}; smallest element p = {elements[worst]['p_value']:.2g} ({worst}) against Holm's first "
        f"threshold {threshold:.2g}; {flagged} flagged"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--scale", type=float, default=1.2, help="the buggy model's prior sd of every z[j]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", type=Path, default=Path("/tmp/stanfleet-verdict-real-fits"))
    args = parser.parse_args(argv)
    versions = {
        "correct model": MODEL,
        f"bug: z ~ normal(0, {args.scale:g})": buggy_model(args.store / "models", args.scale),
    }
    print(
        f"fitting R = {args.replicates} replicates per version with CmdStan (seed {args.seed})",
        file=sys.stderr,
    )
    ids = {label: fitted(model, args) for label, model in versions.items()}
    print(
        f"Per-variable vs per-element verdict, wide_noncentered (mu, tau, z[1..100]), R = {args.replicates}, "
        f"CmdStan, seed {args.seed}"
    )
    for label, (ensemble_id, seconds) in ids.items():
        print(f"{label} (ensemble {ensemble_id[:8]}, {seconds:.2f} s per fit):")
        for verdict in ("per-variable", "per-element"):
            print(f"  {verdict:<13} {describe(judged(ensemble_id, args.store, verdict))}")


if __name__ == "__main__":
    main()
