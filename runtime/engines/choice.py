"""Which engine fits: ``auto`` resolves to CmdStanPy where CmdStan is installed, else PyStan.

Engine modules are imported lazily: importing this module loads neither PyStan nor cmdstanpy.
"""

from __future__ import annotations

from runtime.engines.base import Engine
from runtime.errors import StanFleetError
from runtime.model.stan_info import cmdstan_home

ENGINE_NAMES = ("auto", "cmdstanpy", "pystan")


def cmdstan_available() -> bool:
    """Return whether cmdstanpy is installed and finds a CmdStan installation."""
    return cmdstan_home() is not None


def resolve_engine_name(name: str) -> str:
    """Map ``"auto"`` to ``"cmdstanpy"`` when CmdStan is installed, else ``"pystan"``; check other names."""
    if name not in ENGINE_NAMES:
        raise StanFleetError(f"--engine must be one of {', '.join(ENGINE_NAMES)}, got {name!r}")
    if name == "auto":
        return "cmdstanpy" if cmdstan_available() else "pystan"
    return name


def require_engine(name: str) -> str:
    """Resolve ``name`` and check, without importing it, that the engine can run here (CmdStan found)."""
    resolved = resolve_engine_name(name)
    if resolved == "cmdstanpy" and not cmdstan_available():
        raise StanFleetError(
            "--engine cmdstanpy needs CmdStan, which is not installed: run "
            "`python -m cmdstanpy.install_cmdstan` or use --engine pystan"
        )
    return resolved


def get_engine(name: str, *, cores: int = 1) -> Engine:
    """Return the engine called ``name`` (``"auto"`` resolved first); a missing engine is a clear error.

    ``cores`` is how many cores one fit may use: CmdStanPy runs that many chains at once (PyStan's
    httpstan pool sizes itself).
    """
    resolved = require_engine(name)
    try:
        if resolved == "pystan":
            from runtime.engines.pystan_engine import PyStanEngine

            return PyStanEngine()
        from runtime.engines.cmdstanpy_engine import CmdStanPyEngine

        return CmdStanPyEngine(cores=cores)
    except ImportError as exc:
        raise StanFleetError(
            f"engine {resolved} is not installed here ({exc}): pip install {resolved}"
        ) from None
