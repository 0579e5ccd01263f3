"""The stable key layout of an ensemble in the object store.

::

    datasets/<dataset id>/spec.json             the dataset spec: generator, base data, seed (immutable)
    datasets/<dataset id>/inputs/blocks-<first:05d>-<last:05d>.jsonl
                                                one input pack: input blocks first..last (each block: the
                                                generator's output for INPUT_BLOCK_SIZE replicates)
    ensembles/<id>/spec.json                    the ensemble spec (immutable once written), naming its dataset
    ensembles/<id>/run.json                     how the submitter ran it (runtime.ensemble.run_record), for collect
    ensembles/<id>/results/<r:06d>.json         one ReplicateResult per replicate, written when done
    ensembles/<id>/results/batch.<ranges>.<writer>.jsonl
                                                a batch of results, one per line in replicate order;
                                                <ranges> lists its replicates (000020-000039_000041).
                                                Readers read both kinds, a replicate in two objects once
    models/compiled/<hash>.json                 a compile job's "done" marker (AWS): later submissions of
                                                the same model to the same job definition skip the compile job
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

DATASETS = "datasets/"
"""``datasets/<dataset id>/spec.json`` and ``inputs/...``: simulated datasets, shared by every ensemble
fitted to them; jobs read only the inputs."""
ENSEMBLES = "ensembles/"
"""``ensembles/<id>/spec.json``, ``run.json`` and ``results/<r>.json``; jobs never read ``run.json``."""
MODELS = "models/"
"""The compiled-model cache: jobs read and write it."""
COMPILED_MARKER_PREFIX = f"{MODELS}compiled/"
"""Compile jobs' markers (:func:`compiled_marker_key`): the trigger checks for one per model."""
MANIFESTS = "manifests/"
"""The submitter uploads ``manifests/<id>.json`` here (:func:`manifest_key`); an upload fires the trigger."""
MANIFEST_SUFFIX = ".json"
CLAIMS = "claims/"
"""The trigger's claim markers (:func:`claim_key`), which double as the array plans jobs read, and its
per-ensemble leases."""

INPUT_BLOCK_SIZE = 100
"""Replicates per input block. Fixed, so replicate r's inputs never depend on the ensemble size."""


def ensemble_prefix(ensemble_id: str) -> str:
    """Prefix of every object of one ensemble."""
    return f"{ENSEMBLES}{ensemble_id}/"


def spec_key(ensemble_id: str) -> str:
    """Key of the ensemble spec."""
    return f"{ensemble_prefix(ensemble_id)}spec.json"


def block_of(replicate: int) -> int:
    """Index of the input block holding ``replicate``."""
    return replicate // INPUT_BLOCK_SIZE


def block_replicates(block: int) -> range:
    """The replicates an input block holds."""
    return range(block * INPUT_BLOCK_SIZE, (block + 1) * INPUT_BLOCK_SIZE)


def dataset_prefix(dataset_id: str) -> str:
    """Prefix of every object of one dataset set."""
    return f"{DATASETS}{dataset_id}/"


def dataset_spec_key(dataset_id: str) -> str:
    """Key of the dataset spec."""
    return f"{dataset_prefix(dataset_id)}spec.json"


def reference_fit_key(dataset_id: str) -> str:
    """Key of posterior SBC's reference fit record (its diagnostics and thinning)."""
    return f"{dataset_prefix(dataset_id)}reference/fit.json"


def reference_draws_key(dataset_id: str) -> str:
    """Key of posterior SBC's reference fit draws (a compressed NumPy archive)."""
    return f"{dataset_prefix(dataset_id)}reference/draws.npz"


def inputs_prefix(dataset_id: str) -> str:
    """Prefix of every input pack of one dataset set."""
    return f"{dataset_prefix(dataset_id)}inputs/"


def inputs_pack_key(dataset_id: str, blocks: range) -> str:
    """Key of the input pack holding the consecutive input blocks ``blocks`` of a dataset set."""
    return f"{inputs_prefix(dataset_id)}blocks-{blocks.start:05d}-{blocks.stop - 1:05d}.jsonl"


def blocks_of_inputs_pack_key(key: str) -> range | None:
    """Inverse of :func:`inputs_pack_key` for the blocks; None for a key that is not an input pack."""
    name = key.rsplit("/", 1)[1]
    if not (name.startswith("blocks-") and name.endswith(".jsonl")):
        return None
    first, _, last = name.removeprefix("blocks-").removesuffix(".jsonl").partition("-")
    try:
        return range(int(first), int(last) + 1)
    except ValueError:
        return None


def results_prefix(ensemble_id: str) -> str:
    """Prefix of every result of one ensemble."""
    return f"{ensemble_prefix(ensemble_id)}results/"


def result_key(ensemble_id: str, replicate: int) -> str:
    """Key of one replicate's result, an object of its own."""
    return f"{results_prefix(ensemble_id)}{replicate:06d}.json"


