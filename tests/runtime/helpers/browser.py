"""Headless Chromium for the tests of pages the product writes (Debian's ``chromium`` package)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)"
)
"""Skips a test that opens a page in a real browser where Chromium is absent."""


def dump_dom(page: Path, profile: Path, timeout: float = 60.0, fragment: str = "") -> str:
    """The DOM of ``page`` after its load event (and the scripts it ran), as headless Chromium serializes it.

    ``fragment`` (``#...``) is appended to the page's address, for pages that read a view from it.

    Chromium runs in its own process group with a throwaway profile under ``profile``; the whole group is
    killed afterwards, so no renderer or zygote outlives the test.
    """
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.resolve().as_uri() + fragment,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, text=True
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"chromium exited {process.returncode} on {page}")
    return out
