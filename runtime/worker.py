"""The fit-and-score worker: fits a share of an ensemble's replicates, one result at a time.

Run as ``python -m runtime.worker --store URI --ensemble-id ID --replicates 0,2,4``. Replicates
that already have a result are skipped, and each result is written the moment it is done, so a killed
worker loses at most the fit in flight.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runtime.engines import get_engine
from runtime.errors import StanFleetError
from runtime.fit_replicate import fit_replicate
from runtime.inputs_store import InputBlockReader
from runtime.keys import result_key, spec_key
from runtime.model_files import materialize_stan_program
from runtime.scoring import LOG_LIK_NAME
from runtime.spec import EnsembleSpec, fit_seed
from runtime.stan_info import read_model_info
from runtime.store import ObjectStore, open_store


def run_worker(store: ObjectStore, ensemble_id: str, replicates: Sequence[int]) -> int:
    """Fit and score every listed replicate that has no result yet; return how many were fitted."""
    try:
        spec = EnsembleSpec.from_json(store.get(spec_key(ensemble_id)))
    except KeyError:
        raise StanFleetError(f"ensemble {ensemble_id} is not in the store {store.uri}") from None
    program = materialize_stan_program(spec.model_code, spec.model_name)
    score_log_lik = LOG_LIK_NAME in read_model_info(program).generated_quantities
    model = get_engine(spec.engine).compile(program)
    inputs = InputBlockReader(store, ensemble_id)
    fitted = 0
    for replicate in replicates:
        key = result_key(ensemble_id, replicate)
        if store.exists(key):
            continue
        result = fit_replicate(
            model,
            inputs.replicate(replicate),
            base_data=spec.base_data,
            settings=spec.settings,
            seed=fit_seed(ensemble_id, replicate),
            engine=spec.engine,
            score_log_lik=score_log_lik,
        )
        store.put(key, result.to_json())
        fitted += 1
    return fitted


def parse_replicates(text: str) -> list[int]:
    """Parse a comma-separated list of replicate numbers and ``a-b`` ranges (inclusive)."""
    replicates: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        replicates.extend(range(int(first), int(last or first) + 1))
    return replicates


def format_replicates(replicates: Sequence[int]) -> str:
    """Inverse of :func:`parse_replicates`, compressing consecutive runs into ranges."""
    parts: list[str] = []
    start = previous = None
    for replicate in [*replicates, None]:
        if previous is not None and replicate == previous + 1:
            previous = replicate
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = replicate
    return ",".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runtime.worker``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="object store holding the ensemble")
    parser.add_argument("--ensemble-id", required=True, help="id of the ensemble to work on")
    parser.add_argument(
        "--replicates", required=True, type=parse_replicates, help="replicates to fit, e.g. 0-99 or 0,2,4"
    )
    args = parser.parse_args(argv)
    try:
        run_worker(open_store(args.store), args.ensemble_id, args.replicates)
    except StanFleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
