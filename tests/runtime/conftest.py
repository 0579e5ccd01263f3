"""Fixtures shared by the runtime tests."""

from collections.abc import Iterator

import pytest

from runtime.sbc.results import ReplicateResult
from tests.runtime.helpers.batch_runner import CREDENTIALS
from tests.runtime.helpers.sbc_results import ensemble, uniform_rank
from tests.runtime.helpers.slurm import LocalSlurm, one_node_slurm, require_slurm


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials and region for moto; no profile, region override or endpoint from outside.

    A module's AWS fixture takes this one, then ``with mock_aws(): yield client``.
    """
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def uniform_results() -> list[ReplicateResult]:
    """100 replicates whose ranks are uniform: a calibrated ensemble."""
    return ensemble(100, uniform_rank)


@pytest.fixture
def slurm() -> Iterator[LocalSlurm]:
    """A one-node Slurm cluster on this machine, stopped after the test (skipped where Slurm cannot run)."""
    require_slurm()
    with one_node_slurm() as cluster:
        yield cluster
