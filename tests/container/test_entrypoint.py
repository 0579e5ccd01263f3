"""The worker image's entrypoint command, run outside the image.

The command is read from container/Dockerfile's ENTRYPOINT (``python`` becomes this interpreter) and
given the job definitions' arguments (stacks/compute.py: the compile job, then each array child), from a working directory laid out as the image's WORKDIR: only
the files the Dockerfile COPYs out of the build context the root .dockerignore admits. The ensemble is
published by the real CLI into a local directory store. Here the spec's engine is whatever ``auto``
picks on this machine (PyStan without CmdStan); in the image it is CmdStanPy.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.ensemble.stored_results import stored_objects
from runtime.store.keys import replicates_of_result_key, result_key, results_prefix
from runtime.store.local import LocalDirectoryStore
from stacks.compute import COMPILE_COMMAND, FIT_COMMAND
from tests.container.dockerfile import ROOT, build_context, copy_sources, dockerfile, variables_before

SUBMIT = [
    "-m",
    "runtime.submit",
    "examples/poisson/fit_data.stan",
    "--generator",
    "examples/poisson/generative_ensemble.stan",
    "--data",
    "examples/poisson/data.json",
    "--replicates",
    "2",
    "--chains",
    "2",
    "--warmup",
    "200",
    "--samples",
    "200",
    "--no-progress",
]
TIMINGS = ("sample_seconds", "total_seconds")


def image_workdir(tmp_path: Path) -> Path:
    """A directory holding what the image's WORKDIR holds: each COPY applied to the build context."""
    instructions = dockerfile()
    context = build_context()
    workdir = tmp_path / "workdir"
    for copy in (instruction for instruction in instructions if instruction.keyword == "COPY"):
        sources, destination = copy_sources(copy)
        for source in sources:
            if source.endswith("/"):
                files = {path: path.removeprefix(source) for path in context if path.startswith(source)}
            else:
                files = {source: Path(source).name} if source in context else {}
            assert files, f"line {copy.line}: COPY {source} finds nothing in the build context"
            for path, name in files.items():
                target = workdir / destination / name if destination.endswith("/") else workdir / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / path, target)
    return workdir


def entrypoint_environment(workdir: Path) -> dict[str, str]:
    """This environment with the image's PYTHONPATH (its WORKDIR) pointing at the local copy instead."""
    instructions = dockerfile()
    entrypoint = next(i for i in instructions if i.keyword == "ENTRYPOINT")
    image_workdir_path = next(i for i in instructions if i.keyword == "WORKDIR").value
    image_pythonpath = variables_before(instructions, instructions.index(entrypoint))["PYTHONPATH"]
    assert image_pythonpath == image_workdir_path
    return {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}


def entrypoint_command() -> list[str]:
    """The image's ENTRYPOINT, run with this interpreter (the image's ``python`` is on its PATH)."""
    entrypoint = next(i for i in dockerfile() if i.keyword == "ENTRYPOINT").exec_form()
    assert entrypoint[0] == "python"
    return [sys.executable, *entrypoint[1:]]


def job_arguments(command: list[str], parameters: dict[str, str]) -> list[str]:
    """A job definition's command with Batch's ``Ref::name`` parameters filled in."""
    return [parameters[word.removeprefix("Ref::")] if word.startswith("Ref::") else word for word in command]


def run_entrypoint(
    workdir: Path, command: list[str], parameters: dict[str, str], environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The image's entrypoint with a job definition's arguments, from the image-like working directory."""
    return subprocess.run(
        [*entrypoint_command(), *job_arguments(command, parameters)],
        cwd=workdir,
        env={**entrypoint_environment(workdir), **(environment or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def without_timings(payload: bytes) -> dict[str, object]:
    result = json.loads(payload)
    for name in TIMINGS:
        result.pop(name)
    return result


@pytest.mark.slow
def test_the_entrypoint_refits_a_missing_result_of_a_published_ensemble(tmp_path: Path) -> None:
    store = tmp_path / "store"
    published = subprocess.run(
        [sys.executable, *SUBMIT, "--store", str(store), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    (ensemble,) = (store / "ensembles").iterdir()
    # Replicate 0's result kept as the versions before batches stored it, replicate 1's lost.
    objects = LocalDirectoryStore(store)
    keys = list(objects.list_keys(results_prefix(ensemble.name)))
    before = dict(result for _, results in stored_objects(objects, keys) for result in results)
    for key in keys:
        objects.delete(key)
    objects.put(result_key(ensemble.name, 0), before[0])

    workdir = image_workdir(tmp_path)
    store.joinpath("claims").mkdir()
    store.joinpath("claims", "plan.json").write_text(
        json.dumps({"replicates_per_child": 1, "missing": [0, 1]})
    )
    parameters = {
        "store": str(store),
        "ensemble_id": ensemble.name,
        "plan": "claims/plan.json",
        "compiled_marker": "models/compiled/marker.json",
    }
    compiled = run_entrypoint(workdir, COMPILE_COMMAND, parameters)
    assert compiled.returncode == 0, compiled.stderr
    assert store.joinpath("models", "compiled", "marker.json").is_file()
    for child in ("0", "1"):  # the array's two children, as Batch starts them
        worker = run_entrypoint(workdir, FIT_COMMAND, parameters, {"AWS_BATCH_JOB_ARRAY_INDEX": child})
        assert worker.returncode == 0, worker.stderr
    kept, written = sorted(objects.list_keys(results_prefix(ensemble.name)))
    assert objects.get(kept) == before[0]  # an existing result is skipped, not refitted
    assert replicates_of_result_key(written) == [1], "the worker did not write the missing result"
    # Same seed for the same ensemble and replicate: the refit matches the lost result.
    assert without_timings(objects.get(written)) == without_timings(before[1])


def test_the_entrypoint_reports_an_unknown_ensemble(tmp_path: Path) -> None:
    parameters = {
        "store": str(tmp_path / "store"),
        "ensemble_id": "0" * 20,
        "plan": "claims/plan.json",
        "compiled_marker": "models/compiled/marker.json",
    }
    worker = run_entrypoint(image_workdir(tmp_path), COMPILE_COMMAND, parameters)
    assert worker.returncode == 1
    assert f"error: ensemble {'0' * 20} is not in the store" in worker.stderr
