"""The whole loop against the real lab, driven by keys: a bad deploy pages, the
incident opens, it is acknowledged, the runbook concludes ``model``, the rollback
recovers the SLI in Prometheus, the incident is resolved and exported.

Every wait polls with a deadline; nothing asserts on wall-clock speed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from console.config.loader import load_config
from console.export.document import export_schema
from console.incidents.book import IncidentBook
from console.incidents.timeline import seconds_of, utc
from screens.action import ActionScreen
from screens.app import create_app
from screens.incident import IncidentScreen
from screens.incident_acts import TextScreen
from screens.runbook import RunbookScreen
from tests.test_integration_actions import (
    DEADLINE,
    MODEL,
    bad_deploy,
    champion,
    error_ratio,
    mlconsole,
    wait_for,
)
from tests.waits import until_live

pytestmark = pytest.mark.integration

ALERT = "ModelErrorBudgetBurn"
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def lab_clean(lab: Any) -> Any:
    from lab import control

    control.reset(lab.state_dir)
    yield lab
    control.reset(lab.state_dir)


def at_kind(events: list[dict[str, Any]], kind: str) -> float:
    return seconds_of(next(e["at"] for e in events if e["kind"] == kind)) or 0.0


def loop_config(lab: Any, tmp_path: Path) -> Path:
    data = yaml.safe_load(Path(lab.config_path).read_text())
    data["store"] = {"path": str(tmp_path / "store.db")}
    data["incidents"] = {"export_dir": str(tmp_path / "exports")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_the_whole_loop_from_page_to_postmortem(lab_clean: Any, tmp_path: Path) -> None:
    lab = lab_clean
    await asyncio.to_thread(bad_deploy, lab)  # 1. inject bad-deploy
    config_path = loop_config(lab, tmp_path)
    app = create_app(load_config(config_path), actor="pilot@test")
    async with app.run_test(size=(200, 50)) as pilot:

        async def until(what: str, probe: Callable[[], Any], deadline: float = DEADLINE) -> Any:
            return await until_live(pilot, probe, what, deadline)

        # 2. the page opens an incident by itself, and the dashboard shows it
        incident = await until(
            "the incident opened",
            lambda: next(
                (i for i in app.open_incidents if (i.model, i.alertname) == (MODEL, ALERT)),
                None,
            ),
        )
        assert incident.state == "triggered" and incident.severity == "page"
        await until("the session opened", lambda: app.session is not None)
        dashboard = app.screen
        alerts = dashboard.query_one("#alerts")
        keys = dashboard._alert_rows  # type: ignore[attr-defined]
        fingerprint = next(a.fingerprint for a in incident.alerts)
        await until("the alert listed", lambda: fingerprint in dashboard._alert_rows)  # type: ignore[attr-defined]
        keys = dashboard._alert_rows  # type: ignore[attr-defined]
        alerts.move_cursor(row=keys.index(fingerprint))
        alerts.focus()

        # 3. acknowledge (a key, not a silence): everyone sharing the store sees it
        await pilot.press("a")
        acked = await until(
            "acknowledged",
            lambda: next((i for i in app.open_incidents if i.ack_active), None),
        )
        assert acked.acked_by == "pilot@test" and acked.owner == "pilot@test"
        other = IncidentBook(tmp_path / "store.db")  # a second responder's view
        assert other.get(incident.number).state == "acknowledged"
        other.close()

        # 4. the runbook: checks run, then its action step rolls back (5.)
        await pilot.press("t")
        runbook = await until(
            "the runbook stops at the rollback",
            lambda: (
                isinstance(app.screen, RunbookScreen)
                and app.screen.walk.current.id == "regression-rollback"
                and app.screen
            ),
            deadline=60,
        )
        await pilot.press("1")
        plan = await until("the plan", lambda: isinstance(app.screen, ActionScreen) and app.screen)
        assert plan.plan.summary() == f"{MODEL}@champion: v4 → v3"
        await pilot.press("y")
        await until("the verdict", lambda: plan.stage == "done", deadline=120)
        assert plan.recovery is not None and plan.recovery.recovered, plan.recovery
        await pilot.press("escape")
        await until("back on the runbook", lambda: app.screen is runbook)
        await until("the cause question", lambda: runbook.walk.current.id == "regression-cause")
        await pilot.press("1")  # "the new model itself"
        await until("concluded", lambda: runbook.walk.concluded)
        assert runbook.walk.record.cause == "model"
        await pilot.press("escape")

        # 6. recovery, as Prometheus itself reports it
        assert champion(lab) == "3"
        await asyncio.to_thread(
            wait_for, "errors under 1% in Prometheus", lambda: (error_ratio(lab) or 1) < 0.01
        )

        # 7. resolve from the incident screen
        # The alert may have stopped firing by now: the model's row leads to its incident.
        await until("the dashboard", lambda: app.screen is dashboard)
        models = dashboard.query_one("#models")
        models.move_cursor(row=dashboard._model_rows.index(MODEL))  # type: ignore[attr-defined]
        models.focus()
        await pilot.press("i")
        screen = await until(
            "the incident screen", lambda: isinstance(app.screen, IncidentScreen) and app.screen
        )
        await until("its timeline read", lambda: screen.incident is not None and screen.events)
        assert screen.incident.state == "mitigated"
        await pilot.press("x")
        await until("the resolve prompt", lambda: isinstance(app.screen, TextScreen))
        await pilot.press(*"rolled back to v3", "enter")
        await until(
            "resolved",
            lambda: screen.incident is not None and screen.incident.state == "resolved",
        )

        # 8. export from the screen: Markdown and JSON side by side
        await pilot.press("e")
        exports = tmp_path / "exports"
        await until(
            "the export files",
            lambda: (
                (exports / f"{incident.id}.md").exists()
                and (exports / f"{incident.id}.json").exists()
            ),
        )

    doc = json.loads((exports / f"{incident.id}.json").read_text())
    jsonschema.Draft202012Validator(export_schema()).validate(doc)

    # The same export from the CLI, checked against the events it was built from.
    run = mlconsole(config_path, "incident", "show", incident.id, "--json")
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    events = shown["timeline"]
    kinds = [e["kind"] for e in events]
    for kind in (
        "sli.first_breach",
        "alert.firing",
        "incident.opened",
        "incident.acknowledged",
        "runbook.step",
        "action.intent",
        "action.result",
        "incident.mitigated",
        "sli.mitigation",
        "action.verify",
        "sli.recovery",
        "runbook.concluded",
        "incident.resolved",
    ):
        assert kind in kinds, (kind, kinds)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)  # ISO sorts as time
    concluded = next(e for e in events if e["kind"] == "runbook.concluded")
    assert concluded["data"]["cause"] == "model"
    assert doc["root_cause"]["cause"] == "model"

    # Impact comes from a range query of the SLI's own PromQL over the incident
    # window, kept once the incident was resolved; the export names the query.
    config_data = yaml.safe_load(config_path.read_text())
    sli_name = next(e for e in events if e["kind"] == "sli.first_breach")["data"]["sli"]
    own_query = next(s["query"] for s in config_data["slis"] if s["name"] == sli_name)
    assert "sli.impact" in kinds
    measured = doc["impact"]["measured_by"]
    assert measured["query"] == own_query and measured["error"] is None
    assert measured["points"] > 0 and not measured["ongoing"]
    assert measured["start"] == utc(at_kind(events, "sli.first_breach"))
    assert measured["end"] == utc(at_kind(events, "incident.resolved"))
    at_mitigation = next(e for e in events if e["kind"] == "sli.mitigation")["data"]["value"]
    assert doc["impact"]["worst_value"] is not None
    assert doc["impact"]["worst_value"] >= doc["impact"]["first_breach_value"]
    assert at_mitigation is None or doc["impact"]["worst_value"] >= 0.9 * at_mitigation

    # Metrics agree with the event times.
    def at(kind: str) -> float:
        return seconds_of(next(e["at"] for e in events if e["kind"] == kind)) or 0.0

    fired = at("alert.firing")
    expected = {
        "mttd": fired - at("sli.first_breach"),
        "mtta": at("incident.acknowledged") - fired,
        "ttm": at("incident.mitigated") - fired,
        "ttr": at("sli.recovery") - fired,
        "mttr": at("incident.resolved") - fired,
    }
    for key, seconds in expected.items():
        assert shown["metrics"][key]["seconds"] == pytest.approx(seconds, abs=0.01), key
        assert doc["metrics"][key]["seconds"] == pytest.approx(seconds, abs=0.01), key
    assert expected["mttd"] >= 0 and expected["mtta"] > 0 and expected["ttm"] > 0

    # The Markdown lists every event, in order, with its UTC time.
    markdown = mlconsole(config_path, "export", incident.id, "--format", "md")
    assert markdown.returncode == 0, markdown.stderr
    text = markdown.stdout
    section = text.split("## Timeline (UTC)", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if UTC_TIME.search(line)]
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        assert event["at"] in line and event["kind"] in line
    assert "v4" in text and "v3" in text  # the versions before and after
    assert (exports / f"{incident.id}.md").read_text().count("\n## ") >= 9
