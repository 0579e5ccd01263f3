"""The spot interruption watcher against a fake metadata service (a real HTTP server on this machine)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runtime.aws.spot_notice import (
    DEFAULT_METADATA_ENDPOINT,
    METADATA_ENDPOINT_VARIABLE,
    interruption_notice,
    metadata_endpoint,
    watch_for_interruption,
)
from tests.runtime.helpers.fake_imds import FakeImds, running_fake_imds, unreachable_endpoint

POLL = 0.01
"""The watcher's poll interval here (the worker's is 5 s)."""


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    with running_fake_imds() as server:
        yield server


def in_batch_job(endpoint: str) -> dict[str, str]:
    """The environment of a Batch job whose metadata service is at ``endpoint``."""
    return {"AWS_BATCH_JOB_ID": "job-1", METADATA_ENDPOINT_VARIABLE: endpoint}


class Notices:
    """A callback that records each notice it is given."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

    def __call__(self, notice: dict[str, str]) -> None:
        self.received.append(notice)


def ended(thread: threading.Thread | None, timeout: float = 10) -> bool:
    assert thread is not None
    thread.join(timeout)
    return not thread.is_alive()


def test_no_interruption_scheduled_is_none(imds: FakeImds) -> None:
    assert interruption_notice(imds.endpoint) is None
    assert imds.polls == 1


def test_a_scheduled_interruption_is_its_notice(imds: FakeImds) -> None:
    announced = imds.announce_interruption()
    assert interruption_notice(imds.endpoint) == announced
    assert announced["action"] == "terminate"


def test_the_watcher_calls_back_once_when_the_notice_comes_then_ends(imds: FakeImds) -> None:
    notices = Notices()
    watcher = watch_for_interruption(notices, in_batch_job(imds.endpoint), poll_seconds=POLL)
    assert watcher is not None and watcher.daemon
    imds.wait_for_polls(3)  # polled, nothing announced yet
    assert notices.received == []
    announced = imds.announce_interruption()
    assert ended(watcher)  # no more polls once the notice was seen
    assert notices.received == [announced]


def test_the_watcher_asks_again_after_an_error_once_the_service_has_answered(
    imds: FakeImds, capsys: pytest.CaptureFixture[str]
) -> None:
    notices = Notices()
    watcher = watch_for_interruption(notices, in_batch_job(imds.endpoint), poll_seconds=POLL)
    imds.wait_for_polls(1)
    imds.fail_next(2)  # a busy instance: the watch goes on
    imds.wait_for_polls(4)
    announced = imds.announce_interruption()
    assert ended(watcher)
    assert notices.received == [announced]
    assert capsys.readouterr().err.count("spot interruption notice unread, asking again: ") == 2


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({}, id="not-in-a-batch-job"),
        pytest.param({"AWS_BATCH_JOB_ID": "job-1", "AWS_EC2_METADATA_DISABLED": "true"}, id="disabled"),
        pytest.param({"AWS_BATCH_JOB_ID": "job-1", "AWS_EC2_METADATA_DISABLED": "TRUE"}, id="disabled-caps"),
    ],
)
def test_no_watcher_outside_a_batch_job_or_with_the_metadata_service_disabled(
    imds: FakeImds, environment: dict[str, str]
) -> None:
    threads = threading.active_count()
    notices = Notices()
    assert watch_for_interruption(notices, {METADATA_ENDPOINT_VARIABLE: imds.endpoint, **environment}) is None
    assert threading.active_count() == threads
    assert imds.polls == 0


def test_the_watcher_ends_quietly_where_no_metadata_service_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    notices = Notices()
    watcher = watch_for_interruption(notices, in_batch_job(unreachable_endpoint()), poll_seconds=POLL)
    assert ended(watcher)
    assert notices.received == []
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("not watching for a spot interruption notice: ")


def test_the_endpoint_comes_from_the_environment_like_botocore() -> None:
    assert metadata_endpoint({}) == DEFAULT_METADATA_ENDPOINT
    assert (
        metadata_endpoint({METADATA_ENDPOINT_VARIABLE: "http://127.0.0.1:8080/"}) == "http://127.0.0.1:8080"
    )
    assert metadata_endpoint({"AWS_EC2_METADATA_DISABLED": "false"}) == DEFAULT_METADATA_ENDPOINT
    assert metadata_endpoint({"AWS_EC2_METADATA_DISABLED": "true"}) is None
