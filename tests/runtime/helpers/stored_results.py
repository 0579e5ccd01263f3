"""An ensemble's stored results as comparable records: by replicate, without their timings."""

from __future__ import annotations

import json
from typing import Any

from runtime.ensemble.stored_results import result_keys, result_payloads
from runtime.store.protocol import ObjectStore

TIMINGS = ("sample_seconds", "total_seconds")


def without_timings(result: bytes) -> dict[str, Any]:
    """A result's fields, less the wall-clock ones (the rest is fixed by the seeds)."""
    fields = dict(json.loads(result))
    for name in TIMINGS:
        fields.pop(name)
    return fields


def results_by_replicate(store: ObjectStore, ensemble_id: str, requested: int) -> dict[int, dict[str, Any]]:
    """The results of ``0..requested-1`` in ``store`` as collect reads them (either layout), without
    their timings, by replicate."""
    keys = result_keys(store, ensemble_id, requested)
    results = [without_timings(payload) for payload in result_payloads(store, keys, requested)]
    return {result["replicate"]: result for result in results}
