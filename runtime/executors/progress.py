"""A progress bar for fits in flight that can never fail the run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from runtime.executors.protocol import ProgressCallback


@contextmanager
def progress_reporter(total: int, *, enabled: bool) -> Iterator[ProgressCallback]:
    """Yield a callback taking the number of finished fits and a status; draws a tqdm bar when enabled."""
    bar = None
    if enabled:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="fit", desc="fitting", dynamic_ncols=True)
        except Exception:  # a progress bar must never fail the run
            bar = None

    def update(done: int, detail: str = "") -> None:
        if bar is None:
            return
        with suppress(Exception):  # a progress bar must never fail the run
            if done > bar.n:
                bar.update(done - bar.n)
            if detail and detail != bar.postfix:
                bar.set_postfix_str(detail)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
