"""Every ``--json`` output writes its times one way: ISO 8601 UTC with milliseconds
(``2026-11-23T03:00:05.000Z``), never Unix seconds. Durations stay numbers of seconds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from console.actions.executor import Executor
from console.actions.kinds import build_action
from console.audit.log import AuditLog
from console.cli.main import main
from console.incidents.timeline import utc
from console.sources.snapshot import Snapshot
from console.times import iso
from console.triage.runbook import Runbook
from console.triage.store import Store
from console.triage.walk import Walk
from lab.status import LabStatus
from tests.builders import NOW, snapshot
from tests.test_actions import world  # noqa: F401  (the fixture)
from tests.test_incident_cli import CONFIG_TEXT, T0
from tests.test_incident_cli import seeded as seeded
from tests.test_incident_cli import store as store
from tests.test_triage import Scripted
from tests.test_triage import runbook as runbook

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
#: Keys that hold a moment in time wherever they appear.
TIME_KEY = re.compile(r"^(at|since|taken_at|last_success|last_attempt|quiet_since)$|_at$")


def times_in(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (path, value) under a time key, anywhere in a JSON document; and any
    ``ts`` (Unix seconds beside an ISO time) as a finding of its own."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "ts" or TIME_KEY.search(str(key)):
                found.append((where, item))
            found.extend(times_in(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(times_in(item, f"{path}[{index}]"))
    return found


def assert_iso_times(doc: Any, *, at_least: int) -> None:
    found = times_in(doc)
    wrong = [
        (where, v)
        for where, v in found
        if where.endswith(".ts") or not (v is None or (isinstance(v, str) and ISO.match(v)))
    ]
    assert not wrong, wrong
    assert sum(isinstance(v, str) for _, v in found) >= at_least, found


def test_status_json() -> None:
    snap: Snapshot = snapshot()
    doc = json.loads(json.dumps(snap.as_dict(NOW)))
    # taken_at, each source's last_success, each alert's starts_at
    assert_iso_times(doc, at_least=3)
    assert doc["sources"]["alertmanager"]["last_success"] == utc(NOW - 1)
    assert isinstance(doc["sources"]["alertmanager"]["age_seconds"], float)  # a duration


def test_status_json_from_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG_TEXT.format(store=tmp_path / "store.db"))
    assert main(["-c", str(config), "status", "--json", "--wait", "1"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert_iso_times(doc, at_least=2)  # taken_at, the source's last_attempt
    assert doc["sources"]["alertmanager"]["last_success"] is None


def test_incident_list_show_and_audit_list_json(
    tmp_path: Path,
    seeded: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "mlconsole.yaml"
    config.write_text(CONFIG_TEXT.format(store=seeded))
    log = AuditLog(seeded.with_name("audit.db"))
    try:
        log.append(
            "intent", actor="ann", action="rollback", params={}, incident="INC-1", at=T0 + 100.25
        )
    finally:
        log.close()

    assert main(["-c", str(config), "incident", "list", "--no-sync", "--json", "--all"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert_iso_times(listed, at_least=6)
    assert listed[1]["alert_started_at"] == "2026-11-23T03:00:00.000Z"

    assert main(["-c", str(config), "incident", "show", "INC-1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert_iso_times(shown, at_least=6)
    assert [e["at"] for e in shown["timeline"]][-1] == "2026-11-23T03:01:40.250Z"

    assert main(["audit", "list", "--db", str(seeded.with_name("audit.db")), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert_iso_times(entry, at_least=1)
    assert entry["at"] == "2026-11-23T03:01:40.250Z"


async def test_runbook_run_json(runbook: Runbook, tmp_path: Path) -> None:
    walk = Walk.start(
        runbook,
        {"model": "m"},
        Store(tmp_path / "s.db"),
        Scripted({"drift_psi": 0.4, "null_ratio": 0.0}),
        clock=lambda: T0 + 0.5,
    )
    await walk.advance()
    doc = json.loads(json.dumps(walk.as_dict()))
    assert_iso_times(doc, at_least=1)
    assert doc["evidence"][0]["at"] == "2026-11-23T03:00:00.500Z"


async def test_action_json(world: dict[str, Any]) -> None:  # noqa: F811
    ctx, audit = world["ctx"], world["audit"]
    action = build_action(
        ctx,
        "silence",
        {"matchers": [{"name": "model", "value": "fraud-detector"}], "comment": "c"},
    )
    report = await Executor(ctx, audit).run(action, await action.plan())
    doc = json.loads(json.dumps(report.as_dict(), default=str))
    assert_iso_times(doc, at_least=1)  # the silence's ends_at
    assert ISO.match(doc["result"]["ends_at"])


def test_lab_status_json() -> None:
    status = LabStatus(
        state_dir=Path("/nowhere"),
        recorded=True,
        faults=[{"model": "fraud-detector", "fault": "bad-deploy", "since": T0 + 1.5}],
    )
    doc = json.loads(json.dumps(status.to_json(iso)))
    assert_iso_times(doc, at_least=1)
    assert doc["faults"][0]["since"] == "2026-11-23T03:00:01.500Z"
