"""Posterior SBC's reference fit as stored data: its record, its draws, and the order replicates take them.

The reference fit is the model fitted once to the observed data. Its record (diagnostics, thinning) and
its draws live beside the dataset spec (:func:`runtime.store.keys.reference_fit_key`), so a rerun or a
larger R reuses them. Replicate ``r`` takes the thinned draw ``draw_order(kept)[r]``: every prefix of the
order is spread evenly over the draws, so the first R replicates are evenly spaced whatever R is, and
raising R keeps the earlier replicates' draws.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from runtime.errors import StanFleetError
from runtime.store.keys import reference_draws_key, reference_fit_key
from runtime.store.protocol import ObjectStore


@dataclass(frozen=True)
class ReferenceFit:
    """What the report shows of the reference fit, and how its draws are thinned.

    :attr:`kept` draws remain after keeping every ``thin``-th draw of each of ``chains`` chains; the
    worst R-hat and ESS are over every scalar of the parameters, each with the scalar's name.
    ``problems`` says in words what a diagnostic flags (empty when none does).
    """

    engine: str
    seed: int
    chains: int
    draws_per_chain: int
    thin: int
    divergences: int
    max_treedepth_hits: int
    min_ebfmi: float
    max_rhat: float
    max_rhat_of: str
    min_ess_bulk: float
    min_ess_bulk_of: str
    min_ess_tail: float
    min_ess_tail_of: str
    problems: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """The draws left for replicates: every ``thin``-th draw of each chain."""
        return kept_draws(self.chains, self.draws_per_chain, self.thin)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, with :attr:`kept` (the run record and summary.json carry it)."""
        return {**asdict(self), "kept": self.kept}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ReferenceFit:
        """Inverse of :meth:`to_dict` (``kept`` is derived again)."""
        return cls(**{name: value for name, value in raw.items() if name != "kept"})

    def describe(self) -> str:
        """One line: the draws, the sampler diagnostics and the worst convergence diagnostics."""
        return (
            f"{self.chains} chains x {self.draws_per_chain} draws, thinned by {self.thin} to {self.kept}; "
            f"{self.divergences} divergent, {self.max_treedepth_hits} at max treedepth, "
            f"min E-BFMI {_shown(self.min_ebfmi, '.2f')}, "
            f"max R-hat {_shown(self.max_rhat, '.3f')} ({self.max_rhat_of}), "
            f"min ESS bulk {_shown(self.min_ess_bulk, '.0f')} ({self.min_ess_bulk_of}), "
            f"tail {_shown(self.min_ess_tail, '.0f')} ({self.min_ess_tail_of})"
        )

    @property
    def warning(self) -> str | None:
        """What a problem of the reference fit means for the check, in one line; None without problems."""
        if not self.problems:
            return None
        return (
            f"warning: the reference fit has {'; '.join(self.problems)}: its draws may not be the posterior, "
            "and posterior SBC then checks the wrong thing"
        )


def _shown(value: float | None, spec: str) -> str:
    """A diagnostic as the terminal shows it; ``n/a`` where it has no value (R-hat of one chain)."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def kept_draws(chains: int, draws_per_chain: int, thin: int) -> int:
    """How many draws remain after keeping every ``thin``-th draw of each chain."""
    return chains * len(range(0, draws_per_chain, thin))


def check_replicates(replicates: int, chains: int, draws_per_chain: int, thin: int) -> None:
    """Refuse more replicates than the reference fit keeps draws, in one line saying how to get more."""
    kept = kept_draws(chains, draws_per_chain, thin)
    if replicates > kept:
        raise StanFleetError(
            f"--replicates {replicates} exceeds the {kept} draws the reference fit keeps ({chains} chains x "
            f"{draws_per_chain} draws, thinned by {thin}): ask for at most {kept} or raise --samples"
        )


def pooled_draws(variables: dict[str, np.ndarray], thin: int) -> dict[str, np.ndarray]:
    """Every ``thin``-th draw of each chain, chains one after another: arrays shaped ``(kept, *dims)``."""
    pooled = {}
    for name, values in variables.items():
        kept = np.asarray(values)[:, ::thin]
        pooled[name] = kept.reshape(kept.shape[0] * kept.shape[1], *kept.shape[2:])
    return pooled


def draw_order(kept: int) -> np.ndarray:
    """A permutation of ``range(kept)`` whose every prefix is spread evenly over it.

    Position ``k`` of the van der Corput sequence in base 2 (0, 1/2, 1/4, 3/4, ...) picks draw
    ``floor(v_k * kept)``, skipping draws already picked. The first ``2^j`` positions are evenly spaced
    while ``2^j <= kept`` (no draw is skipped before them); any prefix leaves no gap over about twice the
    even spacing.
    """
    if kept < 1:
        raise ValueError("kept must be positive")
    bits = max(1, (kept - 1).bit_length())
    order: list[int] = []
    seen = np.zeros(kept, dtype=bool)
    for position in range(2**bits):
        reversed_bits = int(format(position, f"0{bits}b")[::-1], 2)
        draw = reversed_bits * kept // 2**bits
        if not seen[draw]:
            seen[draw] = True
            order.append(draw)
    return np.asarray(order, dtype=np.int64)


def save_reference(
    store: ObjectStore, dataset_id: str, record: ReferenceFit, variables: dict[str, np.ndarray]
) -> None:
    """Write the reference fit's draws, then its record (a record always has its draws), unless stored."""
    if store.exists(reference_fit_key(dataset_id)):
        return
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **variables)  # type: ignore[arg-type]  # numpy's stub: allow_pickle in **
    store.put(reference_draws_key(dataset_id), buffer.getvalue())
    store.put(reference_fit_key(dataset_id), json.dumps(record.to_dict(), indent=1).encode())


def load_reference(store: ObjectStore, dataset_id: str) -> tuple[ReferenceFit, dict[str, np.ndarray]] | None:
    """The stored reference fit's record and draws, or None when the dataset set has none yet."""
    try:
        record = ReferenceFit.from_dict(json.loads(store.get(reference_fit_key(dataset_id))))
        payload = store.get(reference_draws_key(dataset_id))
    except KeyError:
        return None
    except (ValueError, TypeError) as exc:
        raise StanFleetError(
            f"the reference fit of datasets {dataset_id} in {store.uri} is corrupt: {exc}"
        ) from None
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        return record, {name: archive[name] for name in archive.files}
