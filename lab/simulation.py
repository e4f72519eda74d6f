"""The simulated production traffic of the lab's models, advanced one tick at a time.

The simulation is deterministic given its seed and the ``now`` values passed to
:meth:`Simulation.step`, so tests drive it directly without sleeping.

What a model serves is set by methods, never by I/O: :meth:`Simulation.deploy` puts a
version with its :class:`Behaviour` in service (the model service calls it when the
registry's champion alias moves), :meth:`Simulation.set_fallback` swaps the model for
a rule-based fallback, and :meth:`Simulation.set_paused` holds its retraining pipeline.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from dataclasses import dataclass, field

from lab.catalog import (
    BAD_VERSION,
    DRIFT_FEATURE,
    FALLBACK_VERSION,
    FAULTS,
    FEATURES,
    GOOD_VERSION,
    SCHEMA_BREAK_FEATURE,
)
from lab.features import BINS, NULL_BIN, SPECS, FeatureSpec
from lab.psi import SlidingBins
from lab.sampling import binomial, draw_bins

#: Upper bounds of the request latency histogram (seconds); +Inf is implicit.
DURATION_BOUNDS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Upper bounds of the prediction score histogram; +Inf is implicit.
SCORE_BOUNDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

NORMAL_ERROR_RATIO = 0.002
BAD_DEPLOY_ERROR_RATIO = 0.6
#: Latency is log-normal: (mean, stdev) of ln(seconds). Normal: median 30 ms, p99 ~75 ms.
NORMAL_LATENCY = (math.log(0.03), 0.4)
#: Under the latency fault: median 1 s, about 95% of requests within 0.5-2 s.
SLOW_LATENCY = (math.log(1.0), 0.35)
#: The rule-based fallback does a few lookups, no inference: median 8 ms.
FALLBACK_LATENCY = (math.log(0.008), 0.3)
#: Scores are logit-normal: (mean, stdev) of the logit. Normal: median score ~0.27.
NORMAL_SCORES = (-1.0, 1.0)
#: A bad model's scores collapse towards zero.
COLLAPSED_SCORES = (-4.5, 0.6)
#: The fallback's rules spread scores almost evenly over [0, 1].
FLAT_SCORES = (0.0, 1.7)
#: Score distributions by name, as a version's ``lab.scores`` registry tag names them.
SCORE_PROFILES: dict[str, tuple[float, float]] = {
    "normal": NORMAL_SCORES,
    "collapsed": COLLAPSED_SCORES,
    "flat": FLAT_SCORES,
}
SCHEMA_BREAK_NULL_RATIO = 0.99
FEATURE_REFRESH_SECONDS = 3.0
PIPELINE_PERIOD_SECONDS = 5.0
#: Even a healthy pipeline fails now and then.
PIPELINE_FLAKE_RATIO = 0.01


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a served version behaves: its error ratio, score distribution and latency."""

    error_ratio: float = NORMAL_ERROR_RATIO
    #: A key of :data:`SCORE_PROFILES`.
    scores: str = "normal"
    #: (mean, stdev) of ln(seconds).
    latency: tuple[float, float] = NORMAL_LATENCY

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_ratio <= 1.0:
            raise ValueError(f"error ratio {self.error_ratio!r} is not within [0, 1]")
        if self.scores not in SCORE_PROFILES:
            known = ", ".join(SCORE_PROFILES)
            raise ValueError(f"unknown score distribution {self.scores!r} (known: {known})")


#: A healthy model version.
HEALTHY = Behaviour()
#: The bad version: most requests fail and scores collapse.
BROKEN = Behaviour(error_ratio=BAD_DEPLOY_ERROR_RATIO, scores="collapsed")
#: The rule-based fallback: reliable and fast, but with a flat score distribution.
FALLBACK = Behaviour(scores="flat", latency=FALLBACK_LATENCY)


def builtin_behaviour(version: str) -> Behaviour:
    """How ``version`` behaves when no registry says otherwise: only the bad one is broken."""
    return BROKEN if version == BAD_VERSION else HEALTHY


@dataclass(frozen=True, slots=True)
class Tuning:
    """How many samples each model draws per tick, and the drift window length."""

    requests_per_tick: int
    feature_samples_per_tick: int
    window_ticks: int = 20


