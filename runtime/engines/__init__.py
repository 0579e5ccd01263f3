"""Engine choice. Engine modules are imported lazily: importing this package loads neither PyStan nor
cmdstanpy."""

from __future__ import annotations

import re

from runtime.engines.base import Engine
from runtime.errors import StanFleetError
from runtime.stan_info import cmdstan_home

ENGINE_NAMES = ("auto", "cmdstanpy", "pystan")

_STAN_EXCEPTION = "Exception: "
_STAN_LOCATION_OR_QUOTE = re.compile(r" \(in '|`|\"\)")


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


def get_engine(name: str) -> Engine:
    """Return the engine called ``name`` (``"auto"`` resolved first)."""
    resolved = resolve_engine_name(name)
    if resolved == "pystan":
        from runtime.engines.pystan_engine import PyStanEngine

        return PyStanEngine()
    if not cmdstan_available():
        raise StanFleetError(
            "--engine cmdstanpy needs CmdStan, which is not installed: run "
            "`python -m cmdstanpy.install_cmdstan` or use --engine pystan"
        )
    from runtime.engines.cmdstanpy_engine import CmdStanPyEngine

    return CmdStanPyEngine()


def trim_stan_message(text: str) -> str:
    """Return the useful line of an error text from Stan, httpstan or CmdStan.

    That is the last ``Exception: ...`` clause without its source location (the program is
    usually a temporary copy), else the first line mentioning an error, else the first line.
    """
    start = text.rfind(_STAN_EXCEPTION)
    if start >= 0:
        clause = text[start + len(_STAN_EXCEPTION) :].split("\n", 1)[0]
        return _STAN_LOCATION_OR_QUOTE.split(clause, maxsplit=1)[0].strip()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return next((line for line in lines if "error" in line.lower()), lines[0])
