"""bench/keys.py's interval for its ratios: how far one run's ratio can be trusted."""

from __future__ import annotations

import random

from bench.key_stats import quantile, ratio_interval


def bimodal(rng: random.Random, n: int, slow: float) -> list[float]:
    """Keys as the bench times them: two thirds cursor keys (5-8 ms), a third screen
    keys (20-60 ms, ``slow`` times slower on the big side)."""
    return [
        rng.uniform(0.005, 0.008) if i % 3 else rng.uniform(0.020, 0.060) * slow for i in range(n)
    ]


def test_the_interval_holds_the_ratio_and_narrows_with_more_keys() -> None:
    rng = random.Random(3)
    widths = []
    for keys in (60, 600):
        small, big = bimodal(rng, keys, 1.0), bimodal(rng, keys, 1.5)
        low, high = ratio_interval(small, big, 0.5)
        point = quantile(big, 0.5) / quantile(small, 0.5)
        assert low <= point <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ten times the keys: a much narrower interval


def test_the_same_keys_on_both_sides_give_an_interval_about_one() -> None:
    keys = bimodal(random.Random(5), 300, 1.0)
    low, high = ratio_interval(keys, list(keys), 0.95)
    assert low < 1.0 < high


def test_a_key_never_painted_counts_as_slower_than_any() -> None:
    small = [0.005] * 20
    big = [0.005] * 19 + [float("nan")]
    assert ratio_interval(small, big, 0.99)[1] == float("inf")


def test_keys_never_painted_on_both_sides_leave_an_interval_in_order() -> None:
    """inf / inf has no ratio: such resamples are left out, not sorted among the rest."""
    nan = float("nan")
    low, high = ratio_interval([0.005] * 18 + [nan, nan], [0.006] * 18 + [nan, nan], 0.95)
    assert low <= high
