"""The console against the scale lab: real VictoriaMetrics and Alertmanager, the
synthetic series imported and appended by the feeder (started once, in ``scale_lab``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from console.config.loader import load_config
from console.sources.build import build_adapters
from console.sources.poller import Poller
from lab import procs, scale
from lab.control import load
from lab.scale import KIND_ALERTS, Fleet, alert_rules
from lab.state import LabInfo
from tests.conftest import _BASE as BASE
from tests.conftest import SCALE_TEST_BREACHING, SCALE_TEST_MODELS

pytestmark = pytest.mark.integration

T = TypeVar("T")
DEADLINE = 30.0


def fleet() -> Fleet:
    return Fleet.of(SCALE_TEST_MODELS, SCALE_TEST_BREACHING)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=120, check=False
    )


def test_status_json_shows_every_model_sli_and_breaching_alert(scale_lab: LabInfo) -> None:
    result = run(
        "-m", "console.cli.main", "--config", str(scale_lab.config_path), "status", "--json"
    )
    snapshot = json.loads(result.stdout)
    assert snapshot["sources"]["prometheus"]["last_error"] is None
    assert snapshot["sources"]["prometheus"]["state"] == "ok"
    assert sorted(snapshot["models"]) == fleet().models
    rules = alert_rules()
    slis = [s["name"] for s in snapshot["slis"]]
    for index, model in enumerate(fleet().models):
        entry = snapshot["models"][model]
        assert sorted(entry["slis"]) == sorted(slis)
        for reading in entry["slis"].values():
            assert isinstance(reading["value"], float), (model, reading)
            # More than the one point just read: the sparkline was seeded from a range query.
            assert len(reading["history"]) > 1, (model, reading)
        kind = fleet().kinds.get(index)
        firing = [(a["name"], a["firing"]) for a in entry["alerts"]]
        breaching = sorted(name for name, r in entry["slis"].items() if r["status"] == "breach")
        if kind is None:
            assert firing == []
            assert breaching == []
        else:
            name = KIND_ALERTS[kind][0]
            assert firing == [(name, True)]
            assert rules[name]["labels"]["sli"] in breaching
    assert len(snapshot["alerts"]) == len(fleet().kinds) == 5
    # Five of fifty models page or ticket: degraded, not down.
    assert result.returncode == 1, result.stderr


async def until(what: str, probe: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if value := await probe():
            return value
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out after {deadline:.0f}s waiting for {what}")


async def test_a_second_refresh_shows_the_points_appended_since(scale_lab: LabInfo) -> None:
    config = load_config(scale_lab.config_path)
    adapters, failures = build_adapters(config)
    assert failures == {}
    poller = Poller(config, {"prometheus": adapters["prometheus"]})
    try:
        await poller.refresh("prometheus")
        first = {k: r.value for k, r in poller.snapshot.readings.items()}
        assert len(first) == SCALE_TEST_MODELS * len(config.slis)
        assert all(v is not None for v in first.values())
        appended = (scale.read_state(scale_lab.state_dir) or {})["last_append"]

        async def fed() -> bool:
            state = scale.read_state(scale_lab.state_dir) or {}
            return bool(state.get("last_append", 0) > appended)

        await until("the feeder to append a fresh point to every series", fed)

        async def moved() -> dict[tuple[str, str], float | None]:
            await poller.refresh("prometheus")
            now = {k: r.value for k, r in poller.snapshot.readings.items()}
            changed = {k: v for k, v in now.items() if v != first[k]}
            return changed if len(changed) > len(first) // 2 else {}

        changed = await until("the console to read the new points", moved)
        assert set(changed) <= set(first)
        assert poller.snapshot.sources["prometheus"].last_error is None
    finally:
        await poller.stop()


def test_lab_status_shows_the_scale_mode_and_its_counts(scale_lab: LabInfo) -> None:
    result = run(
        "-m", "console.cli.main", "lab", "status", "--state-dir", str(scale_lab.state_dir), "--json"
    )
    status = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    assert status["mode"] == "scale"
    assert status["healthy"] is True
    assert sorted(status["components"]) == ["alertmanager", "feeder", "victoria"]
    counts = status["scale"]
    assert counts["models"] == SCALE_TEST_MODELS
    assert counts["breaching"] == counts["alerts"] == 5
    assert counts["series"] == SCALE_TEST_MODELS * len(scale.METRICS)
    assert counts["samples_imported"] == counts["series"] * counts["history_points"]
    assert counts["ready"] is True

    text = run("-m", "console.cli.main", "lab", "status", "--state-dir", str(scale_lab.state_dir))
    assert "scale lab (VictoriaMetrics, synthetic series) up" in text.stdout
    assert "5 of 50 models breaching, 450 series" in text.stdout


def test_faults_are_refused_in_the_scale_lab(scale_lab: LabInfo) -> None:
    result = run(
        "-m", "console.cli.main", "lab", "inject", "drift", "--state-dir", str(scale_lab.state_dir)
    )
    assert result.returncode == 1
    assert result.stderr.startswith("mlconsole lab: the scale lab runs no model service")
    assert "Traceback" not in result.stderr


def test_up_and_down_from_the_command_line(tmp_path: Path) -> None:
    state_dir = str(tmp_path / "lab")
    ports = ["--alertmanager-port", str(BASE + 96), "--victoria-port", str(BASE + 430)]
    up = run(
        "-m", "console.cli.main", "lab", "up", "--scale", "3", "--state-dir", state_dir, *ports
    )
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout == f"{tmp_path / 'lab' / 'mlconsole.yaml'}\n"
        assert "scale lab up: 3 models" in up.stderr
        assert "0 of 3 models breaching, 27 series; 1,647 samples of history imported" in up.stderr
        info = load(state_dir)
        assert info is not None
        records = list(info.processes.values())
    finally:
        down = run("-m", "console.cli.main", "lab", "down", "--state-dir", state_dir)
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith("lab stopped (feeder, alertmanager, victoria)")
    assert not any(procs.is_alive(r) for r in records)
