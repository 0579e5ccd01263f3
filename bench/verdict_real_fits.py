"""Per-variable against per-element verdicts on real CmdStan fits of 100-group models (issue 20).

Each case fits a correct model and the same model with a small bug in every group to the same R
datasets from the correct model's generator (100 groups of three observations, ``wide_noncentered.json``):

* ``hierarchical``: the non-centered model ``tests/data/wide_noncentered.stan`` (``mu``, ``tau``,
  ``z[1..100]``); the bug is ``z ~ normal(0, 1.2)`` instead of ``std_normal()`` (every group's prior a
  little too wide). ``tau`` absorbs part of it (it shrinks), so both verdicts flag the model through
  ``tau``; only the per-variable verdict sees ``z`` itself.
* ``groups``: ``bench/models/groups.stan``, 100 groups with no parameter in common (``theta[j] ~
  normal(0, 1)``); the bug is ``theta ~ normal(0.2, 1)`` (every group's prior mean off by 0.2, which
  shifts each posterior by about a tenth of its sd). Nothing else can absorb it.

Each ensemble is judged both ways from the same stored fits (``load_ensemble(..., verdict=...)``); the
script prints, per case, version and verdict: the verdict, the Holm family's size, and the p-values
that decide it (per variable: each variable's p-value, with its Cauchy and pooled parts; per element:
each variable's smallest element p-value against Holm's first threshold). Fits are kept in ``--store``
(default /tmp/stanfleet-verdict-real-fits), so a rerun judges again without refitting.

    CMDSTAN=... .venv/bin/python bench/verdict_real_fits.py [--replicates 100] [--seed 1] [--case groups]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.api import load_ensemble, run_ensemble  # noqa: E402
from runtime.report.ensemble_report import EnsembleReport  # noqa: E402
from runtime.sbc.combination import variable_name  # noqa: E402

DATA = ROOT / "tests" / "data"
GROUPS = DATA / "wide_noncentered.json"


@dataclass(frozen=True)
class Case:
    """A correct model, its generator, and the line whose replacement is the bug."""

    name: str
    model: Path
    generator: Path
    correct: str
    bug: str

    def buggy_model(self, directory: Path) -> Path:
        """The model with the bug, written once into ``directory``."""
        source = self.model.read_text()
        if self.correct not in source:
            raise SystemExit(f"{self.model} no longer says {self.correct!r}: update this bench")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.model.stem}_bug.stan"
        text = source.replace(self.correct, f"{self.bug}  // the bug: the generator draws {self.correct}")
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path


CASES = (
    Case(
        "hierarchical",
        DATA / "wide_noncentered.stan",
        DATA / "wide_noncentered_generator.stan",
        "z ~ std_normal();",
        "z ~ normal(0, 1.2);",
    ),
    Case(
        "groups",
        ROOT / "bench" / "models" / "groups.stan",
        ROOT / "bench" / "models" / "groups_generator.stan",
        "theta ~ std_normal();",
        "theta ~ normal(0.2, 1);",
    ),
)


def fitted(model: Path, generator: Path, args: argparse.Namespace) -> tuple[str, float]:
    """The ensemble's id and its sampling seconds per fit (fits only what the store does not hold yet)."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own verdict table: judged below
        report = run_ensemble(
            model,
            generator=generator,
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


def describe(summary: dict[str, Any]) -> str:
    """The verdict and the p-values it rests on, in one line."""
    test = summary["uniformity_test"]
    verdict = {None: "UNDETERMINED", True: "calibrated", False: "NOT CALIBRATED"}[summary["calibrated"]]
    head = f"{verdict:<15}(family {test['family_size']:>3} at {test['family_level']:g})"
    if test["verdict"] == "per-variable":
        parts = []
        for t in summary["variable_tests"]:
            flag = " NO" if t["calibrated"] is False else ""
            combined = ""
            if t["elements"] > 1:
                combined = f" (Cauchy {t['cauchy_p_value']:.2g}, pooled {t['pooled_p_value']:.2g})"
            parts.append(f"{t['name']} p = {t['p_value']:.2g}{combined}{flag}")
        return f"{head}: {'; '.join(parts)}"
    threshold = test["family_level"] / test["family_size"]
    smallest: dict[str, tuple[float, str]] = {}
    for name, q in summary["variables"].items():
        variable = variable_name(name)
        smallest[variable] = min(smallest.get(variable, (2.0, "")), (q["p_value"], name))
    flagged = [name for name, q in summary["variables"].items() if q["calibrated"] is False]
    parts = [f"{variable} min p = {p:.2g} ({name})" for variable, (p, name) in smallest.items()]
    return f"{head}: Holm's first threshold {threshold:.2g}; {'; '.join(parts)}; flagged: {', '.join(flagged) or 'none'}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case", choices=[case.name for case in CASES], action="append")
    parser.add_argument("--store", type=Path, default=Path("/tmp/stanfleet-verdict-real-fits"))
    args = parser.parse_args(argv)
    cases = [case for case in CASES if args.case is None or case.name in args.case]
    print(
        f"Per-variable vs per-element verdicts, R = {args.replicates}, CmdStan, seed {args.seed}, level 0.01"
    )
    for case in cases:
        versions = {"correct": case.model, f"bug: {case.bug}": case.buggy_model(args.store / "models")}
        print(f"\n{case.name} ({case.model.name}, 100 groups):")
        for label, model in versions.items():
            ensemble_id, seconds = fitted(model, case.generator, args)
            print(f"  {label} (ensemble {ensemble_id[:8]}, {seconds:.2f} s per fit)")
            for verdict in ("per-variable", "per-element"):
                summary = load_ensemble(ensemble_id, args.store, verdict=verdict).summary
                print(f"    {verdict:<13} {describe(summary)}")


if __name__ == "__main__":
    main()
