"""The CmdStanPy engine: one executable per program text, cached on disk across processes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cmdstanpy
import numpy as np

from runtime.engines.base import Draws, SharedBuild, StanData
from runtime.engines.messages import trim_stan_message
from runtime.engines.settings import SamplerSettings
from runtime.errors import MachineryError, StanFleetError
from runtime.model.files import cache_root
from runtime.model.stan_info import read_model_info

#: Significant figures CmdStan writes. Its default of 6 is too coarse for ranks of log_lik-sized values
#: (a resolution of 0.01 at -2000); 9 resolves 1e-5 there, and 18 made the CSV files twice the size.
SIG_FIGS = 9

_RETURN_CODES = re.compile(r"retcodes=\[([-\d, ]*)\]")
"""cmdstanpy's failure message describes the run, with each CmdStan process's return code."""


class CmdStanPyEngine:
    """Compiles into ``<cache>/cmdstan/<hash of CmdStan path and program text>/``, once.

    Its models run up to ``cores`` chains at once.
    """

    name = "cmdstanpy"

    def __init__(self, cores: int = 1) -> None:
        self.cores = cores

    def compile(self, stan_file: Path) -> CmdStanPyModel:
        """Compile ``stan_file`` or reuse its cached executable; a bad program raises StanFleetError."""
        read_model_info(stan_file)  # stanc's located message for a bad program, before any C++ build
        try:
            cached = _cached_copy(stan_file)
            with _quiet():
                model = _CmdStanModel(stan_file=cached)
        except (RuntimeError, ValueError) as exc:
            raise StanFleetError(
                f"{stan_file.name}: CmdStan could not build the program: {trim_stan_message(str(exc))}"
            ) from None
        return CmdStanPyModel(program_name=stan_file.name, model=model, cores=self.cores)

    def shared_build(self, stan_file: Path) -> SharedBuild | None:
        """The executable, keyed in the store by CmdStan version, machine type and program hash."""
        cached = _cached_copy(stan_file)
        version = ".".join(map(str, cmdstanpy.cmdstan_version() or ("unknown",)))
        key = f"models/cmdstan-{version}-{platform.machine()}/{cached.parent.name}/{cached.stem}"
        return SharedBuild(key=key, path=cached.with_suffix(""))


@dataclass(frozen=True)
class CmdStanPyModel:
    """A compiled CmdStan executable, run on ``cores`` cores.

    On one core, one CmdStan process runs the chains in turn: a process per chain (cmdstanpy's
    default) would only add process start-ups, data reads and CSV headers.
    """

    program_name: str
    model: cmdstanpy.CmdStanModel
    cores: int = 1

    def sample(self, data: StanData, settings: SamplerSettings, seed: int) -> Draws:
        """Run NUTS (diag_e, adaptation on) and return its draws; thinning is left to scoring."""
        adapt = settings.warmup > 0  # Stan adapts during warmup only; cmdstanpy insists on saying so
        with self._run("sampling") as output_dir:
            fit = self.model.sample(
                data=dict(data),
                chains=settings.chains,
                parallel_chains=min(self.cores, settings.chains),
                force_one_process_per_chain=None if self.cores > 1 else False,
                iter_warmup=settings.warmup,
                iter_sampling=settings.samples,
                adapt_engaged=adapt,
                adapt_delta=settings.adapt_delta if adapt else None,
                max_treedepth=settings.max_treedepth,
                seed=seed,
                output_dir=output_dir,
                show_progress=False,
                sig_figs=SIG_FIGS,
            )
            shape = (fit.chains, fit.num_draws_sampling)
            variables = {
                name: values.reshape(*shape, *values.shape[1:])
                for name, values in fit.stan_variables().items()
            }
            sampler = {name: values.T for name, values in fit.method_variables().items()}
        return Draws(
            variables=variables,
            divergent=sampler["divergent__"].astype(bool),
            treedepth=sampler["treedepth__"].astype(np.int64),
            energy=sampler["energy__"],
            max_treedepth=settings.max_treedepth,
        )

    def fixed_param(
        self, data: StanData, num_draws: int, seed: int, inits: StanData | None = None
    ) -> dict[str, np.ndarray]:
        """Run fixed_param with one chain; every variable comes back shaped ``(num_draws, *dims)``."""
        with self._run("fixed_param") as output_dir:
            fit = self.model.sample(
                data=dict(data),
                fixed_param=True,
                iter_sampling=num_draws,
                chains=1,
                seed=seed,
                inits=dict(inits) if inits is not None else None,
                output_dir=output_dir,
                show_progress=False,
                sig_figs=SIG_FIGS,
            )
            return fit.stan_variables()

    def quantities_at(self, data: StanData, values: StanData, seed: int) -> dict[str, np.ndarray]:
        """One fixed_param draw with the parameters held at ``values``."""
        return {name: draws[0] for name, draws in self.fixed_param(data, 1, seed, inits=values).items()}

    @contextmanager
    def _run(self, method: str) -> Iterator[str]:
        """A private output directory, removed afterwards; CmdStan failures become StanFleetError."""
        with tempfile.TemporaryDirectory(prefix="stanfleet_cmdstan_") as output_dir, _quiet():
            try:
                yield output_dir
            except (RuntimeError, ValueError) as exc:
                full = "\n".join([str(exc), *_console_output(Path(output_dir))])
                killed = _killing_signal(str(exc))
                if killed is not None or isinstance(exc.__cause__, OSError):
                    reason = f"was killed by {killed}" if killed else f"could not run: {exc.__cause__}"
                    raise MachineryError(f"{self.program_name}: CmdStan {reason}", detail=full) from None
                raise StanFleetError(
                    f"{self.program_name}: {method} failed: {trim_stan_message(full, self.model.code())}",
                    detail=full,
                ) from None


def _killing_signal(message: str) -> str | None:
    """The signal that ended a CmdStan process of a failed run (a negative return code), if one did.

    Such a signal is the machine's doing (the OOM killer, a stopped job), not Stan's report on the model.
    """
    codes = _RETURN_CODES.search(message)
    if codes is None:
        return None
    for code in (int(text) for text in codes.group(1).replace(" ", "").split(",") if text):
        if code < -1:  # -1 is cmdstanpy's "not run yet"
            with contextlib.suppress(ValueError):
                return signal.Signals(-code).name
            return f"signal {-code}"
    return None


def _console_output(output_dir: Path) -> list[str]:
    """What the CmdStan processes of a failed run printed.

    cmdstanpy's error names these files only, and they go with the run's directory.
    """
    return [path.read_text(errors="replace") for path in sorted(output_dir.glob("*-stdout.txt"))]


class _CmdStanModel(cmdstanpy.CmdStanModel):
    """A CmdStanModel that asks its executable for its build information once.

    cmdstanpy runs ``<exe> info`` (a process start) before every sample() call; the answer cannot
    change for a built executable.
    """

    _info: dict[str, str] | None = None

    def exe_info(self) -> dict[str, str]:
        """The executable's ``info`` output, read on the first call once the executable exists."""
        if not self._info:
            self._info = super().exe_info()
        return dict(self._info)


def _cached_copy(stan_file: Path) -> Path:
    """Copy the program to its cache directory (once), where its executable is built and kept."""
    code = stan_file.read_text()
    key = hashlib.sha256(f"{cmdstanpy.cmdstan_path()}\0{code}".encode()).hexdigest()[:16]
    cached = cache_root() / "cmdstan" / key / stan_file.name
    if not cached.is_file():  # rewriting would touch the mtime and make CmdStan rebuild
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(code)
        os.replace(tmp, cached)
    return cached


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence cmdstanpy's INFO/WARNING log lines; failures still raise."""
    logger = logging.getLogger("cmdstanpy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
