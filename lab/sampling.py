"""Small, fast random draws the simulation needs (the standard library has no binomial)."""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Sequence


def binomial(n: int, p: float, rng: random.Random) -> int:
    """Draw from Binomial(n, p) by CDF inversion.

    Inversion costs O(n * min(p, 1 - p)) steps, which is tiny for the few dozen
    requests per model per tick the simulation draws.
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(n, 1.0 - p, rng)
    q = 1.0 - p
    ratio = p / q
    prob = q**n  # P(X = 0)
    cdf = prob
    u = rng.random()
    k = 0
    while u > cdf and k < n:
        prob *= ratio * (n - k) / (k + 1)
        k += 1
        cdf += prob
    return k


def cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative weights normalised to end at exactly 1.0."""
    total = math.fsum(weights)
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cum.append(acc)
    # random() < 1.0, so an exact 1.0 keeps every draw inside the last bin.
    cum[-1] = 1.0
    return cum


def draw_bins(cum: Sequence[float], n: int, rng: random.Random) -> list[int]:
    """Draw ``n`` samples by inverse transform and return how many fell in each bin.

    Bin i holds the uniforms u with cum[i-1] <= u < cum[i]. Sorting the uniforms and
    cutting them at each edge is cheaper than locating every draw on its own.
    """
    rnd = rng.random
    uniforms = sorted([rnd() for _ in range(n)])
    counts: list[int] = []
    start = 0
    for edge in cum:
        end = bisect_left(uniforms, edge, start)
        counts.append(end - start)
        start = end
    return counts
