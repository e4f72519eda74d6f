"""The simulated input features and their reference distributions.

Each feature is described in a latent space where it is normal (log of the amount,
log of tenure, logit of the country risk). Binning by reference deciles is invariant
under those monotone maps, so the simulation draws samples directly into decile bins
by inverse transform: statistically the same as drawing a value and binning it, at a
third of the cost, which matters at a thousand models.

Missing values get an eleventh bin of their own, so a feature going null moves its
PSI like any other shift of its distribution would.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from statistics import NormalDist

from lab.psi import Reference
from lab.sampling import cumulative

#: Drift monitoring uses the reference deciles as bins...
VALUE_BINS = 10
#: ...plus one bin for nulls, the last one.
NULL_BIN = VALUE_BINS
BINS = VALUE_BINS + 1


def decile_edges(reference: NormalDist) -> list[float]:
    """The nine inner edges splitting ``reference`` into ten equally likely bins."""
    return [reference.inv_cdf(i / VALUE_BINS) for i in range(1, VALUE_BINS)]


def bin_probabilities(dist: NormalDist, edges: list[float]) -> list[float]:
    """Probability that a draw from ``dist`` lands in each bin delimited by ``edges``."""
    cdfs = [0.0, *(dist.cdf(e) for e in edges), 1.0]
    return [hi - lo for lo, hi in itertools.pairwise(cdfs)]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One input feature: its reference distribution and its drifted one."""

    name: str
    reference: NormalDist
    #: Where the distribution goes under the ``drift`` fault.
    drifted: NormalDist
    #: Share of nulls in normal operation.
    null_ratio: float = 0.005
    #: Reference share of each of the BINS bins, nulls included.
    reference_props: list[float] = field(init=False)
    reference_bins: Reference = field(init=False)
    #: Cumulative value-bin probabilities (nulls excluded) for inverse-transform draws.
    reference_cum: list[float] = field(init=False)
    drifted_cum: list[float] = field(init=False)

    def __post_init__(self) -> None:
        edges = decile_edges(self.reference)
        values = bin_probabilities(self.reference, edges)
        props = [p * (1.0 - self.null_ratio) for p in values] + [self.null_ratio]
        drifted = bin_probabilities(self.drifted, edges)
        # Frozen dataclass: derived tables are set once, here.
        object.__setattr__(self, "reference_props", props)
        object.__setattr__(self, "reference_bins", Reference(props))
        object.__setattr__(self, "reference_cum", cumulative(values))
        object.__setattr__(self, "drifted_cum", cumulative(drifted))


def _shifted(dist: NormalDist, sigmas: float) -> NormalDist:
    return NormalDist(dist.mean + sigmas * dist.stdev, dist.stdev)


_AMOUNT = NormalDist(3.5, 1.0)  # ln(amount): a median amount of about 33
_TENURE = NormalDist(5.5, 0.8)  # ln(tenure in days): about 250 days
_RISK = NormalDist(-1.5, 0.7)  # logit(country risk): about 0.18

#: The features every simulated model receives, with "hard" drifts of 2-2.5 sigma.
SPECS: dict[str, FeatureSpec] = {
    "amount": FeatureSpec("amount", _AMOUNT, _shifted(_AMOUNT, 2.5)),
    "tenure_days": FeatureSpec("tenure_days", _TENURE, _shifted(_TENURE, -2.0)),
    "country_risk": FeatureSpec("country_risk", _RISK, _shifted(_RISK, 2.0)),
}
