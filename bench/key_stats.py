"""Key latencies as bench/keys.py reports them: quantiles (a key never painted counts
as slower than any), the bootstrap interval of a ratio of two quantiles, and the
groups of keys (all, cursor, screen)."""

from __future__ import annotations

import math
import random


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile; a key never painted (NaN) counts as slower than any."""
    ordered = sorted(v if v == v else math.inf for v in values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ratio_interval(
    small: list[float], big: list[float], q: float, rounds: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """The middle 90% of the ratio of ``big``'s ``q`` quantile to ``small``'s over
    ``rounds`` bootstrap resamples of each (keys drawn again with replacement): how far
    the ratio of one run can be trusted. The p50 of all keys falls between the cursor
    keys and the screen keys, where there are few of either, and moves far from one run
    to the next; this says how far."""
    rng = random.Random(seed)
    drawn = (
        quantile(rng.choices(big, k=len(big)), q) / quantile(rng.choices(small, k=len(small)), q)
        for _ in range(rounds)
    )
    # A resample whose quantile is a key never painted on both sides (inf / inf) has
    # no ratio: it is left out, so the rest still sort.
    ratios = sorted(r for r in drawn if r == r)
    if not ratios:
        return math.nan, math.nan
    return ratios[round(0.05 * (len(ratios) - 1))], ratios[round(0.95 * (len(ratios) - 1))]


def groups_of(samples: dict[str, list[float]]) -> dict[str, list[float]]:
    return {
        "all": [v for values in samples.values() for v in values],
        "cursor": samples.get("down", []) + samples.get("up", []),
        "screen": samples.get("enter", []) + samples.get("escape", []),
    }


def report(name: str, groups: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    figures = {}
    for group, values in groups.items():
        figures[group] = (quantile(values, 0.5), quantile(values, 0.95))
        lost = sum(1 for v in values if v != v)
        print(
            f"  {name:<6} {group:<7} p50 {figures[group][0] * 1000:7.1f} ms"
            f"  p95 {figures[group][1] * 1000:7.1f} ms  ({len(values)} keys"
            + (f", {lost} never painted" if lost else "")
            + ")"
        )
    return figures
