"""Incidents in sequence on the real lab, through the dashboard (Pilot) and the CLI.

1. Two incidents on the same alert, one after the other: the second gets a walk and
   a record of its own.
2. Two models paging at once, each mitigated from its own alert.
3. A latency page mitigated by the fallback, judged on latency; and a stale-features
   page, whose fallback is judged on freshness, and so never reported recovered.

Each export carries only its own triage, actions and verdict, and each verdict names
the SLI that paged. Every wait polls with a deadline; nothing asserts on speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from console.actions.verify import FROM_ALERT
from console.config.loader import load_config
from console.incidents.model import Incident
from lab import control
from screens.action import ActionScreen
from screens.app import MLConsoleApp, create_app
from screens.dashboard import DashboardScreen
from screens.runbook import RunbookScreen
from tests.test_integration_actions import (
    DEADLINE,
    MODEL,
    audit_of,
    bad_deploy,
    champion,
    error_ratio,
    lab_clean,
    mlconsole,
    wait_for,
)
from tests.test_integration_incident import loop_config
from tests.waits import until_live

pytestmark = pytest.mark.integration
__all__ = ["lab_clean"]  # the fixture, used by name

BURN = "ModelErrorBudgetBurn"
SLOW = "ModelLatencyBudgetBurn"
OTHER = "churn-predictor"
LATENCY_MODEL = "recommender"
STALE = "ModelFeaturesStale"
STALE_MODEL = "model-0004"


async def until(pilot: Any, what: str, probe: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    return await until_live(pilot, probe, what, deadline)


async def cli(config: Path, *args: str) -> Any:
    """``mlconsole ARGS`` in a subprocess, off the app's event loop."""
    return await asyncio.to_thread(mlconsole, config, *args)


def open_incident(app: MLConsoleApp, model: str, alertname: str, *, not_: int = 0) -> Any:
    return next(
        (
            i
            for i in app.open_incidents
            if (i.model, i.alertname) == (model, alertname) and i.number != not_
        ),
        None,
    )


async def select_alert(pilot: Any, app: MLConsoleApp, incident: Incident) -> None:
    """Put the alerts table's cursor on ``incident``'s alert, and focus it."""
    dashboard = app.screen
    assert isinstance(dashboard, DashboardScreen)
    fingerprint = incident.alerts[0].fingerprint
    await until(pilot, "the alert listed", lambda: fingerprint in dashboard._alert_rows)
    table = dashboard.query_one("#alerts", DataTable)
    table.move_cursor(row=dashboard._alert_rows.index(fingerprint))
    table.focus()
    await pilot.pause()


async def plan_for(pilot: Any, app: MLConsoleApp, key: str) -> ActionScreen:
    await pilot.press(key)
    screen = await until(pilot, "the plan", lambda: isinstance(app.screen, ActionScreen))
    assert screen
    assert isinstance(app.screen, ActionScreen)
    return app.screen


async def triage_to(pilot: Any, app: MLConsoleApp, step: str) -> RunbookScreen:
    """``t`` on the selected alert, then wait for its walk to stop at ``step``."""
    await pilot.press("t")  # triage the selected alert with its runbook
    screen = await until(
        pilot,
        f"the runbook stops at {step}",
        lambda: isinstance(app.screen, RunbookScreen) and app.screen.walk.current.id == step,
        deadline=60,
    )
    assert screen and isinstance(app.screen, RunbookScreen)
    return app.screen


def plan_text(screen: ActionScreen) -> str:
    return str(screen.query_one("#plan-text").render())


async def export_json(config: Path, incident: str) -> dict[str, Any]:
    run = await cli(config, "export", incident, "--format", "json")
    assert run.returncode == 0, run.stderr
    doc: dict[str, Any] = json.loads(run.stdout)
    return doc


def only_its_own(
    doc: dict[str, Any], model: str, action: str, sli: str, *, recovered: bool = True
) -> dict[str, Any]:
    """The export holds exactly one action, on its own model, judged on ``sli``."""
    (mitigation,) = doc["mitigation"]
    assert (mitigation["action"], mitigation["model"]) == (action, model), mitigation
    assert mitigation["applied"] is True
    check = mitigation["verification"]
    assert check is not None, mitigation
    assert (check["sli"], check["origin"], check["watched"]) == (sli, FROM_ALERT, True)
    assert check["recovered"] is recovered, check
    return dict(mitigation)


