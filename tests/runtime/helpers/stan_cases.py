"""Programs, data and settings shared by the engine tests (the contract and each engine's own file)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from runtime.engines.settings import SamplerSettings

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


LONG = SamplerSettings(chains=2, warmup=3_000_000, samples=10, thin=1)
"""A fit of poisson.stan that runs for seconds: long enough to kill its sampler process mid-fit."""


def sampler_processes(engine: str) -> list[int]:
    """This process's children that run ``engine``'s sampler: httpstan's pool is forked from this
    process (its command line is ours), CmdStan runs ``method=sample``. Other children (the jsii node
    process of the stack tests, a worker subprocess) are left alone; so are zombies."""
    listed = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    ours = Path("/proc/self/cmdline").read_bytes()
    found = []
    for pid in map(int, listed.stdout.split()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        forked = command == ours
        runs_cmdstan = b"method=sample" in command.split(b"\0")
        if (forked if engine == "pystan" else runs_cmdstan) and command:  # a zombie's command line is empty
            found.append(pid)
    return found


def kill_samplers_once_running(killed: list[int], engine: str, running_for: float = 0.5) -> None:
    """SIGKILL ``engine``'s sampler processes (CmdStan, or httpstan's sampler pool) once one has run for
    ``running_for`` seconds: the sampler of the fit in flight. Gives up after 30 s."""
    deadline = time.monotonic() + 30
    first_seen: float | None = None
    while time.monotonic() < deadline:
        samplers = sampler_processes(engine)
        if samplers:
            first_seen = first_seen or time.monotonic()
            if time.monotonic() - first_seen >= running_for:
                for pid in samplers:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(samplers)
                return
        time.sleep(0.05)
