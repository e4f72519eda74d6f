"""Every lab fault, triaged by its shipped runbook against the real lab.

Each fault breaks a model of its own, all at once; each test waits for its
alert in Alertmanager, checks that the alert finds the right runbook, walks it
with ``mlconsole runbook run --alert FINGERPRINT``, answering the questions as
a responder looking at the lab would (runbooks/README.md), and checks the cause.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.alertmanager import AlertmanagerAdapter
from adapters.records import AlertRecord
from adapters.settings import SourceSettings
from console.triage.catalog import Catalog, runbook_dirs
from lab import control

pytestmark = pytest.mark.integration

DEADLINE = 150.0

# fault, model, alert, runbook, answers, cause
CASES = [
    (
        "drift",
        "churn-predictor",
        "ModelFeatureDrift",
        "data-drift",
        ["drift-cause=1", "real-shift-silence=skip", "drift-fallback=skip", "schema-pause=skip"],
        "data",
    ),
    (
        "schema-break",
        "model-0004",
        "ModelFeatureNulls",
        "schema-change",
        ["schema-pause=skip", "schema-fallback=skip", "schema-cause=1"],
        "data",
    ),
    (
        "pipeline-fail",
        "model-0005",
        "ModelPipelineFailing",
        "schema-change",
        ["pipeline-cause=5"],
        "data",
    ),
    (
        "stale-features",
        "model-0006",
        "ModelFeaturesStale",
        "stale-features",
        ["stale-fallback=skip", "stale-cause=1"],
        "data",
    ),
    (
        "bad-deploy",
        "fraud-detector",
        "ModelErrorBudgetBurn",
        "model-regression",
        ["regression-rollback=skip", "regression-cause=1"],
        "model",
    ),
    (
        "latency",
        "recommender",
        "ModelLatencyBudgetBurn",
        "latency-saturation",
        ["latency-fallback=skip", "latency-cause=3"],
        "infra",
    ),
]


@pytest.fixture(scope="module")
def faults(lab: Any) -> Any:
    control.reset(lab.state_dir)
    for fault, model, *_ in CASES:
        control.inject(lab.state_dir, fault, model)
    yield lab
    control.reset(lab.state_dir)


async def firing_alert(lab: Any, name: str, model: str) -> AlertRecord:
    adapter = AlertmanagerAdapter("alertmanager", SourceSettings(url=lab.alertmanager_url))
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            for alert in await adapter.alerts():
                if alert.name == name and alert.model == model and alert.state == "active":
                    return alert
            time.sleep(1)
    finally:
        await adapter.aclose()
    pytest.fail(f"{name} never fired for {model} within {DEADLINE}s")


@pytest.mark.parametrize(
    ("fault", "model", "alert_name", "runbook", "answers", "cause"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_fault_is_triaged_to_its_cause(
    faults: Any,
    tmp_path: Path,
    fault: str,
    model: str,
    alert_name: str,
    runbook: str,
    answers: list[str],
    cause: str,
) -> None:
    alert = await firing_alert(faults, alert_name, model)
    matched = Catalog.load(runbook_dirs(None)).for_alert(alert.labels, alert.annotations)
    assert [rb.id for rb in matched] == [runbook]

    args = [
        sys.executable,
        "-m",
        "console.cli.main",
        "runbook",
        "run",
        runbook,
        "--alert",
        alert.fingerprint,
        "--json",
        "--store",
        str(tmp_path / "store.db"),
    ]
    for answer in answers:
        args += ["--answer", answer]
    run = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLCONSOLE_CONFIG": str(faults.config_path)},
    )
    assert "Traceback" not in run.stderr, run.stderr
    result = json.loads(run.stdout)
    evidence = result["evidence"]
    assert result["conclusion"] is not None, json.dumps(result, indent=1)[:3000]
    assert result["conclusion"]["cause"] == cause, json.dumps(evidence, indent=1)[:3000]
    assert run.returncode == 0
    checks = [e for e in evidence if e["kind"] == "check"]
    # the alert's model label reached the PromQL (fleet-wide checks compare against others)
    assert checks and f'model="{model}"' in checks[0]["inputs"]["query"]
    assert all(e["decision"] in ("true", "false") for e in checks)  # no check failed
    assert evidence[-1]["kind"] == "conclude"