RESULT_BATCH_PREFIX = "batch."
RESULT_BATCH_SUFFIX = ".jsonl"


MAX_RUNS_PER_BATCH_KEY = 12
"""Runs of consecutive replicates one batch key may name. It keeps the name, and a local store's temporary
file name for it, well under the 255 bytes a file name may have: a worker's batch of scattered replicates
(fast fits handed out in turn to several workers) is written as several objects."""


def result_batch_groups(replicates: Sequence[int]) -> list[list[int]]:
    """Ascending ``replicates`` in consecutive groups whose batch keys name at most MAX_RUNS_PER_BATCH_KEY runs."""
    groups: list[list[int]] = []
    runs = 0
    for position, replicate in enumerate(replicates):
        if position == 0 or replicate > replicates[position - 1] + 1:  # a run starts
            if not groups or runs == MAX_RUNS_PER_BATCH_KEY:
                groups.append([])
                runs = 0
            runs += 1
        groups[-1].append(replicate)
    return groups


def result_batch_key(ensemble_id: str, replicates: Sequence[int], writer: str) -> str:
    """Key of a batch of results written as one object: one result's JSON per line, in replicate order.

    The name lists the replicates as ranges (``batch.000020-000039_000041.<writer>.jsonl``), so that a
    listing alone says which replicates have a result; ``writer`` (letters and digits) keeps apart the
    batches of two writers of the same replicates.
    """
    ordered = sorted(set(replicates))
    if not ordered or not writer.isalnum():
        raise ValueError(f"a batch needs replicates and an alphanumeric writer, got {ordered!r}, {writer!r}")
    runs: list[list[int]] = []
    for replicate in ordered:
        if runs and replicate == runs[-1][1] + 1:
            runs[-1][1] = replicate
        else:
            runs.append([replicate, replicate])
    if len(runs) > MAX_RUNS_PER_BATCH_KEY:
        raise ValueError(f"a batch key names at most {MAX_RUNS_PER_BATCH_KEY} runs, got {len(runs)}")
    ranges = "_".join(f"{a:06d}" if a == b else f"{a:06d}-{b:06d}" for a, b in runs)
    return f"{results_prefix(ensemble_id)}{RESULT_BATCH_PREFIX}{ranges}.{writer}{RESULT_BATCH_SUFFIX}"


def is_result_batch_key(key: str) -> bool:
    """Whether the key is a batch of results (:func:`result_batch_key`), not one result."""
    return key.rsplit("/", 1)[-1].startswith(RESULT_BATCH_PREFIX)


def replicates_of_result_key(key: str) -> list[int]:
    """The replicates whose results the object at ``key`` holds, ascending (one for :func:`result_key`)."""
    name = key.rsplit("/", 1)[-1]
    if not name.startswith(RESULT_BATCH_PREFIX):
        return [int(name.removesuffix(".json"))]
    ranges = name.removeprefix(RESULT_BATCH_PREFIX).removesuffix(RESULT_BATCH_SUFFIX).rpartition(".")[0]
    replicates: list[int] = []
    for part in ranges.split("_"):
        first, _, last = part.partition("-")
        replicates.extend(range(int(first), int(last or first) + 1))
    return replicates


def retried_failure_key(ensemble_id: str, replicate: int, stamp: str) -> str:
    """Where ``--retry-failed`` keeps a failed result it set aside to refit (``stamp``: when)."""
    return f"{ensemble_prefix(ensemble_id)}retried-failures/{replicate:06d}-{stamp}.json"


def run_key(ensemble_id: str) -> str:
    """Key of the submitter's run record (:mod:`runtime.ensemble.run_record`)."""
    return f"{ensemble_prefix(ensemble_id)}run.json"


def compiled_marker_key(fit_job_definition: str, engine: str, model_code: str) -> str:
    """Key of the marker a compile job writes once the model's build is published for that job definition.

    The fit job definition's ARN carries its revision, which changes with the worker image (and so
    with CmdStan): a new image misses the marker and compiles again.
    """
    identity = "\0".join((fit_job_definition, engine, model_code))
    return f"{COMPILED_MARKER_PREFIX}{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"


def claim_key(ensemble_id: str, upload: str, prefix: str) -> str:
    """Key of the claim (and array plan) of one manifest upload, named by its version id or ETag.

    The submitter computes the same key from its PutObject response to find the job ids, so both
    sides must go through this function: version ids may hold ``/`` and ``+``, which become ``_``.
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in upload)
    return f"{prefix}{ensemble_id}/{safe}.json"


def manifest_key(ensemble_id: str) -> str:
    """Where the submitter uploads an ensemble's manifest (the trigger watches this prefix)."""
    return f"{MANIFESTS}{ensemble_id}{MANIFEST_SUFFIX}"
