"""``mlconsole status`` shows what the dashboard shows: the same cells under the right
headers, at any width, on a terminal or piped."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rich.console import Console

from console.cli.status import render_status
from console.config.loader import load_config
from console.config.models import Config
from console.render.format import format_value
from console.sources.snapshot import Snapshot, snapshot_from_dict
from tests.faultserver import Reply, fault_server

DATA = Path(__file__).parent / "data"


def lab_snapshot() -> tuple[Config, Snapshot]:
    """A snapshot recorded from the real lab after `inject bad-deploy` (serving column
    included), its fraud-detector on its fallback."""
    config = load_config(DATA / "lab_config.yaml")
    snap = snapshot_from_dict(
        json.loads((DATA / "lab_bad_deploy.json").read_text()), tuple(config.slis)
    )
    switches = {role: dict(states) for role, states in snap.switches.items()}
    switches["fallback"]["fraud-detector"] = True
    return config, replace(snap, switches=switches)


def status_text(width: int) -> tuple[Config, Snapshot, str]:
    config, snap = lab_snapshot()
    out = io.StringIO()
    render_status(snap, config, snap.taken_at, Console(file=out, width=width, color_system=None))
    return config, snap, out.getvalue()


def blocks(text: str) -> list[list[str]]:
    """Each SLIs table as its lines (the title line left out)."""
    found: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("SLIs"):
            found.append([])
        elif found and (line.startswith("Alerts") or not line.strip()):
            break
        elif found:
            found[-1].append(line)
    return found


@pytest.mark.parametrize("width", [80, 120, 250])
def test_every_value_sits_under_its_own_header(width: int) -> None:
    config, snap, text = status_text(width)
    seen = set()
    for block in blocks(text):
        objectives, rows = block[1], block[2:]
        row = next(r for r in rows if r.startswith("fraud-detector"))
        # A column spans from the end of the header before it to the end of its own.
        ends = [objectives.index("serving") + len("serving")] if "serving" in objectives else [0]
        spans = {}
        for sli in config.slis:
            objective = str(sli.objective).split(" ", 1)
            label = f"{objective[0]} {format_value(float(objective[1]), sli.unit)}"
            if label in objectives:
                end = objectives.index(label) + len(label)
                spans[sli.name] = (max(e for e in ends if e <= end - len(label)), end)
                ends.append(end)
        for sli in config.slis:
            if sli.name not in spans:
                continue
            start, end = spans[sli.name]
            reading = snap.reading("fraud-detector", sli.name)
            assert reading is not None
            value = format_value(reading.value, sli.unit)
            assert value in row[start:end], (sli.name, row[start:end], text)
            seen.add(sli.name)
    assert seen == {s.name for s in config.slis}, text  # every SLI is shown somewhere


@pytest.mark.parametrize("width", [80, 100])
def test_at_80_columns_nothing_is_cut_and_the_breaches_lead(width: int) -> None:
    _, _, text = status_text(width)
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    first = blocks(text)[0]
    fraud = next(r for r in first if r.startswith("fraud-detector"))
    # What breaches is in the first block, beside the model's name, with the fallback.
    assert "Avail 44.9%" in fraud and "Errors 55.1%" in fraud
    assert "FALLBACK" in fraud
    assert "100.00%" in text  # the pipeline column, whole


def test_wide_status_has_the_dashboard_cells() -> None:
    _, _, text = status_text(250)
    (block,) = blocks(text)
    fraud = next(r for r in block if r.startswith("fraud-detector"))
    assert "FALLBACK" in fraud
    assert "55.1x" in fraud  # burn rate
    assert "▁" in fraud or "█" in fraud  # sparklines


def mlconsole(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MLCONSOLE_CONFIG": str(config), **env},
        timeout=120,
    )


@pytest.mark.integration
def test_status_reads_the_fallback_switch_of_the_real_lab(lab: Any) -> None:
    model = "model-0006"
    httpx.post(f"{lab.service_url}/admin/fallback", json={"model": model, "enabled": True})
    try:
        # Piped (not a terminal) at 80 columns, as `mlconsole status | less` sees it.
        run = mlconsole(lab.config_path, "status", COLUMNS="80")
    finally:
        httpx.post(f"{lab.service_url}/admin/fallback", json={"model": model, "enabled": False})
    assert run.returncode in (0, 1), run.stdout + run.stderr
    row = next(line for line in run.stdout.splitlines() if line.startswith(model))
    assert "FALLBACK" in row, run.stdout
    assert all(len(line) <= 80 for line in run.stdout.splitlines())
    assert "\x1b" not in run.stdout  # piped: no colour codes


@pytest.mark.integration
def test_a_slow_source_does_not_make_the_others_stale(lab: Any, tmp_path: Path) -> None:
    """Alertmanager answers at once and Prometheus takes longer than Alertmanager's
    stale_after: Alertmanager's data is as fresh as the command, not stale."""
    config = yaml.safe_load(lab.config_path.read_text())
    config["sources"]["alertmanager"]["stale_after"] = "1s"
    slow = Reply(
        body=json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": []}}
        ).encode(),
        delay=2.5,
    )
    with fault_server(*[slow] * 40) as server:
        config["sources"]["prometheus"]["url"] = server.url
        path = tmp_path / "slow-metrics.yaml"
        path.write_text(yaml.safe_dump(config))
        run = mlconsole(path, "status", "--json")
    body = json.loads(run.stdout)
    assert body["sources"]["prometheus"]["state"] == "ok", body["sources"]["prometheus"]
    assert body["sources"]["alertmanager"]["state"] == "ok", body["sources"]["alertmanager"]
    assert body["sources"]["alertmanager"]["age_seconds"] == 0


@pytest.mark.integration
def test_status_says_a_switch_source_is_down(lab: Any, tmp_path: Path) -> None:
    config = yaml.safe_load(lab.config_path.read_text())
    config["sources"]["serving"]["url"] = "http://127.0.0.1:9"  # nothing listens there
    path = tmp_path / "switch-down.yaml"
    path.write_text(yaml.safe_dump(config))
    run = mlconsole(path, "status", "--json")
    assert run.returncode == 3, run.stdout + run.stderr
    body = json.loads(run.stdout)
    assert body["sources"]["serving"]["state"] == "down"
    assert body["sources"]["pipelines"]["state"] == "ok"
