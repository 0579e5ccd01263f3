"""Reading the base data file (``--data DATA.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.errors import StanFleetError


def load_base_data(path: Path | None) -> dict[str, Any]:
    """Read a JSON object of Stan data; no file means no base data."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise StanFleetError(f"--data file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StanFleetError(f"cannot read --data file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise StanFleetError(
            f"--data file {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(raw, dict):
        raise StanFleetError(
            f"--data file {path} must hold a JSON object of variable names to values, "
            f"got {type(raw).__name__}"
        )
    return raw
