"""Fault effects on the simulation, driven tick by tick (no sleeping)."""

from __future__ import annotations

import pytest

from lab.catalog import (
    BAD_VERSION,
    DRIFT_FEATURE,
    FALLBACK_VERSION,
    FAULTS,
    FEATURES,
    GOOD_VERSION,
    SCHEMA_BREAK_FEATURE,
    model_names,
)
from lab.simulation import (
    BROKEN,
    DURATION_BOUNDS,
    FALLBACK,
    HEALTHY,
    Behaviour,
    FeatureStream,
    ModelSim,
    Simulation,
    UnknownFaultError,
    UnknownModelError,
    tuning_for,
)

START = 1_000_000.0
MODEL = "fraud-detector"


def make_sim(models: int = 3, seed: int = 42) -> Simulation:
    return Simulation(model_names(models), start=START, seed=seed)


def run(sim: Simulation, ticks: int) -> None:
    for _ in range(ticks):
        sim.step(sim.now + 1.0)


def error_ratio(m: ModelSim, version: str | None = None) -> float:
    errors = sum(c for (v, s), c in m.requests.items() if s == "500" and version in (None, v))
    total = sum(c for (v, _), c in m.requests.items() if version in (None, v))
    return errors / total


def slow_share(m: ModelSim, above: float) -> float:
    """Share of requests in buckets strictly above the ``above`` bound."""
    index = DURATION_BOUNDS.index(above)
    return sum(m.duration_counts[index + 1 :]) / m.duration_count


def feature(m: ModelSim, name: str) -> FeatureStream:
    return next(f for f in m.features if f.spec.name == name)


@pytest.fixture(scope="module")
def healthy() -> Simulation:
    sim = make_sim()
    run(sim, 120)
    return sim


def test_model_names() -> None:
    assert model_names(2) == ["fraud-detector", "churn-predictor"]
    assert model_names(5)[3:] == ["model-0004", "model-0005"]
    with pytest.raises(ValueError):
        model_names(0)


def test_healthy_models_behave(healthy: Simulation) -> None:
    for m in healthy.models:
        assert m.version == GOOD_VERSION
        assert error_ratio(m) < 0.01
        # p99 well under 250 ms: under 1% of requests above 0.1 s.
        assert slow_share(m, 0.1) < 0.01
        assert [f.spec.name for f in m.features] == list(FEATURES)
        for f in m.features:
            assert f.psi < 0.05
            assert f.null_ratio < 0.02
        assert healthy.now - m.features_updated_at <= 3.0
        assert healthy.now - m.pipeline_last_success <= 11.0
        assert m.pipeline_runs["success"] >= 20


def test_requests_and_histograms_are_consistent(healthy: Simulation) -> None:
    for m in healthy.models:
        assert sum(m.requests.values()) == m.duration_count == m.score_count
        assert sum(m.duration_counts) == m.duration_count
        assert sum(m.score_counts) == m.score_count
        assert 0 < m.duration_sum < m.duration_count
        assert 0 < m.score_sum < m.score_count


def test_drift_raises_psi_above_0_25_within_10_ticks() -> None:
    sim = make_sim()
    run(sim, 30)
    sim.inject("drift", MODEL)
    run(sim, 10)
    target = sim.model(MODEL)
    assert feature(target, DRIFT_FEATURE).psi > 0.25
    others = [f for f in target.features if f.spec.name != DRIFT_FEATURE]
    assert all(f.psi < 0.1 for f in others)
    assert all(f.psi < 0.1 for m in sim.models if m.name != MODEL for f in m.features)


def test_schema_break_nulls_a_feature_and_fails_the_pipeline() -> None:
    sim = make_sim()
    run(sim, 30)
    target = sim.model(MODEL)
    successes = target.pipeline_runs["success"]
    sim.inject("schema-break", MODEL)
    run(sim, 5)
    broken = feature(target, SCHEMA_BREAK_FEATURE)
    assert broken.psi > 0.25  # the PSI jumps within seconds
    run(sim, 25)
    assert broken.null_ratio > 0.95
    assert broken.psi > 1.0
    assert target.pipeline_runs["success"] == successes
    assert target.pipeline_runs["failed"] >= 4


