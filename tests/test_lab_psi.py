"""PSI, its sliding window and the simulation's random draws."""

from __future__ import annotations

import math
import random

import pytest

from lab.features import BINS, NULL_BIN, SPECS
from lab.psi import EMPTY_BIN_FLOOR, Reference, SlidingBins, proportions, psi, psi_of_counts
from lab.sampling import binomial, cumulative, draw_bins


def test_psi_of_identical_distributions_is_zero() -> None:
    ref = [0.1] * 10
    assert psi(ref, ref) == 0.0


def test_psi_matches_the_formula() -> None:
    cur, ref = [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]
    expected = (0.2 - 0.3) * math.log(0.2 / 0.3) + (0.5 - 0.4) * math.log(0.5 / 0.4)
    assert psi(cur, ref) == pytest.approx(expected)
    assert psi(cur, ref) > 0


def test_psi_floors_empty_bins() -> None:
    # An empty bin counts as 1e-4, so the result is finite and large.
    value = psi([0.0, 1.0], [0.5, 0.5])
    expected = (EMPTY_BIN_FLOOR - 0.5) * math.log(EMPTY_BIN_FLOOR / 0.5) + 0.5 * math.log(2)
    assert value == pytest.approx(expected)


def test_psi_rejects_mismatched_bins() -> None:
    with pytest.raises(ValueError):
        psi([0.5, 0.5], [1.0])


def test_psi_of_counts_equals_psi_of_proportions() -> None:
    ref = [0.05, 0.15, 0.3, 0.5]
    counts = [0, 12, 40, 8]
    assert psi_of_counts(counts, Reference(ref)) == pytest.approx(psi(proportions(counts), ref))


def test_psi_of_an_empty_window_is_maximal_not_an_error() -> None:
    assert psi_of_counts([0, 0, 0], Reference([0.2, 0.3, 0.5])) > 5


def test_sliding_window_forgets_old_ticks() -> None:
    window = SlidingBins(bins=3, ticks=2)
    window.push([1, 0, 0])
    window.push([0, 1, 0])
    window.push([0, 0, 4])
    assert window.counts() == [0, 1, 4]
    assert window.total == 5
    assert window.share(2) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        window.push([1, 2])


def test_reference_bins_are_deciles_plus_nulls() -> None:
    for spec in SPECS.values():
        assert len(spec.reference_props) == BINS
        assert spec.reference_props[NULL_BIN] == spec.null_ratio
        assert sum(spec.reference_props) == pytest.approx(1.0)
        for share in spec.reference_props[:NULL_BIN]:
            assert share == pytest.approx(0.1 * (1 - spec.null_ratio))


def test_drifted_distribution_is_far_from_the_reference() -> None:
    spec = SPECS["amount"]
    drifted = [b - a for a, b in zip([0.0, *spec.drifted_cum], spec.drifted_cum, strict=False)]
    assert psi([*drifted, 0.0], spec.reference_props) > 1.0


@pytest.mark.parametrize(("n", "p"), [(50, 0.002), (50, 0.6), (30, 0.99), (10, 0.5)])
def test_binomial_has_the_right_mean(n: int, p: float) -> None:
    rng = random.Random(7)
    draws = [binomial(n, p, rng) for _ in range(4000)]
    assert all(0 <= d <= n for d in draws)
    assert sum(draws) / len(draws) == pytest.approx(n * p, abs=0.05 * n * max(p, 0.05))


def test_binomial_edge_cases() -> None:
    rng = random.Random(1)
    assert binomial(0, 0.5, rng) == 0
    assert binomial(10, 0.0, rng) == 0
    assert binomial(10, 1.0, rng) == 10


def test_draw_bins_follows_the_weights() -> None:
    rng = random.Random(3)
    cum = cumulative([0.5, 0.25, 0.25])
    assert cum[-1] == 1.0
    counts = draw_bins(cum, 20_000, rng)
    assert sum(counts) == 20_000
    assert [c / 20_000 for c in counts] == pytest.approx([0.5, 0.25, 0.25], abs=0.02)
