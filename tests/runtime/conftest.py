"""Fixtures shared by the runtime tests."""

import pytest

from tests.runtime.helpers.batch_runner import CREDENTIALS


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials and region for moto; no profile, region override or endpoint from outside.

    A module's AWS fixture takes this one, then ``with mock_aws(): yield client``.
    """
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