def test_bad_deploy_serves_version_4_with_most_requests_failing() -> None:
    sim = make_sim()
    run(sim, 10)
    sim.inject("bad-deploy", MODEL)
    run(sim, 30)
    target = sim.model(MODEL)
    assert target.version == BAD_VERSION
    assert error_ratio(target, BAD_VERSION) == pytest.approx(0.6, abs=0.06)
    # Scores collapse: almost everything the bad model returns is under 0.1.
    before = make_sim()
    run(before, 40)
    healthy_low = before.model(MODEL).score_counts[0] / before.model(MODEL).score_count
    assert target.score_counts[0] / target.score_count > healthy_low + 0.3
    assert sim.model("churn-predictor").version == GOOD_VERSION


def test_latency_fault_makes_most_requests_take_half_a_second_to_two() -> None:
    sim = make_sim()
    sim.inject("latency", MODEL)
    run(sim, 30)
    counts = sim.model(MODEL).duration_counts
    i_05, i_2_5 = DURATION_BOUNDS.index(0.5), DURATION_BOUNDS.index(2.5)
    in_range = sum(counts[i_05 + 1 : i_2_5 + 1])  # (0.5, 2.5]
    assert in_range / sim.model(MODEL).duration_count > 0.9


def test_pipeline_fail_stops_the_last_success() -> None:
    sim = make_sim()
    run(sim, 10)
    sim.inject("pipeline-fail", MODEL)
    target = sim.model(MODEL)
    frozen, successes = target.pipeline_last_success, target.pipeline_runs["success"]
    run(sim, 40)
    assert target.pipeline_last_success == frozen
    assert target.pipeline_runs["success"] == successes
    assert target.pipeline_runs["failed"] >= 6
    assert sim.now - sim.model("recommender").pipeline_last_success < 11


def test_stale_features_stop_refreshing() -> None:
    sim = make_sim()
    run(sim, 10)
    sim.inject("stale-features", MODEL)
    frozen = sim.model(MODEL).features_updated_at
    run(sim, 40)
    assert sim.model(MODEL).features_updated_at == frozen
    assert sim.now - sim.model("churn-predictor").features_updated_at <= 3.0


def test_reset_clears_faults_and_rolls_back() -> None:
    sim = make_sim()
    for fault in FAULTS:
        sim.inject(fault, MODEL)
    assert {f["fault"] for f in sim.active_faults()} == set(FAULTS)
    sim.reset()
    assert sim.active_faults() == []
    assert sim.model(MODEL).version == GOOD_VERSION
    run(sim, 40)
    target = sim.model(MODEL)
    assert all(f.psi < 0.05 for f in target.features)
    assert error_ratio(target, GOOD_VERSION) < 0.01


def test_unknown_fault_or_model_is_rejected() -> None:
    sim = make_sim()
    with pytest.raises(UnknownFaultError):
        sim.inject("meteor", MODEL)
    with pytest.raises(UnknownModelError):
        sim.inject("drift", "no-such-model")


def test_sample_sizes_shrink_at_scale_but_keep_psi_meaningful() -> None:
    small, large = tuning_for(3), tuning_for(1000)
    assert large.requests_per_tick < small.requests_per_tick
    assert large.feature_samples_per_tick * large.window_ticks >= 1000


def test_same_seed_same_world() -> None:
    a, b = make_sim(seed=5), make_sim(seed=5)
    run(a, 5)
    run(b, 5)
    assert a.model(MODEL).requests == b.model(MODEL).requests
    assert [f.psi for f in a.model(MODEL).features] == [f.psi for f in b.model(MODEL).features]


# -- deploys, fallback and pipeline pause ---------------------------------------------


