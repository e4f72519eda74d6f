"""Population Stability Index over a sliding window of binned samples."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

#: Empty bins are floored so the logarithm stays finite (the convention Evidently uses).
EMPTY_BIN_FLOOR = 1e-4


def psi(current: Sequence[float], reference: Sequence[float]) -> float:
    """Return the PSI of ``current`` against ``reference``.

    Both are per-bin proportions over the same bins:
    PSI = sum((cur_i - ref_i) * ln(cur_i / ref_i)), with empty bins floored at 1e-4.
    """
    if len(current) != len(reference):
        raise ValueError("current and reference must have the same bins")
    total = 0.0
    for cur, ref in zip(current, reference, strict=True):
        cur = max(cur, EMPTY_BIN_FLOOR)
        ref = max(ref, EMPTY_BIN_FLOOR)
        total += (cur - ref) * math.log(cur / ref)
    return total


def proportions(counts: Sequence[int]) -> list[float]:
    """Turn bin counts into proportions; an empty histogram is all zeros."""
    total = sum(counts)
    if total == 0:
        return [0.0] * len(counts)
    return [c / total for c in counts]


class Reference:
    """Reference proportions with their floors and logarithms computed once."""

    __slots__ = ("logs", "props")

    def __init__(self, props: Sequence[float]) -> None:
        self.props = [max(p, EMPTY_BIN_FLOOR) for p in props]
        self.logs = [math.log(p) for p in self.props]


def psi_of_counts(counts: Sequence[int], reference: Reference) -> float:
    """PSI of bin ``counts`` against ``reference``; equal to ``psi(proportions(counts), ...)``.

    This is the hot path (thousands of features every tick), so it avoids building
    intermediate lists and re-taking the reference's logarithms.
    """
    total = sum(counts)
    inv = 1.0 / total if total else 0.0
    log = math.log
    result = 0.0
    for c, ref, log_ref in zip(counts, reference.props, reference.logs, strict=True):
        cur = c * inv
        if cur < EMPTY_BIN_FLOOR:
            cur = EMPTY_BIN_FLOOR
        result += (cur - ref) * (log(cur) - log_ref)
    return result


class SlidingBins:
    """Bin counts of the last ``ticks`` simulation ticks.

    Running totals are kept so adding a tick and reading the window cost
    O(bins), not O(bins * ticks).
    """

    __slots__ = ("_ticks", "_totals", "_window", "total")

    def __init__(self, bins: int, ticks: int) -> None:
        if ticks < 1:
            raise ValueError("the window needs at least one tick")
        self._ticks = ticks
        self._window: deque[list[int]] = deque()
        self._totals = [0] * bins
        #: Samples in the window.
        self.total = 0

    def push(self, counts: list[int]) -> None:
        """Add one tick's bin counts, dropping the oldest tick once the window is full."""
        totals = self._totals
        if len(counts) != len(totals):
            raise ValueError(f"expected {len(totals)} bins, got {len(counts)}")
        for i, c in enumerate(counts):
            totals[i] += c
        self.total += sum(counts)
        self._window.append(counts)
        if len(self._window) > self._ticks:
            old = self._window.popleft()
            for i, c in enumerate(old):
                totals[i] -= c
            self.total -= sum(old)

    def counts(self) -> list[int]:
        """Bin counts over the window."""
        return list(self._totals)

    def share(self, index: int) -> float:
        """Share of the window's samples in bin ``index`` (0 when the window is empty)."""
        return self._totals[index] / self.total if self.total else 0.0

    def psi(self, reference: Reference) -> float:
        """PSI of the window against ``reference``."""
        return psi_of_counts(self._totals, reference)
