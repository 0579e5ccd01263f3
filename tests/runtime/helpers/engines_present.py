"""Which Stan engines the tests run: every engine present, CmdStanPy only where CmdStan is installed.

With ``STANFLEET_REQUIRE_CMDSTAN=1`` (CI sets it) a missing CmdStan fails the CmdStan tests instead of
skipping them.
"""

import os

import pytest

from runtime.engines.choice import cmdstan_available

REQUIRE_CMDSTAN = os.environ.get("STANFLEET_REQUIRE_CMDSTAN") == "1"
CMDSTAN_MISSING = (
    "CmdStan is not installed (python -m cmdstanpy.install_cmdstan, or CMDSTAN=path); "
    "STANFLEET_REQUIRE_CMDSTAN=1 makes this a failure"
)

requires_cmdstan = pytest.mark.skipif(not (REQUIRE_CMDSTAN or cmdstan_available()), reason=CMDSTAN_MISSING)
"""Skips a test that needs CmdStan where it is missing, unless STANFLEET_REQUIRE_CMDSTAN=1."""

ENGINES = [
    pytest.param("pystan", id="pystan"),
    pytest.param("cmdstanpy", id="cmdstanpy", marks=[requires_cmdstan, pytest.mark.slow]),
]
"""``@pytest.mark.parametrize("engine", ENGINES)``: one run per engine present. The CmdStan runs are
marked slow (each module compiles its programs afresh), so ``make test-fast`` runs the PyStan side."""