def new_requests(m: ModelSim, before: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    return {k: v - before.get(k, 0) for k, v in m.requests.items() if v - before.get(k, 0)}


def low_score_share(m: ModelSim, before: list[int]) -> float:
    counts = [c - b for c, b in zip(m.score_counts, before, strict=True)]
    return counts[0] / sum(counts)


def test_deploy_serves_a_version_with_the_behaviour_it_is_given() -> None:
    sim = make_sim()
    run(sim, 5)
    target = sim.model(MODEL)
    scores_before = list(target.score_counts)
    sim.deploy(MODEL, "7", Behaviour(error_ratio=0.3, scores="collapsed"))
    assert (target.version, target.label) == ("7", "7")
    run(sim, 40)
    assert error_ratio(target, "7") == pytest.approx(0.3, abs=0.05)
    assert low_score_share(target, scores_before) > 0.9
    assert sim.model("churn-predictor").version == GOOD_VERSION
    # Without a behaviour, a version behaves as built in: only the bad one is broken.
    sim.deploy(MODEL, BAD_VERSION)
    assert target.behaviour == BROKEN
    sim.deploy(MODEL, "2")
    assert target.behaviour == HEALTHY


def test_with_external_deploys_bad_deploy_is_recorded_and_a_rollback_clears_it() -> None:
    sim = Simulation(model_names(3), start=START, seed=3, external_deploys=True)
    sim.inject("bad-deploy", MODEL)
    target = sim.model(MODEL)
    assert target.version == GOOD_VERSION  # the registry decides, not the fault
    assert [f["fault"] for f in sim.active_faults()] == ["bad-deploy"]
    sim.deploy(MODEL, BAD_VERSION, BROKEN)  # the service saw the alias move
    assert sim.active_faults()
    sim.deploy(MODEL, GOOD_VERSION, HEALTHY)  # rolled back in the registry
    assert sim.active_faults() == []
    sim.deploy(MODEL, BAD_VERSION, BROKEN)
    sim.reset()
    assert target.version == BAD_VERSION  # reset leaves deploys to the registry


def test_fallback_serves_reliably_fast_and_flat_under_its_own_label() -> None:
    sim = make_sim()
    sim.inject("bad-deploy", MODEL)
    sim.inject("latency", MODEL)
    run(sim, 5)
    target = sim.model(MODEL)
    before = dict(target.requests)
    durations_before, scores_before = list(target.duration_counts), list(target.score_counts)
    sim.set_fallback(MODEL, True)
    assert target.label == FALLBACK_VERSION and target.version == BAD_VERSION
    run(sim, 40)
    new = new_requests(target, before)
    assert {v for v, _ in new} == {FALLBACK_VERSION}
    assert new.get((FALLBACK_VERSION, "500"), 0) / sum(new.values()) < 0.02
    fast = DURATION_BOUNDS.index(0.025)
    durations = [c - b for c, b in zip(target.duration_counts, durations_before, strict=True)]
    assert sum(durations[: fast + 1]) / sum(durations) > 0.95  # the latency fault is bypassed
    # Flat: no score bucket holds a big share, unlike the model's peaked distribution.
    scores = [c - b for c, b in zip(target.score_counts, scores_before, strict=True)]
    assert max(scores) / sum(scores) < 0.15
    healthy = sim.model("churn-predictor").score_counts
    assert max(healthy) / sum(healthy) > 0.2
    sim.set_fallback(MODEL, False)
    assert target.label == BAD_VERSION


def test_a_paused_pipeline_does_not_run_at_all() -> None:
    sim = make_sim()
    sim.inject("pipeline-fail", MODEL)
    run(sim, 10)
    target = sim.model(MODEL)
    sim.set_paused(MODEL, True)
    runs, last = dict(target.pipeline_runs), target.pipeline_last_success
    run(sim, 40)
    assert target.pipeline_runs == runs  # neither failures nor successes
    assert target.pipeline_last_success == last
    assert sim.model("recommender").pipeline_runs["success"] > 6
    sim.set_paused(MODEL, False)
    run(sim, 12)
    assert target.pipeline_runs["failed"] > runs["failed"]


def test_reset_turns_fallbacks_off_and_resumes_pipelines() -> None:
    sim = make_sim()
    sim.set_fallback(MODEL, True)
    sim.set_paused("recommender", True)
    sim.reset()
    assert not any(m.fallback or m.paused for m in sim.models)
    assert sim.model(MODEL).label == GOOD_VERSION
    with pytest.raises(UnknownModelError):
        sim.set_fallback("no-such-model", True)
    with pytest.raises(UnknownModelError):
        sim.set_paused("no-such-model", True)


def test_behaviours_are_checked() -> None:
    assert FALLBACK.scores == "flat" and FALLBACK.error_ratio == HEALTHY.error_ratio
    with pytest.raises(ValueError, match="within"):
        Behaviour(error_ratio=1.5)
    with pytest.raises(ValueError, match="unknown score distribution"):
        Behaviour(scores="bimodal")
