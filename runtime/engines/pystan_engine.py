"""The PyStan 3 engine, talking to httpstan directly.

PyStan's ``Model.sample`` prints progress and Stan's messages, and keeps every seeded fit in
httpstan's on-disk cache forever. This engine makes the same httpstan requests, prints nothing,
and deletes each fit once read; PyStan's ``Fit`` still parses the output.

httpstan names a seeded fit by hashing its request and shares the fit file through its cache
directory, which every process of the user shares: two processes making the same request (the same
model, data and seed) would read and delete one file. Each request here carries a random number
among its initial values (Stan reads only the parameters' names from them), so every fit is private
to the request that made it; the draws are those of the same request without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import secrets
import warnings
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from runtime.engines.base import Draws, SharedBuild, StanData
from runtime.engines.messages import trim_stan_message
from runtime.engines.settings import SamplerSettings
from runtime.errors import MachineryError, StanFleetError
from runtime.model.files import cache_root
from runtime.model.stan_info import read_model_info

with warnings.catch_warnings():  # httpstan 4.13 warns about its own use of newer marshmallow
    warnings.simplefilter("ignore")
    import httpstan.services_stub
    import stan.fit
    from stan.common import HTTPResponse, HttpstanClient
    from stan.model import DataJSONEncoder

_T = TypeVar("_T")

_NUTS = "stan::services::sample::hmc_nuts_diag_e_adapt"
_FIXED_PARAM = "stan::services::sample::fixed_param"
_METHOD_NAMES = {_NUTS: "sampling", _FIXED_PARAM: "fixed_param"}
"""What a failure message calls each service function (CmdStanPy's words)."""
_POLL_SECONDS = 0.01
_PRIVATE_FIT = "__stanfleet_request"
"""The initial value that makes each httpstan fit request unique (httpstan takes numbers only)."""
_BROKEN_POOL = "BrokenProcessPool"


class PyStanEngine:
    """Builds through httpstan's model cache: a program built before loads in milliseconds."""

    name = "pystan"

    def compile(self, stan_file: Path) -> PyStanModel:
        """Build ``stan_file`` (or load it from httpstan's cache); a bad program raises StanFleetError."""
        info = read_model_info(stan_file)  # stanc's located message for a bad program, before any C++ build
        program_code = stan_file.read_text()
        # httpstan's C++ build writes ./build: keep it out of the user's working directory.
        build_dir = cache_root() / "httpstan-build"
        build_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.chdir(build_dir):
            response = _run_quietly(_build(program_code))
        if response.status != 201:
            message = trim_stan_message(str(response.json().get("message", response.json())))
            raise StanFleetError(f"{stan_file.name}: httpstan could not build the program: {message}")
        return PyStanModel(
            program_name=stan_file.name,
            program_code=program_code,
            model_name=response.json()["name"],
            uses_rng=info.uses_rng,
        )

    def shared_build(self, stan_file: Path) -> SharedBuild | None:
        """None: httpstan's builds live in its own cache and are not shared between machines."""
        return None


@dataclass(frozen=True)
class PyStanModel:
    """A program built by httpstan. ``model_name`` is httpstan's ``models/<id>``."""

    program_name: str
    program_code: str
    model_name: str
    uses_rng: bool = True

    def sample(self, data: StanData, settings: SamplerSettings, seed: int) -> Draws:
        """Run NUTS (diag_e, adaptation on) and return its draws; thinning is left to scoring."""
        args = {
            "function": _NUTS,
            "num_warmup": settings.warmup,
            "num_samples": settings.samples,
            "delta": settings.adapt_delta,
            "max_depth": settings.max_treedepth,
        }
        fit = self._run(data, seed, settings.chains, args, {})
        chains = settings.chains
        return Draws(
            variables={
                name: _chain_major(fit[name], dims, chains)
                for name, dims in zip(fit.param_names, fit.dims, strict=True)
            },
            divergent=_chain_major(fit["divergent__"], [], chains).astype(bool),
            treedepth=_chain_major(fit["treedepth__"], [], chains).astype(np.int64),
            energy=_chain_major(fit["energy__"], [], chains),
            max_treedepth=settings.max_treedepth,
        )

    def fixed_param(
        self, data: StanData, num_draws: int, seed: int, inits: StanData | None = None
    ) -> dict[str, np.ndarray]:
        """Run fixed_param with one chain; every variable comes back shaped ``(num_draws, *dims)``."""
        args = {"function": _FIXED_PARAM, "num_samples": num_draws}
        fit = self._run(data, seed, 1, args, inits or {})
        return {
            name: _chain_major(fit[name], dims, 1)[0]
            for name, dims in zip(fit.param_names, fit.dims, strict=True)
        }

    def quantities_at(self, data: StanData, values: StanData, seed: int) -> dict[str, np.ndarray]:
        """For a program without RNG calls, httpstan's ``write_array``; else one fixed_param draw.

        ``write_array`` runs in its own process (a fraction of a fixed_param run, which forks a sampler).
        """
        if self.uses_rng:  # write_array seeds every RNG with 0: the same stream for every call
            return {name: draws[0] for name, draws in self.fixed_param(data, 1, seed, inits=values).items()}
        params, flat = _run_quietly(self._write_array(_jsonable(data), _jsonable(values)))
        quantities, start = {}, 0
        for param in params:
            size = int(np.prod(param["dims"], dtype=np.int64))
            # Stan writes each variable's elements in column-major order
            quantities[param["name"]] = np.reshape(flat[start : start + size], param["dims"], order="F")
            start += size
        return quantities

    async def _write_array(
        self, data: dict[str, Any], values: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        async with HttpstanClient() as client:
            params = await self._post(client, "params", {"data": data}, "Stan rejected the data")
            unconstrained = await self._post(
                client,
                "transform_inits",
                {"data": data, "constrained_parameters": values},
                "the parameter values are outside their constraints",
            )
            constrained = await self._post(
                client,
                "write_array",
                {
                    "data": data,
                    "unconstrained_parameters": unconstrained["params_r_unconstrained"],
                    "include_tparams": True,
                    "include_gqs": True,
                },
                "evaluating the generated quantities failed",
            )
        return params["params"], np.asarray(constrained["params_r_constrained"], dtype=float)

    async def _post(
        self, client: HttpstanClient, endpoint: str, body: dict[str, Any], failure: str
    ) -> dict[str, Any]:
        response = await client.post(f"/{self.model_name}/{endpoint}", json=body)
        if response.status != 200:
            full = str(response.json().get("message"))
            message = trim_stan_message(full, self.program_code)
            raise StanFleetError(f"{self.program_name}: {failure}: {message}", detail=full)
        return dict(response.json())

    def _run(
        self, data: StanData, seed: int, chains: int, args: dict[str, Any], inits: StanData
    ) -> stan.fit.Fit:
        init = {**_jsonable(inits), _PRIVATE_FIT: float(secrets.randbits(52))}
        request = {**args, "data": _jsonable(data), "init": init, "random_seed": seed}
        params, outputs = _run_quietly(self._fits(request, chains))
        return stan.fit.Fit(
            tuple(outputs),
            chains,
            tuple(p["name"] for p in params),
            tuple(name for p in params for name in p["constrained_names"]),
            tuple(p["dims"] for p in params),
            args.get("num_warmup", 0),
            args["num_samples"],
            1,
            False,
        )

    async def _fits(self, request: dict[str, Any], chains: int) -> tuple[list[dict[str, Any]], list[bytes]]:
        """Check the data, run one httpstan fit per chain, read and delete each fit."""
        async with HttpstanClient() as client:
            checked = await self._post(client, "params", {"data": request["data"]}, "Stan rejected the data")
            params: list[dict[str, Any]] = checked["params"]
            operations = []
            for chain in range(1, chains + 1):
                response = await client.post(f"/{self.model_name}/fits", json={**request, "chain": chain})
                if response.status != 201:
                    raise StanFleetError(f"{self.program_name}: httpstan rejected the run: {response.json()}")
                operations.append(response.json())
            outputs, errors = [], []
            for operation in operations:
                while not operation["done"]:
                    await asyncio.sleep(_POLL_SECONDS)
                    operation = (await client.get(f"/{operation['name']}")).json()
                fit_name = operation["result"].get("name")
                if fit_name is None:
                    errors.append(str(operation["result"].get("message", operation["result"])))
                    continue
                fit = await client.get(f"/{fit_name}")
                if fit.status != 200:
                    raise MachineryError(
                        f"{self.program_name}: httpstan lost the fit {fit_name}: {fit.json()}"
                    )
                outputs.append(fit.content)
                await client.delete(f"/{fit_name}")
        if any(_BROKEN_POOL in error for error in errors):
            _replace_sampler_pool()
            raise MachineryError(
                f"{self.program_name}: httpstan's sampler process died during the fit",
                detail="\n".join(errors),
            )
        if errors:
            method = _METHOD_NAMES[request["function"]]
            raise StanFleetError(
                f"{self.program_name}: {method} failed: {trim_stan_message(errors[0], self.program_code)}",
                detail="\n".join(errors),
            )
        return params, outputs


def _replace_sampler_pool() -> None:
    """Give httpstan a new sampler pool.

    Once one of its processes has died (killed, out of memory), the pool refuses every later fit.
    """
    broken = httpstan.services_stub.executor
    httpstan.services_stub.executor = concurrent.futures.ProcessPoolExecutor(
        mp_context=multiprocessing.get_context("fork"), initializer=httpstan.services_stub.init_worker
    )
    broken.shutdown(wait=False, cancel_futures=True)


def _run_quietly(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run an httpstan conversation, hiding the deprecation warnings httpstan's server code raises.

    Where this thread already runs an event loop (a Jupyter kernel does), ``asyncio.run`` cannot nest:
    nest_asyncio lets it, as PyStan's documentation advises for notebooks. (A helper thread with its own
    loop is no way out: httpstan's sampler pool forks from the thread that first submits to it.)
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        import nest_asyncio

        nest_asyncio.apply()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return asyncio.run(coroutine)


async def _build(program_code: str) -> HTTPResponse:
    async with HttpstanClient() as client:
        return await client.post("/models", json={"program_code": program_code})


def _jsonable(values: StanData) -> dict[str, Any]:
    """Plain-JSON copy of Stan data or inits (numpy arrays and integers included)."""
    return dict(json.loads(DataJSONEncoder().encode(dict(values))))


def _chain_major(values: np.ndarray, dims: list[int], chains: int) -> np.ndarray:
    """Reshape PyStan's ``fit[name]`` to ``(chains, draws, *dims)``.

    ``fit[name]`` is shaped ``(*dims, draws * chains)`` (``(1, draws * chains)`` for a scalar), its
    last axis running over chains fastest: draw 0 of every chain, then draw 1, and so on.
    """
    draws = values.shape[-1] // chains
    by_draw = values.reshape(*dims, draws, chains)
    return np.moveaxis(by_draw, (-1, -2), (0, 1)).copy()