def tuning_for(model_count: int) -> Tuning:
    """Sample sizes for ``model_count`` models.

    Requests are the expensive draws (a latency and a score each), so there are fewer
    per model as models are added. Feature samples are cheap and stay at 50 per tick:
    a healthy feature's PSI is about 10 / (samples in the window) for its eleven bins
    (deciles and nulls), and a 1,000-sample window keeps even the worst of 3,000
    features (1,000 models) under 0.05.
    """
    requests = max(10, min(50, 10_000 // model_count))
    return Tuning(requests_per_tick=requests, feature_samples_per_tick=50)


class UnknownFaultError(ValueError):
    """The fault name is not one the lab knows."""


class UnknownModelError(ValueError):
    """The model is not one the lab simulates."""


@dataclass(slots=True)
class FeatureStream:
    """The recent inputs of one feature of one model, and their drift statistics."""

    spec: FeatureSpec
    window: SlidingBins
    psi: float = 0.0
    null_ratio: float = 0.0


@dataclass(slots=True)
class ModelSim:
    """Counters and gauges of one simulated model."""

    name: str
    features: list[FeatureStream]
    features_updated_at: float
    next_feature_refresh: float
    pipeline_last_success: float
    next_pipeline_run: float
    version: str = GOOD_VERSION
    behaviour: Behaviour = HEALTHY
    #: Whether the rule-based fallback answers instead of the model.
    fallback: bool = False
    #: Whether the retraining pipeline is held (no runs at all while it is).
    paused: bool = False
    #: Active faults and when each was injected.
    faults: dict[str, float] = field(default_factory=dict)
    #: Request counts by (version, status); zero-initialised so rate() sees the first errors.
    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Non-cumulative per-bucket counts; the last one is the +Inf bucket.
    duration_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BOUNDS) + 1))
    duration_sum: float = 0.0
    duration_count: int = 0
    score_counts: list[int] = field(default_factory=lambda: [0] * (len(SCORE_BOUNDS) + 1))
    score_sum: float = 0.0
    score_count: int = 0
    pipeline_runs: dict[str, int] = field(default_factory=lambda: {"success": 0, "failed": 0})

    @property
    def label(self) -> str:
        """The version label of what answers requests: the version, or ``fallback``."""
        return FALLBACK_VERSION if self.fallback else self.version

    @property
    def serving(self) -> Behaviour:
        """The behaviour of what answers requests."""
        return FALLBACK if self.fallback else self.behaviour

    def ensure_version_series(self) -> None:
        """Start the request counters of what answers requests at zero."""
        for status in ("200", "500"):
            self.requests.setdefault((self.label, status), 0)


