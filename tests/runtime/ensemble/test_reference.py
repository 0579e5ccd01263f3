"""The reference fit as stored data: the draw order, thinning and pooling, and its store round trip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from runtime.ensemble.reference import ReferenceFit, draw_order, load_reference, pooled_draws, save_reference
from runtime.store.keys import reference_draws_key, reference_fit_key
from runtime.store.local import LocalDirectoryStore

RECORD = ReferenceFit(
    engine="pystan",
    seed=7,
    chains=2,
    draws_per_chain=6,
    thin=2,
    divergences=0,
    max_treedepth_hits=0,
    min_ebfmi=1.0,
    max_rhat=1.001,
    max_rhat_of="mu",
    min_ess_bulk=900.0,
    min_ess_bulk_of="mu",
    min_ess_tail=800.0,
    min_ess_tail_of="mu",
)


@pytest.mark.parametrize("kept", [1, 2, 3, 7, 100, 400, 1000, 4000])
def test_draw_order_is_a_permutation(kept: int) -> None:
    order = draw_order(kept)
    assert sorted(order.tolist()) == list(range(kept))


@pytest.mark.parametrize(("kept", "prefix"), [(400, 128), (400, 256), (1000, 512), (4000, 64)])
def test_every_power_of_two_prefix_is_evenly_spaced(kept: int, prefix: int) -> None:
    gaps = np.diff(np.sort(draw_order(kept)[:prefix]))
    assert gaps.min() >= kept // prefix and gaps.max() <= -(-kept // prefix)


def test_other_prefixes_leave_no_gap_over_twice_the_even_spacing() -> None:
    order = draw_order(400)
    for prefix in (3, 50, 100, 150, 200, 300, 399):
        gaps = np.diff(np.sort(order[:prefix]))
        assert gaps.max() <= 2 * 400 / prefix + 1


def test_the_order_halves_the_gaps_position_by_position() -> None:
    # It takes no R: replicate r's draw is position r, whatever R (a larger R keeps earlier draws).
    assert draw_order(400)[:8].tolist() == [0, 200, 100, 300, 50, 250, 150, 350]


def test_pooled_draws_thin_each_chain_and_pool_them_chain_after_chain() -> None:
    values = np.arange(2 * 6 * 3).reshape(2, 6, 3)
    pooled = pooled_draws({"x": values}, thin=2)["x"]
    np.testing.assert_array_equal(pooled, np.concatenate([values[0, ::2], values[1, ::2]]))
    assert pooled.shape == (6, 3)


def test_the_record_and_draws_round_trip_and_are_written_once(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    assert load_reference(store, "d1") is None
    draws = {"mu": np.linspace(0, 1, 12).reshape(2, 6), "y_rep": np.ones((2, 6, 4), dtype=np.int64)}
    save_reference(store, "d1", RECORD, draws)
    record, loaded = load_reference(store, "d1")  # type: ignore[misc]
    assert record == RECORD
    np.testing.assert_array_equal(loaded["mu"], draws["mu"])
    assert loaded["y_rep"].dtype == np.int64
    stamp = (tmp_path / reference_draws_key("d1")).stat().st_mtime_ns
    save_reference(store, "d1", RECORD, {"mu": np.zeros((2, 6))})
    assert (tmp_path / reference_draws_key("d1")).stat().st_mtime_ns == stamp
    assert store.exists(reference_fit_key("d1"))


def test_a_record_without_problems_gives_no_warning_and_with_them_says_why() -> None:
    assert RECORD.warning is None
    flagged = replace(RECORD, problems=["3 divergent transitions"])
    assert flagged.warning is not None and flagged.warning.startswith(
        "warning: the reference fit has 3 divergent transitions: its draws may not be the posterior"
    )
    assert "2 chains x 6 draws, thinned by 2 to 6" in RECORD.describe()


def test_a_diagnostic_without_a_value_reads_n_a() -> None:
    one_chain = replace(RECORD, chains=1, max_rhat=float("nan"))
    assert "max R-hat n/a (mu)" in one_chain.describe()
    assert "max R-hat n/a" in replace(RECORD, max_rhat=None).describe()  # type: ignore[arg-type]
