"""StanFleet runtime: the CLI, the fit-and-score worker, the trigger handler, and the Python API.

``import runtime`` stays light (the Lambda handler and the worker import only what they use): the API
below is imported on first use.

    import runtime
    report = runtime.run_ensemble("model.stan", generator="gen.stan", data="data.json", replicates=100)
    report.calibrated, report.summary, report.replicates, report.figure("coverage")
    runtime.load_ensemble(report.ensemble_id)  # the same report from the stored results
"""

from __future__ import annotations

from typing import Any

__all__ = ["EnsembleReport", "StanFleetError", "SubmittedEnsemble", "load_ensemble", "run_ensemble"]

_HOMES = {
    "run_ensemble": "runtime.api",
    "load_ensemble": "runtime.api",
    "EnsembleReport": "runtime.report.ensemble_report",
    "SubmittedEnsemble": "runtime.report.ensemble_report",
    "StanFleetError": "runtime.errors",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
