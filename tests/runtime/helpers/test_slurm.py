"""The one-node Slurm harness: a batch job runs, Dask workers run as Slurm jobs, nothing is left after."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dask_jobqueue import SLURMCluster
from distributed import Client

from tests.runtime.helpers.slurm import LocalSlurm, one_node_slurm, processes_of, require_slurm

pytestmark = pytest.mark.slow


def squared(number: int) -> int:
    """Run on a worker; pickled by reference, so the worker must import this module from the repo."""
    return number * number


def slurm_job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID")


def test_a_batch_job_runs_and_the_cluster_leaves_nothing_behind(tmp_path: Path) -> None:
    require_slurm()
    written = tmp_path / "written.txt"
    with one_node_slurm() as slurm:
        job = slurm.run(
            "sbatch",
            "--parsable",
            "--wait",
            f"--output={tmp_path}/job-%j.out",
            f"--wrap=echo $SLURM_JOB_ID > {written}",
            timeout=60,
        ).strip()
        assert written.read_text().strip() == job
        assert slurm.job_ids() == []
    assert not slurm.directory.exists()
    assert processes_of(slurm) == {}


def test_dask_workers_run_as_slurm_jobs(
    slurm: LocalSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))  # dask-jobqueue calls sbatch and scancel with ours
    with (
        SLURMCluster(**slurm.dask_workers(tmp_path / "logs", walltime="00:05:00")) as cluster,
        Client(cluster) as client,
    ):
        cluster.scale(2)
        client.wait_for_workers(2, timeout=60)
        assert client.submit(squared, 7).result(timeout=30) == 49
        job_ids = set(client.run(slurm_job_id).values())
        assert job_ids == {job.job_id for job in cluster.workers.values()}
        assert len(job_ids) == 2
        assert set(slurm.job_ids()) == job_ids
    slurm.wait_for_empty_queue()