class Simulation:
    """Traffic, data and pipelines of N models, plus the faults injected into them."""

    def __init__(
        self,
        models: list[str],
        *,
        start: float,
        seed: int | None = None,
        tuning: Tuning | None = None,
        external_deploys: bool = False,
    ) -> None:
        """``external_deploys``: versions change only through :meth:`deploy` (the model
        service follows a registry), so the ``bad-deploy`` fault is only recorded and
        :meth:`reset` leaves versions alone."""
        if not models:
            raise ValueError("the simulation needs at least one model")
        if len(set(models)) != len(models):
            raise ValueError("model names must be unique")
        self.external_deploys = external_deploys
        self.rng = random.Random(seed)
        self.tuning = tuning or tuning_for(len(models))
        self.now = start
        self.ticks = 0
        self.models: list[ModelSim] = [self._new_model(name, start) for name in models]
        self._by_name = {m.name: m for m in self.models}

    def _new_model(self, name: str, start: float) -> ModelSim:
        rng = self.rng
        streams = [
            FeatureStream(SPECS[f], SlidingBins(BINS, self.tuning.window_ticks)) for f in FEATURES
        ]
        # Models refresh and retrain at staggered offsets so a thousand of them do not
        # all run their periodic work in the same tick.
        model = ModelSim(
            name=name,
            features=streams,
            features_updated_at=start,
            next_feature_refresh=start + rng.uniform(0.0, FEATURE_REFRESH_SECONDS),
            pipeline_last_success=start,
            next_pipeline_run=start + rng.uniform(0.0, PIPELINE_PERIOD_SECONDS),
        )
        model.ensure_version_series()
        return model

    @property
    def model_names(self) -> list[str]:
        """Names of the simulated models, in order."""
        return [m.name for m in self.models]

    def model(self, name: str) -> ModelSim:
        """Return the model called ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownModelError(f"unknown model {name!r}") from None

    # -- deploys and switches ----------------------------------------------------

    def deploy(self, model: str, version: str, behaviour: Behaviour | None = None) -> None:
        """Serve ``version`` of ``model``, behaving as ``behaviour`` (default: built in).

        Moving off the bad version rolls a bad deploy back, which clears that fault.
        """
        target = self.model(model)
        if target.version == BAD_VERSION and version != BAD_VERSION:
            target.faults.pop("bad-deploy", None)
        target.version = version
        target.behaviour = builtin_behaviour(version) if behaviour is None else behaviour
        target.ensure_version_series()

    def set_fallback(self, model: str, enabled: bool) -> None:
        """Let the rule-based fallback answer for ``model`` (or the model again)."""
        target = self.model(model)
        target.fallback = enabled
        target.ensure_version_series()

    def set_paused(self, model: str, paused: bool) -> None:
        """Hold (or resume) ``model``'s retraining pipeline."""
        self.model(model).paused = paused

    # -- faults ---------------------------------------------------------------

    def inject(self, fault: str, model: str, now: float | None = None) -> None:
        """Activate ``fault`` on ``model`` (idempotent)."""
        if fault not in FAULTS:
            known = ", ".join(FAULTS)
            raise UnknownFaultError(f"unknown fault {fault!r} (known: {known})")
        target = self.model(model)
        if fault == "bad-deploy" and not self.external_deploys:
            self.deploy(model, BAD_VERSION)
        target.faults.setdefault(fault, self.now if now is None else now)

    def reset(self) -> None:
        """Clear every fault, turn fallbacks off and resume pipelines.

        Bad deploys are rolled back to the good version, unless deploys are external.
        """
        for m in self.models:
            m.faults.clear()
            m.fallback = False
            m.paused = False
            if not self.external_deploys:
                self.deploy(m.name, GOOD_VERSION)
            m.ensure_version_series()

    def active_faults(self) -> list[dict[str, object]]:
        """Active faults as ``{"model", "fault", "since"}`` records."""
        return [
            {"model": m.name, "fault": f, "since": since}
            for m in self.models
            if m.faults
            for f, since in m.faults.items()
        ]

    # -- time -------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Advance every model by one tick ending at ``now`` (unix seconds)."""
        self.now = now
        self.ticks += 1
        for m in self.models:
            self._step_requests(m)
            self._step_features(m)
            self._step_feature_store(m, now)
            self._step_pipeline(m, now)

    def _step_requests(self, m: ModelSim) -> None:
        rng = self.rng
        gauss = rng.gauss
        exp = math.exp
        base = self.tuning.requests_per_tick
        jitter = base // 5
        n = base + rng.randint(-jitter, jitter)
        behaviour = m.serving
        label = m.label

        errors = binomial(n, behaviour.error_ratio, rng)
        m.requests[(label, "500")] += errors
        m.requests[(label, "200")] += n - errors

        # The latency fault slows the model down; the fallback does not call the model.
        slow = "latency" in m.faults and not m.fallback
        mu, sigma = SLOW_LATENCY if slow else behaviour.latency
        latencies = [exp(gauss(mu, sigma)) for _ in range(n)]
        counts = m.duration_counts
        for x in latencies:
            # bisect_left puts x == bound in that bound's bucket, as Prometheus' "le" says.
            counts[bisect_left(DURATION_BOUNDS, x)] += 1
        m.duration_sum += sum(latencies)
        m.duration_count += n

        mu, sigma = SCORE_PROFILES[behaviour.scores]
        scores = [1.0 / (1.0 + exp(-gauss(mu, sigma))) for _ in range(n)]
        counts = m.score_counts
        for s in scores:
            counts[bisect_left(SCORE_BOUNDS, s)] += 1
        m.score_sum += sum(scores)
        m.score_count += n

    def _step_features(self, m: ModelSim) -> None:
        rng = self.rng
        k = self.tuning.feature_samples_per_tick
        drifting = "drift" in m.faults
        broken = "schema-break" in m.faults
        for stream in m.features:
            spec = stream.spec
            null_ratio = spec.null_ratio
            if broken and spec.name == SCHEMA_BREAK_FEATURE:
                null_ratio = SCHEMA_BREAK_NULL_RATIO
            drifted = drifting and spec.name == DRIFT_FEATURE
            cum = spec.drifted_cum if drifted else spec.reference_cum
            nulls = binomial(k, null_ratio, rng)
            counts = draw_bins(cum, k - nulls, rng)
            counts.append(nulls)  # the null bin comes last
            stream.window.push(counts)
            stream.psi = stream.window.psi(spec.reference_bins)
            stream.null_ratio = stream.window.share(NULL_BIN)

    def _step_feature_store(self, m: ModelSim, now: float) -> None:
        if now < m.next_feature_refresh:
            return
        m.next_feature_refresh = now + FEATURE_REFRESH_SECONDS
        if "stale-features" not in m.faults:
            m.features_updated_at = now

    def _step_pipeline(self, m: ModelSim, now: float) -> None:
        if now < m.next_pipeline_run:
            return
        m.next_pipeline_run = now + self.rng.uniform(0.9, 1.1) * PIPELINE_PERIOD_SECONDS
        if m.paused:
            return  # held: the run is skipped, neither a success nor a failure
        failed = (
            "pipeline-fail" in m.faults
            or "schema-break" in m.faults
            or self.rng.random() < PIPELINE_FLAKE_RATIO
        )
        if failed:
            m.pipeline_runs["failed"] += 1
        else:
            m.pipeline_runs["success"] += 1
            m.pipeline_last_success = now
