"""Programs, data and settings shared by the engine tests (the contract and each engine's own file)."""

from pathlib import Path

from runtime.settings import SamplerSettings

REPO = Path(__file__).parents[3]
DATA = REPO / "tests" / "data"
POISSON_DATA = {"N": 3, "y": [1, 4, 2]}
SMALL = SamplerSettings(chains=2, warmup=200, samples=200, thin=10)
CMDSTAN_MISSING = "CmdStan is not installed (python -m cmdstanpy.install_cmdstan)"

# Bad data for poisson.stan and the part of Stan's complaint every engine passes on; each engine's own
# tests pin the full message, with its prefix.
DATA_ERRORS = [
    ({"N": 3, "y": [1, 2]}, r"mismatch in dimension declared and found in context; .*variable name=y"),
    ({"N": 3}, r"variable does not exist; .*variable name=y"),
]
