"""What a Stan program declares, read with ``stanc --info`` (no C++ build needed)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from runtime.errors import StanFleetError

_STANC_NAME = "stanc.exe" if os.name == "nt" else "stanc"


@dataclass(frozen=True)
class Declaration:
    """One declared variable: its base type (``"int"``, ``"real"``, ...) and number of dimensions."""

    type: str
    ndims: int


@dataclass(frozen=True)
class ModelInfo:
    """The variables a Stan program declares, block by block, in declaration order."""

    inputs: dict[str, Declaration]
    parameters: dict[str, Declaration]
    transformed_parameters: dict[str, Declaration]
    generated_quantities: dict[str, Declaration]
    uses_rng: bool = False
    """Whether the program calls a random-number function (``*_rng``) anywhere."""


def cmdstan_home() -> Path | None:
    """Return the CmdStan installation cmdstanpy finds, or None when there is none.

    cmdstanpy looks at ``$CMDSTAN``, else under ``~/.cmdstan``; when neither is there, the answer is
    None without importing cmdstanpy (with pandas, most of a second in every worker).
    """
    if not os.environ.get("CMDSTAN") and not (Path.home() / ".cmdstan").exists():
        return None
    try:
        import cmdstanpy
    except ImportError:
        return None
    try:
        return Path(cmdstanpy.cmdstan_path())
    except ValueError:  # cmdstanpy's way of saying "no (valid) CmdStan installation"
        return None


def find_stanc() -> Path:
    """Return a stanc binary: CmdStan's when installed, else the one packaged with httpstan (PyStan)."""
    home = cmdstan_home()
    if home is not None and (home / "bin" / _STANC_NAME).is_file():
        return home / "bin" / _STANC_NAME
    spec = importlib.util.find_spec("httpstan")
    if spec is not None and spec.origin is not None:
        packaged = Path(spec.origin).parent / _STANC_NAME
        if packaged.is_file():
            return packaged
    raise StanFleetError(
        "no stanc compiler found: install CmdStan (python -m cmdstanpy.install_cmdstan) "
        "or PyStan (pip install pystan)"
    )


def read_model_info(stan_file: Path) -> ModelInfo:
    """Return the declarations of ``stan_file``, running ``stanc --info`` once per file content.

    Raises
    ------
    StanFleetError
        When the file is missing or does not compile (the message carries stanc's own).
    """
    try:
        content = stan_file.read_bytes()
    except OSError as exc:
        raise StanFleetError(f"{stan_file}: cannot read the Stan program ({exc.strerror})") from None
    return _model_info(stan_file.resolve(), hashlib.sha256(content).hexdigest())


@lru_cache(maxsize=64)
def _model_info(stan_file: Path, content_sha256: str) -> ModelInfo:
    # content_sha256 only keys the cache: an edited file is read again.
    completed = subprocess.run(
        [str(find_stanc()), "--info", str(stan_file)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = completed.stderr or completed.stdout
        message = "\n".join(line for line in output.strip().splitlines() if line.strip())
        raise StanFleetError(f"{stan_file.name} does not compile: {message}")
    raw = json.loads(completed.stdout)
    return ModelInfo(
        inputs=_declarations(raw.get("inputs", {})),
        parameters=_declarations(raw.get("parameters", {})),
        transformed_parameters=_declarations(raw.get("transformed parameters", {})),
        generated_quantities=_declarations(raw.get("generated quantities", {})),
        uses_rng=any(str(function).endswith("_rng") for function in raw.get("functions", [])),
    )


def _declarations(block: dict[str, Any]) -> dict[str, Declaration]:
    return {name: Declaration(type=str(d["type"]), ndims=int(d["dimensions"])) for name, d in block.items()}
