"""Watch for the two-minute notice EC2 gives before it reclaims a spot instance.

ECS does not stop a Batch job's container on that notice (spot draining stops service tasks only), so
the worker asks the instance metadata service itself, every few seconds, as AWS advises: once
``spot/instance-action`` answers, the worker writes the results it holds and then each new one at once,
so the reclaim costs at most the fit in flight. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

METADATA_ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
"""botocore's setting for the metadata service's address; tests point it at a local server."""
DEFAULT_METADATA_ENDPOINT = "http://169.254.169.254"
POLL_SECONDS = 5.0
"""How often the notice is looked for: AWS advises every 5 seconds."""
REQUEST_TIMEOUT_SECONDS = 1.0
TOKEN_TTL_SECONDS = 21600


def metadata_endpoint(environment: Mapping[str, str]) -> str | None:
    """The metadata service's address, or None where botocore is told not to use it."""
    if environment.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    return environment.get(METADATA_ENDPOINT_VARIABLE, DEFAULT_METADATA_ENDPOINT).rstrip("/")


def interruption_notice(endpoint: str) -> dict[str, str] | None:
    """The pending interruption (``{"action": "terminate", "time": ...}``), or None if there is none.

    Uses IMDSv2 (a session token first). Raises OSError where no metadata service answers.
    """
    token_request = urllib.request.Request(
        f"{endpoint}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
    )
    with urllib.request.urlopen(token_request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        token = response.read().decode()
    notice_request = urllib.request.Request(
        f"{endpoint}/latest/meta-data/spot/instance-action", headers={"X-aws-ec2-metadata-token": token}
    )
    try:
        with urllib.request.urlopen(notice_request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            notice: dict[str, str] = json.loads(response.read())
            return notice
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # no interruption scheduled
            return None
        raise


def watch_for_interruption(
    on_notice: Callable[[dict[str, str]], None],
    environment: Mapping[str, str] = os.environ,
    poll_seconds: float = POLL_SECONDS,
) -> threading.Thread | None:
    """Call ``on_notice`` (once, on a daemon thread) when the instance gets its interruption notice.

    Watches only inside an AWS Batch job (``AWS_BATCH_JOB_ID`` set) whose metadata service answers the
    first time (else the thread ends: not on EC2); a later error (a timeout on a busy instance) is
    retried at the next poll. Returns the thread, if any.
    """
    endpoint = metadata_endpoint(environment)
    if endpoint is None or "AWS_BATCH_JOB_ID" not in environment:
        return None

    def watch() -> None:
        first = True
        while True:
            try:
                notice = interruption_notice(endpoint)
            except (OSError, ValueError) as exc:
                if first:  # no metadata service: not on EC2
                    print(f"not watching for a spot interruption notice: {exc}", file=sys.stderr, flush=True)
                    return
                print(f"spot interruption notice unread, asking again: {exc}", file=sys.stderr, flush=True)
                notice = None
            first = False
            if notice is not None:
                print(f"spot interruption notice: {notice}", file=sys.stderr, flush=True)
                on_notice(notice)
                return
            time.sleep(poll_seconds)

    thread = threading.Thread(target=watch, name="spot-notice", daemon=True)
    thread.start()
    return thread