async def test_two_models_at_once_and_a_latency_page_keep_their_own_records(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    config = loop_config(lab, tmp_path)
    faults = (
        (STALE_MODEL, "stale-features"),  # first: its alert waits for 30 s of staleness
        (MODEL, "bad-deploy"),
        (OTHER, "bad-deploy"),
        (LATENCY_MODEL, "latency"),
    )
    for model, fault in faults:
        await asyncio.to_thread(control.inject, lab.state_dir, fault, model)
    app = create_app(load_config(config), actor="pilot@test")
    async with app.run_test(size=(200, 50)) as pilot:
        fraud = await until(pilot, "fraud's page", lambda: open_incident(app, MODEL, BURN))
        churn = await until(pilot, "churn's page", lambda: open_incident(app, OTHER, BURN))
        slow = await until(
            pilot, "the latency page", lambda: open_incident(app, LATENCY_MODEL, SLOW)
        )
        await until(pilot, "the session opened", lambda: app.session is not None)

        # 2. fraud-detector, from its own alert on the dashboard: r
        await select_alert(pilot, app, fraud)
        rollback = await plan_for(pilot, app, "r")  # roll back the selected alert's model
        assert f"Filed under {fraud.id}: the incident of {BURN} on {MODEL}" in plan_text(rollback)
        assert (
            "Verification will watch error_ratio (bad-event ratio `mlc:error_ratio:rate10s`), the SLI that paged"
            in plan_text(rollback)
        )
        await pilot.press("y")  # apply
        await until(pilot, "fraud applied", lambda: rollback.stage in ("watching", "done"))
        await pilot.press("escape")  # hide the watch; it goes on

        # 3. the latency page, from its own alert: f serves the fallback
        await select_alert(pilot, app, slow)
        fallback = await plan_for(pilot, app, "f")  # fallback for the selected alert's model
        assert f"Filed under {slow.id}: the incident of {SLOW}" in plan_text(fallback)
        assert (
            "Verification will watch latency_p95 (bad-event ratio `mlc:latency_slow_ratio:rate10s`), the SLI that paged"
            in plan_text(fallback)
        )
        await pilot.press("y")  # apply
        await until(pilot, "fallback applied", lambda: fallback.stage in ("watching", "done"))
        await pilot.press("escape")  # hide the watch; it goes on

        # 2. churn-predictor at the same time, from the CLI, naming its alert's incident;
        # and a stale-features page, whose fallback cannot bring its freshness back.
        stale = await until(pilot, "the stale page", lambda: open_incident(app, STALE_MODEL, STALE))
        run, unfixed = await asyncio.gather(
            cli(config, "rollback", OTHER, "--incident", churn.id, "--yes", "--json"),
            cli(config, "fallback", STALE_MODEL, "on", "--incident", stale.id, "--yes", "--json"),
        )
        assert unfixed.returncode == 1, unfixed.stderr  # applied, not recovered
        assert "Verification will watch freshness, the SLI that paged" in unfixed.stderr
        verdict = json.loads(unfixed.stdout)["recovery"]
        assert (verdict["sli"], verdict["recovered"]) == ("freshness", False), verdict
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        assert out["incident"] == churn.id
        assert f"Filed under {churn.id}: named by hand." in run.stderr
        assert (
            "Verification will watch error_ratio (bad-event ratio `mlc:error_ratio:rate10s`), the SLI that paged"
            in run.stderr
        )
        assert (out["recovery"]["sli"], out["recovery"]["recovered"]) == ("error_ratio", True)

        for screen, sli in ((rollback, "error_ratio"), (fallback, "latency_p95")):
            await until(pilot, f"the {sli} verdict", lambda s=screen: s.stage == "done")
            assert screen.recovery is not None and screen.recovery.recovered, screen.recovery
            assert screen.recovery.sli == sli
            # Judged on the SLO's bad-event ratio, and saying so: not "p95 = 0".
            assert screen.recovery.line().startswith(
                f"RECOVERED: {screen.plan.model} {sli} bad-event ratio `"
            ), screen.recovery.line()

    for incident in (fraud, churn, slow, stale):
        done = await cli(config, "incident", "resolve", incident.id, "--comment", "mitigated")
        assert done.returncode == 0, done.stderr
    docs = {i.id: await export_json(config, i.id) for i in (fraud, churn, slow, stale)}
    mine = {
        fraud.id: only_its_own(docs[fraud.id], MODEL, "rollback", "error_ratio"),
        churn.id: only_its_own(docs[churn.id], OTHER, "rollback", "error_ratio"),
        slow.id: only_its_own(docs[slow.id], LATENCY_MODEL, "fallback", "latency_p95"),
        stale.id: only_its_own(
            docs[stale.id], STALE_MODEL, "fallback", "freshness", recovered=False
        ),
    }
    assert "freshness did not recover" in docs[stale.id]["summary"]
    # No action, and no walk, is in two exports.
    seqs = [m["intent_seq"] for m in mine.values()]
    assert len(set(seqs)) == 4
    runs = [r["run"] for doc in docs.values() for r in doc["triage"]]
    assert len(runs) == len(set(runs))
    assert {r["runbook"] for r in docs[slow.id]["triage"]} <= {"latency-saturation"}
    markdown = await cli(config, "export", slow.id, "--format", "md")
    assert f"Verified on `latency_p95` ({FROM_ALERT}): recovered" in markdown.stdout, (
        markdown.stdout
    )


async def test_a_second_firing_of_the_same_alert_is_an_incident_of_its_own(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    config = loop_config(lab, tmp_path)
    await asyncio.to_thread(bad_deploy, lab)
    app = create_app(load_config(config), actor="pilot@test")
    async with app.run_test(size=(200, 50)) as pilot:
        first = await until(pilot, "the first page", lambda: open_incident(app, MODEL, BURN))
        await until(pilot, "the session opened", lambda: app.session is not None)

        # The first incident: triaged with t, rolled back by its runbook's action step.
        await select_alert(pilot, app, first)
        runbook = await triage_to(pilot, app, "regression-rollback")
        first_walk = runbook.walk.record.id
        await pilot.press("1")  # confirm the rollback step
        plan = await until(pilot, "the plan", lambda: isinstance(app.screen, ActionScreen))
        assert plan and isinstance(app.screen, ActionScreen)
        rollback = app.screen
        assert f"Filed under {first.id}: the incident of {BURN}" in plan_text(rollback)
        await pilot.press("y")  # apply
        await until(pilot, "the verdict", lambda: rollback.stage == "done", deadline=120)
        assert rollback.recovery is not None and rollback.recovery.recovered
        assert rollback.recovery.sli == "error_ratio"
        await pilot.press("escape")  # back to the runbook
        await until(
            pilot, "the cause question", lambda: runbook.walk.current.id == "regression-cause"
        )
        await pilot.press("1")  # "the new model itself"
        await until(pilot, "concluded", lambda: runbook.walk.concluded)
        await pilot.press("escape")  # back to the dashboard
        await until(
            pilot,
            "the first page stopped",
            lambda: not any(a.name == BURN and a.model == MODEL for a in app.snapshot.alerts),
        )
        done = await cli(config, "incident", "resolve", first.id, "--comment", "rolled back")
        assert done.returncode == 0, done.stderr

        # The same alert fires again: a new incident, and t starts a new walk.
        await asyncio.to_thread(bad_deploy, lab)
        second = await until(
            pilot,
            "the second page",
            lambda: open_incident(app, MODEL, BURN, not_=first.number),
        )
        assert second.number != first.number
        await select_alert(pilot, app, second)
        again = await triage_to(pilot, app, "regression-rollback")  # t on the new page
        assert again.walk.record.id != first_walk
        await pilot.press("escape")  # back to the dashboard

        # Mitigated from the CLI this time: `runbook run` on the new firing confirms the
        # rollback step, filed under the new incident and judged on the SLI that paged.
        run = await cli(
            config, "runbook", "run", "model-regression",
            "--alert", second.alerts[0].fingerprint,
            "--answer", "regression-rollback=confirm", "--answer", "regression-cause=1",
            "--json",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert f"Filed under {second.id}: the incident of {BURN} on {MODEL}." in run.stderr
        walked = json.loads(run.stdout)
        (step,) = [e for e in walked["evidence"] if e["step"] == "regression-rollback"]
        assert step["outputs"]["outcome"] == "applied"
        assert step["outputs"]["recovery"]["sli"] == "error_ratio"
        assert step["outputs"]["recovery"]["origin"] == FROM_ALERT
        (intent,) = [
            e for e in audit_of(tmp_path).entries() if e.seq == step["outputs"]["audit_intent"]
        ]
        assert intent.body["incident"] == second.id
        assert champion(lab) == "3"
        await asyncio.to_thread(
            wait_for, "errors under 1% again", lambda: (error_ratio(lab) or 1) < 0.01
        )

    docs = {i.id: await export_json(config, i.id) for i in (first, second)}
    one = only_its_own(docs[first.id], MODEL, "rollback", "error_ratio")
    two = only_its_own(docs[second.id], MODEL, "rollback", "error_ratio")
    assert one["intent_seq"] != two["intent_seq"]
    assert [r["run"] for r in docs[first.id]["triage"]] == [first_walk]
    second_walks = [r["run"] for r in docs[second.id]["triage"]]
    assert again.walk.record.id in second_walks and walked["run_id"] in second_walks
    assert first_walk not in second_walks
    assert docs[first.id]["root_cause"]["cause"] == "model"
    assert docs[second.id]["root_cause"]["cause"] == "model"
