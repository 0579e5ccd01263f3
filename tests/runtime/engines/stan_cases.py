"""Programs, data and settings shared by the engine tests (the contract and each engine's own file)."""

from pathlib import Path

from runtime.settings import SamplerSettings

REPO = Path(__file__).parents[3]
DATA = REPO / "tests" / "data"
POISSON_DATA = {"N": 3, "y": [1, 4, 2]}
SMALL = SamplerSettings(chains=2, warmup=200, samples=200, thin=10)

# Bad data for poisson.stan and what every engine's message must say about it: the stage and the
# variable. The wording differs (CmdStan 2.35 calls a missing y a dimension mismatch, httpstan a missing
# variable; the worker image runs CmdStan 2.36), so each engine's own tests pin their exact message.
DATA_ERRORS = [
    ({"N": 3, "y": [1, 2]}, r"stage=data initialization; variable name=y"),
    ({"N": 3}, r"stage=data initialization; variable name=y"),
]
