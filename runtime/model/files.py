"""Local copies of Stan programs carried inside an ensemble spec."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def cache_root() -> Path:
    """StanFleet's local cache directory: ``$STANFLEET_CACHE_DIR`` or ``~/.cache/stanfleet``."""
    return Path(os.environ.get("STANFLEET_CACHE_DIR", "~/.cache/stanfleet")).expanduser()


def materialize_stan_program(code: str, name: str) -> Path:
    """Write ``code`` to ``<cache>/programs/<sha>/<name>.stan`` once and return the path.

    The same text always maps to the same file, so engines' compile caches keep hitting.
    """
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    safe_name = re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"
    path = cache_root() / "programs" / digest / f"{safe_name}.stan"
    if not path.is_file() or path.read_text() != code:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(code)
        os.replace(tmp, path)
    return path
