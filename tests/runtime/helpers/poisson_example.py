"""The bundled Poisson example on the submitter's command line, and sampler settings that keep fits quick."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "poisson"
MODEL = str(EXAMPLE / "fit_data.stan")
GENERATOR = str(EXAMPLE / "generative_ensemble.stan")
DATA = str(EXAMPLE / "data.json")
QUICK_SAMPLER = ["--chains", "2", "--warmup", "300", "--samples", "300", "--thin", "3"]
"""Sampler flags for real fits that stay short (thinned to 200 draws)."""


def example_arguments(model: str = MODEL, generator: str = GENERATOR, data: str = DATA) -> list[str]:
    """The submitter's model, ``--generator`` and ``--data`` arguments; the example's by default."""
    return [model, "--generator", generator, "--data", data]


def submit_command(*arguments: str) -> list[str]:
    """``python -m runtime.submit`` on the bundled example, followed by ``arguments``."""
    return [sys.executable, "-m", "runtime.submit", *example_arguments(), *arguments]
