"""What a report says about the datasets' origin: prior SBC, or posterior SBC with its reference fit.

Posterior SBC's run record (:mod:`runtime.ensemble.run_record`) carries the observed data's path, the
``--predictive`` pairs, the ``--augment`` hook and the reference fit's record; prior SBC's carries none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.ensemble.reference import ReferenceFit


def posterior_run(run: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The run's posterior SBC section, or None for prior SBC."""
    posterior = run.get("posterior")
    return posterior if isinstance(posterior, Mapping) else None


def conditioning_line(run: Mapping[str, Any]) -> str | None:
    """``posterior SBC, conditional on OBSERVED.json (y_rep appended to y)``; None for prior SBC."""
    posterior = posterior_run(run)
    if posterior is None:
        return None
    pairs = ", ".join(f"{quantity} appended to {data}" for quantity, data in posterior["predictive"].items())
    how = f"; data built by {posterior['augment']}" if posterior.get("augment") else ""
    return f"posterior SBC, conditional on {posterior['observed']} ({pairs}{how})"


def reference_fit(run: Mapping[str, Any]) -> ReferenceFit | None:
    """The reference fit's record, or None for prior SBC."""
    posterior = posterior_run(run)
    return None if posterior is None else ReferenceFit.from_dict(dict(posterior["reference_fit"]))


def reference_lines(run: Mapping[str, Any]) -> list[str]:
    """The terminal's lines on posterior SBC: what it is conditional on, the reference fit, any warning."""
    line, reference = conditioning_line(run), reference_fit(run)
    if line is None or reference is None:
        return []
    lines = [line, f"reference fit: {reference.describe()}"]
    return lines if reference.warning is None else [*lines, reference.warning]
