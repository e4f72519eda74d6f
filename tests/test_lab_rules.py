"""The lab's Prometheus rules: valid, and covered by promtool unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parent.parent / "lab" / "rules"
LAB_SLIS = {
    sli["name"]
    for sli in yaml.safe_load(
        (RULES.parent / "templates" / "mlconsole.yaml").read_text().replace("${", "$")
    )["slis"]
}
RULE_FILES = [RULES / "recording.yml", RULES / "alerts.yml"]

RECORDING_RULES = {
    "mlc:latency_p95_seconds:rate1m",
    "mlc:latency_p99_seconds:rate1m",
    "mlc:error_ratio:rate10s",
    "mlc:error_ratio:rate30s",
    "mlc:error_ratio:rate1m",
    "mlc:error_ratio:rate6m",
    "mlc:availability:rate1m",
    "mlc:latency_slow_ratio:rate10s",
    "mlc:latency_slow_ratio:rate30s",
    "mlc:latency_slow_ratio:rate1m",
    "mlc:latency_slow_ratio:rate6m",
    "mlc:drift_psi:max",
    "mlc:feature_null_ratio:max",
    "mlc:data_freshness_seconds",
    "mlc:pipeline_success:ratio_rate1m",
    "mlc:pipeline_last_success_age_seconds",
}
ALERTS = {
    "ModelErrorBudgetBurn": ("page", "model", "model-regression"),
    "ModelLatencyBudgetBurn": ("page", "infra", "latency-saturation"),
    "ModelFeatureDrift": ("ticket", "data", "data-drift"),
    "ModelFeatureNulls": ("page", "data", "schema-change"),
    "ModelFeaturesStale": ("ticket", "data", "stale-features"),
    "ModelPipelineFailing": ("ticket", "data", "schema-change"),
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (Debian package: prometheus)")
    return path


def rules(kind: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(r for r in group["rules"] if kind in r)
    return found


def test_promtool_check_rules() -> None:
    run = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_unit_tests_pass() -> None:
    run = subprocess.run(
        [promtool(), "test", "rules", "rules_test.yml"],
        capture_output=True, text=True, timeout=60, cwd=RULES,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_rule_names_are_exactly_the_documented_ones() -> None:
    assert {r["record"] for r in rules("record")} == RECORDING_RULES
    assert {r["alert"] for r in rules("alert")} == set(ALERTS)


def test_every_recording_rule_keeps_one_series_per_model() -> None:
    for rule in rules("record"):
        expr = str(rule["expr"])
        aggregations = re.findall(r"\b(?:sum|max) by \(([^)]*)\)", expr)
        uses_recorded = "mlc:" in expr
        assert aggregations or uses_recorded, rule["record"]
        for by in aggregations:
            assert "model" in [label.strip() for label in by.split(",")], rule["record"]


def test_alerts_carry_labels_and_annotations() -> None:
    for rule in rules("alert"):
        severity, cause, runbook = ALERTS[str(rule["alert"])]
        labels = rule["labels"]
        annotations = rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels == {"severity": severity, "cause_hint": cause, "sli": labels.get("sli")}
        # The SLI an alert is about must be a dashboard SLI of the lab config.
        assert labels["sli"] in LAB_SLIS, rule["alert"]
        assert annotations["runbook"] == runbook
        assert "{{ $labels.model }}" in annotations["summary"]
        assert "$value" in annotations["summary"]


def test_every_rule_is_exercised_by_the_unit_tests() -> None:
    tests = yaml.safe_load((RULES / "rules_test.yml").read_text())
    exprs = {t["expr"] for case in tests["tests"] for t in case.get("promql_expr_test", [])}
    alerts = {
        t["alertname"]
        for case in tests["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert exprs >= RECORDING_RULES
    assert alerts == set(ALERTS)
