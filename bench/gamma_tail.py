"""The gamma test's p-value in the far tail: exact recursion against the old Monte Carlo null.

For each sample size N it prints

* the one-off cost per N: the gamma table, the Monte Carlo null (``GAMMA_NULL_SIMULATIONS`` draws, as
  before) and, new, the exact tail constants (``P(gamma <= t)`` at the switch and at the floor);
* the cost of one tail p-value (an exact recursion not computed before, p ~ 1e-5) and of 1,000 samples
  all in the tail at once;
* for thresholds ``t`` (table values) with exact ``P(gamma <= t)`` near 1e-2 .. 1e-7: the exact
  probability, the old p-value ``(1 + #{null <= t}) / (1 + S)`` from the product's seeded null and their
  ratio, with the Monte Carlo relative sd ``sqrt((1 - p) / (S p))``;
* the p-values of 100,000 fresh null samples through :func:`gamma_pvalues`: its time and the fraction at
  most 1e-2 and 1e-3 (a valid p-value keeps them at or below the level, up to the sampling sd: 3e-4
  and 1e-4).

Run::

    .venv/bin/python bench/gamma_tail.py           # N in 30, 100, 1000, 10000: ~30 s on 2 cores
    .venv/bin/python bench/gamma_tail.py --huge    # also N = 10^6 (costs only)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.sbc import uniformity  # noqa: E402

SIZES = (30, 100, 1000, 10_000)
TARGETS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
FRESH_SAMPLES = 100_000
T = TypeVar("T")


def _threshold_near(n: int, k: int, values: np.ndarray, target: float) -> float:
    """The table value whose exact ``P(gamma <= t)`` is closest to ``target`` from below (bisection)."""
    below, above = 0, values.size - 1
    while above - below > 1:
        middle = (below + above) // 2
        if uniformity._exact_pvalues(n, k, values[middle : middle + 1])[0] <= target:
            below = middle
        else:
            above = middle
    return float(values[below])


def _timed(function: Callable[..., T], *args: object) -> tuple[T, float]:
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def _costs(n: int) -> tuple[int, np.ndarray]:
    k = uniformity._num_points(n, None)
    table, table_s = _timed(uniformity._gamma_table, n, k)
    null, null_s = _timed(uniformity._default_gamma_null, n, k)
    tail, tail_s = _timed(uniformity._tail, n, k, uniformity._switch(null))
    print(
        f"N={n:,} (K={k}): one-off: table {table_s:.3f} s, Monte Carlo null {null_s:.3f} s, "
        f"exact tail {tail_s:.3f} s"
    )
    # A tail p-value not computed before: the smallest null value (p ~ 1e-5) nudged to a fresh threshold.
    fresh = np.nextafter(null[0], 1.0)
    p, one_s = _timed(uniformity._exact_pvalues, n, k, np.array([fresh]))
    print(f"  one tail p-value ({p[0]:.2e}): {one_s * 1e3:.1f} ms", end="")
    values = np.unique(table.values)
    if n > 10_000:  # a few quantities only at such N
        print()
        return k, values
    # 1,000 samples all in the tail: their gammas are 1,000 distinct table values below the switch.
    assert tail is not None
    in_tail = values[(values > tail.floor) & (values <= tail.switch)]
    picked = in_tail[np.linspace(0, in_tail.size - 1, min(1000, in_tail.size)).astype(int)]
    uniformity._exact.clear()
    _, many_s = _timed(uniformity._pvalues, n, k, picked, null)
    print(f"; {picked.size} distinct tail gammas at once: {many_s:.2f} s")
    return k, values


def _accuracy(n: int, k: int, values: np.ndarray) -> None:
    null = uniformity._default_gamma_null(n, k)
    size = null.size
    print(f"  {'t':>10} {'exact P':>10} {'old p':>10} {'old/exact':>9} {'MC rel sd':>9} {'new p':>10}")
    for target in TARGETS:
        t = _threshold_near(n, k, values, target)
        exact = float(uniformity._exact_cdf(n, k, np.array([t]))[0])
        old = (1 + np.searchsorted(null, t, side="right")) / (1 + size)
        new = float(uniformity._pvalues(n, k, np.array([t]), null)[0])
        sd = np.sqrt((1 - exact) / (size * exact))
        print(f"  {t:10.3e} {exact:10.3e} {old:10.3e} {old / exact:9.2f} {sd:9.2f} {new:10.3e}")


def _fresh_null_pvalues(n: int, k: int) -> None:
    rng = np.random.default_rng(7)
    counts = np.cumsum(rng.multinomial(n, np.full(k, 1.0 / k), size=FRESH_SAMPLES)[:, :-1], axis=1)
    p, seconds = _timed(uniformity.gamma_pvalues, n, counts)
    _, again = _timed(uniformity.gamma_pvalues, n, counts)
    print(
        f"  {FRESH_SAMPLES:,} fresh null samples: gamma_pvalues {seconds:.2f} s (again {again:.2f} s); "
        f"fraction p <= 1e-2: {np.mean(p <= 1e-2):.4f}, <= 1e-3: {np.mean(p <= 1e-3):.5f}, "
        f"min p {p.min():.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--huge", action="store_true", help="also N = 10^6 (costs only)")
    args = parser.parse_args()
    uniformity.use_gamma_null_cache(None)  # time the simulation, not a read from disk
    import scipy.stats  # noqa: F401  # imported once here, not inside the first timing

    start = time.perf_counter()
    for n in SIZES:
        k, values = _costs(n)
        _accuracy(n, k, values)
        _fresh_null_pvalues(n, k)
    if args.huge:
        _costs(1_000_000)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
