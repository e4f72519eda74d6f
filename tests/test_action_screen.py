"""The mitigation screens driven by keys, with in-memory sources (see test_actions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from console.audit.log import AuditLog
from console.config.models import StoreConfig
from console.session import open_session_sync
from screens.action import ActionScreen, SilenceScreen
from screens.app import MLConsoleApp, create_app
from tests.builders import NOW, snapshot
from tests.test_actions import Alerts, Metrics, Registry, Switch, config
from tests.waits import until

SIZE = (160, 40)


def app_with_fakes(
    tmp_path: Path, *, read_only: bool = False
) -> tuple[MLConsoleApp, dict[str, Any]]:
    cfg = config().model_copy(update={"store": StoreConfig(path=tmp_path / "store.db")})
    fakes: dict[str, Any] = {
        "registry": Registry(),
        "serving": Switch("serving"),
        "pipelines": Switch("pipelines"),
        "alertmanager": Alerts(),
        "prometheus": Metrics([0.5, 0.2, 0.004, 0.003]),
    }
    app = create_app(cfg, poll=False, clock=lambda: NOW, read_only=read_only)
    app.snapshot = snapshot()
    app.session = open_session_sync(cfg, adapters=fakes, actor="ana@ops", read_only=read_only)
    return app, fakes


async def test_r_shows_the_plan_and_y_applies_audits_and_watches(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "r")  # fraud-detector is the second row
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        assert screen.plan.summary() == "fraud-detector@champion: v4 → v3"
        assert fakes["registry"].aliases["fraud-detector"]["champion"] == "4"
        await pilot.press("y")
        await until(pilot, lambda: screen.stage == "done", "the verdict")
        assert screen.recovery is not None and screen.recovery.recovered
        assert fakes["registry"].aliases["fraud-detector"]["champion"] == "3"
        status = str(screen.query_one("#status").render())
        assert "applied: fraud-detector@champion: v4 → v3" in status
        assert "RECOVERED" in status
    log = AuditLog(tmp_path / "audit.db")
    assert [e.kind for e in log.entries()] == ["intent", "result", "verify"]


@pytest.mark.parametrize("screen_class", [ActionScreen, SilenceScreen])
async def test_the_plan_and_the_silence_dialog_fit_80_columns(
    tmp_path: Path, screen_class: type
) -> None:
    app, _ = app_with_fakes(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down")  # fraud-detector is the second row
        await pilot.press("r" if screen_class is ActionScreen else "s")  # plan / silence form
        screen = await until(
            pilot, lambda: isinstance(app.screen, screen_class) and app.screen, "the dialog"
        )
        box = screen.query_one("Vertical").region
        assert box.x >= 0 and box.right <= 80, box
        if screen_class is ActionScreen:
            plan = screen.query_one("#plan-text")
            assert plan.region.right <= 80
            # The plan wraps within the dialog: every word of it is on screen.
            shown = " ".join(
                "".join(s.text for s in plan.render_line(y)) for y in range(plan.size.height)
            )
            assert "v4 → v3" in shown and "Filed under" in " ".join(shown.split())


async def test_d_is_a_dry_run_and_escape_cancels(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down")
        for key in ("d", "escape"):
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ActionScreen), "the plan")
            await pilot.press(key)
            await until(pilot, lambda: not isinstance(app.screen, ActionScreen), "closed")
    assert fakes["registry"].aliases["fraud-detector"]["champion"] == "4"
    assert AuditLog(tmp_path / "audit.db").entries() == []


async def test_not_recovered_offers_the_undo_plan(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    fakes["prometheus"].values = [0.5]  # never gets better
    app.config.actions.verify.window = 1.0
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "r")
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        await pilot.press("y")
        await until(pilot, lambda: screen.stage == "done", "the verdict")
        assert screen.recovery is not None and not screen.recovery.recovered
        assert screen.undo is not None
        assert screen.undo[1].summary() == "fraud-detector@champion: v3 → v4"
        await pilot.press("u")
        undo = await until(
            pilot,
            lambda: (
                isinstance(app.screen, ActionScreen) and app.screen is not screen and app.screen
            ),
            "the undo plan",
        )
        assert undo.plan.summary() == "fraud-detector@champion: v3 → v4"


async def test_s_asks_for_duration_and_comment(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "s")
        form = await until(
            pilot, lambda: isinstance(app.screen, SilenceScreen) and app.screen, "the silence form"
        )
        form.query_one("#duration", Input).value = "45m"
        await pilot.press("enter")  # no comment yet: refused, the form stays
        assert isinstance(app.screen, SilenceScreen)
        await pilot.press(*"rollback in progress", "enter")
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        assert "(45m)" in screen.plan.summary()
        await pilot.press("y")
        await until(pilot, lambda: screen.stage == "done", "the outcome")
    created = fakes["alertmanager"].created[0]
    assert created["by"] == "ana@ops"
    assert created["comment"].startswith("rollback in progress [mlconsole audit #")


async def test_f_and_p_toggle_the_switches(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down")
        for key, switch in (("p", "pipelines"), ("f", "serving")):
            await pilot.press(key)
            screen = await until(
                pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
            )
            await pilot.press("y")
            await until(pilot, lambda s=screen: s.stage == "done", "applied", tries=400)
            assert fakes[switch].on == {"fraud-detector": True}
            await pilot.press("escape")


async def test_read_only_hides_the_keys_and_does_nothing(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert shown.isdisjoint({"rollback", "fallback", "silence", "pipeline"})
        await pilot.press("down")
        for key in ("r", "f", "s", "p"):
            await pilot.press(key)
            await app.workers.wait_for_complete()  # whatever the key started is done
            assert type(app.screen).__name__ == "DashboardScreen"
    assert fakes["registry"].aliases["fraud-detector"]["champion"] == "4"
    assert AuditLog(tmp_path / "audit.db").entries() == []


def test_plan_screen_snapshot(tmp_path: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app, _ = app_with_fakes(tmp_path)

    async def plan(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("down", "r")
        await until(pilot, lambda: isinstance(app.screen, ActionScreen), "the plan")
        app.clear_notifications()  # the "Planning…" toast would make it timing-dependent
        await pilot.pause()

    assert snap_compare(app, run_before=plan, terminal_size=SIZE)


def app_with_runbook(tmp_path: Path, *, read_only: bool = False) -> tuple[MLConsoleApp, Any]:
    from console.config.loader import load_text
    from console.triage.catalog import Catalog
    from console.triage.runbook import Runbook
    from console.triage.store import Store
    from console.triage.triage import Triage
    from tests.test_triage import RUNBOOK, Scripted

    app, fakes = app_with_fakes(tmp_path, read_only=read_only)
    runbook = load_text(RUNBOOK, "drift-test.yaml", Runbook)
    app.triage = Triage(
        Catalog(runbooks={runbook.id: runbook}),
        Store(tmp_path / "walks.db"),
        Scripted({"drift_psi": 0.41, "null_ratio": 0.0}),
        actor="ann@host",
    )
    return app, fakes


async def walk_to_the_action_step(app: MLConsoleApp, pilot: Any) -> Any:
    from screens.runbook import RunbookScreen

    await pilot.press("t")  # churn-predictor's drift alert
    screen = await until(
        pilot, lambda: isinstance(app.screen, RunbookScreen) and app.screen, "the runbook"
    )
    await until(pilot, lambda: screen.walk.current.id == "upstream", "the first question")
    await pilot.press("2")  # not an upstream change
    await until(pilot, lambda: screen.walk.current.id == "retrain", "the action step")
    return screen


async def confirm_the_step(app: MLConsoleApp, pilot: Any) -> Any:
    await pilot.press("1")  # confirm: plan the mitigation
    return await until(
        pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
    )


async def test_a_runbook_action_step_runs_through_the_action_path(tmp_path: Path) -> None:
    app, fakes = app_with_runbook(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        runbook = await walk_to_the_action_step(app, pilot)
        plan = await confirm_the_step(app, pilot)
        assert plan.plan.summary() == "churn-predictor retraining pipeline: running → paused"
        await pilot.press("y")
        await until(pilot, lambda: plan.stage == "done", "applied")
        await until(pilot, lambda: runbook.walk.concluded, "the walk moves on")
        assert fakes["pipelines"].on == {"churn-predictor": True}
        step = next(e for e in runbook.walk.evidence if e.step_id == "retrain")
        assert step.decision == "confirmed" and step.outputs["outcome"] == "applied"
        assert step.outputs["audit_intent"] == 1


async def test_a_runbook_action_step_is_refused_in_read_only_mode(tmp_path: Path) -> None:
    app, fakes = app_with_runbook(tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        runbook = await walk_to_the_action_step(app, pilot)
        await pilot.press("1")  # confirm the mitigation: refused, read-only
        await until(
            pilot,
            lambda: any("Read-only mode" in n.message for n in app._notifications),
            "the refusal said",
        )
        await app.workers.wait_for_complete()
        assert not isinstance(app.screen, ActionScreen)
        assert runbook.walk.current.id == "retrain"  # it waits; 2 would skip
    assert fakes["pipelines"].on == {}
    assert AuditLog(tmp_path / "audit.db").entries() == []


async def test_the_silence_dialog_refuses_a_duration_out_of_range(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "s")  # select fraud-detector, open the silence form
        form = await until(
            pilot, lambda: isinstance(app.screen, SilenceScreen) and app.screen, "the silence form"
        )
        form.query_one("#comment", Input).value = "rolling back"
        for bad in ("0", "-1h", "forever", "99999999999999w"):
            form.query_one("#duration", Input).value = bad
            form.query_one("#duration", Input).focus()
            await pilot.press("enter")  # submit: refused, the form stays
            await until(
                pilot,
                lambda: any("from 1m to 30d" in n.message for n in app._notifications),
                f"the error for {bad!r}",
            )
            assert app.screen is form
            app.clear_notifications()
    assert fakes["alertmanager"].created == []


async def test_a_refused_runbook_action_is_the_steps_evidence_and_the_walk_waits(
    tmp_path: Path,
) -> None:
    app, fakes = app_with_runbook(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        runbook = await walk_to_the_action_step(app, pilot)
        plan = await confirm_the_step(app, pilot)
        fakes["pipelines"].on["churn-predictor"] = True  # someone paused it meanwhile
        await pilot.press("y")  # apply: the check finds the world moved
        await until(pilot, lambda: plan.stage == "done", "refused")
        step = await until(
            pilot,
            lambda: next((e for e in runbook.walk.evidence if e.step_id == "retrain"), None),
            "the refusal recorded",
        )
        assert step.decision == "not applied: refused"
        assert "someone else changed it" in step.outputs["message"]
        assert step.outputs["audit_intent"] == 1 and step.outputs["audit_result"] == 2
        assert runbook.walk.current.id == "retrain"  # it waits: 1 retries, 2 skips


async def test_the_key_waits_for_another_consoles_lock_and_says_who_holds_it(
    tmp_path: Path,
) -> None:
    from console.actions.locks import SqliteTargetLock

    app, fakes = app_with_fakes(tmp_path)
    other = SqliteTargetLock(tmp_path / "store.db")  # another console on the same store
    held = other.try_acquire("alias:fraud-detector@champion", "bob@ops", 60)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "r")  # fraud-detector is the second row: plan a rollback
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        await pilot.press("y")  # apply: bob holds the alias
        await until(
            pilot,
            lambda: (
                "waiting for the lock: bob@ops holds" in str(screen.query_one("#status").render())
            ),
            "the wait shown",
        )
        assert fakes["registry"].aliases["fraud-detector"]["champion"] == "4"
        assert AuditLog(tmp_path / "audit.db").entries() == []  # no intent while it waits
        fakes["registry"].aliases["fraud-detector"]["champion"] = "3"  # bob rolled back
        other.release(held)
        await until(pilot, lambda: screen.stage == "done", "the verdict")
        assert "now points at v3, not v4" in str(screen.query_one("#status").render())
    log = AuditLog(tmp_path / "audit.db")
    assert [e.kind for e in log.entries()] == ["intent", "refusal"]


async def test_the_silence_dialog_takes_the_duration_first(tmp_path: Path) -> None:
    app, fakes = app_with_fakes(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "s")  # select fraud-detector, open the silence form
        form = await until(
            pilot, lambda: isinstance(app.screen, SilenceScreen) and app.screen, "the silence form"
        )
        await pilot.press("2", "h")  # typed first: the duration, replacing the default
        await pilot.press("enter")  # on to the comment
        assert form.query_one("#duration", Input).value == "2h"
        assert form.query_one("#comment", Input).value == ""
        await pilot.press(*"deploy rollback underway")  # the comment
        await pilot.press("enter")  # continue to the plan
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        assert "(2h)" in screen.plan.summary()
        assert fakes["alertmanager"].created == []  # nothing until y


@pytest.mark.parametrize("key", ["r", "s"])
async def test_the_dialogs_fit_an_80_column_terminal(tmp_path: Path, key: str) -> None:
    """At 80x24 the plan (and the silence form) is cut to the screen, never wider: a
    wider dialog hid the end of each line, so the verdict lost its reads and its SLI."""
    from textual.containers import Vertical

    app, _ = app_with_fakes(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", key)  # select fraud-detector, then open its plan or form
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, (ActionScreen, SilenceScreen)) and app.screen,
            "the dialog",
        )
        await pilot.pause()
        box = screen.query_one(Vertical).region
        assert box.x >= 0 and box.right <= 80, box
        if isinstance(screen, ActionScreen):
            plan = screen.query_one("#plan-text").region
            assert plan.right <= box.right, plan
