"""A screen popped before it has mounted (enter then escape faster than a mount, as
at a thousand models) leaves the console running: Textual still sends it ``Mount``
while its widgets are being removed, and snapshots, timers and thread workers can
still call it. None of that may reach for widgets that are gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen

from console.actions.origin import Origin
from console.config.loader import load_text
from console.config.models import StoreConfig
from console.mitigation import propose
from console.session import open_session_sync
from console.triage.catalog import Catalog
from console.triage.runbook import Runbook
from console.triage.store import Evidence, Store
from console.triage.triage import Triage
from screens.action import ActionScreen, SilenceScreen
from screens.alert_detail import AlertDetailScreen
from screens.app import MLConsoleApp, create_app
from screens.dashboard import DashboardScreen
from screens.evidence import EvidenceScreen
from screens.help import HelpScreen
from screens.incident import IncidentScreen
from screens.incident_acts import TextScreen
from screens.incidents import IncidentsScreen
from screens.runbook import RunbookScreen
from screens.runbook_open import RunbookPicker
from tests.builders import NOW, snapshot
from tests.test_actions import Alerts, Metrics, Registry, Switch, config
from tests.test_triage import RUNBOOK, Scripted

SIZE = (160, 40)
ACTOR = "ann@host"
#: How many times each screen is pushed and popped: the first push of a class loads
#: its CSS, later ones race on a warm app.
ROUNDS = 5


def app_with_everything(tmp_path: Path) -> MLConsoleApp:
    """The app with a store, runbooks and a session: every screen can be built."""
    cfg = config().model_copy(update={"store": StoreConfig(path=tmp_path / "store.db")})
    runbook = load_text(RUNBOOK, "drift-test.yaml", Runbook)
    triage = Triage(
        Catalog(runbooks={runbook.id: runbook}),
        Store(tmp_path / "store.db"),
        Scripted({"drift_psi": 0.41, "null_ratio": 0.0}),
        actor=ACTOR,
        clock=lambda: NOW,
    )
    app = create_app(cfg, poll=False, clock=lambda: NOW, triage=triage)
    app.snapshot = snapshot()
    fakes = {
        "registry": Registry(),
        "serving": Switch("serving"),
        "pipelines": Switch("pipelines"),
        "alertmanager": Alerts(),
        "prometheus": Metrics([0.5, 0.2, 0.004, 0.003]),
    }
    app.session = open_session_sync(cfg, adapters=fakes, actor=ACTOR)
    return app


def drift_alert(app: MLConsoleApp) -> Any:
    return next(a for a in app.snapshot.alerts if a.name == "ModelFeatureDrift")


async def action_screen(app: MLConsoleApp) -> Screen[Any]:
    space = app.session
    assert space is not None
    return ActionScreen(await propose(space, "rollback", {"model": "fraud-detector"}, Origin()))


async def runbook_screen(app: MLConsoleApp) -> Screen[Any]:
    triage = app.triage
    assert triage is not None
    return RunbookScreen(triage.walk_for(triage.runbooks["drift-test"], drift_alert(app)))


async def runbook_picker(app: MLConsoleApp) -> Screen[Any]:
    assert app.triage is not None
    return RunbookPicker(list(app.triage.runbooks.values()))


async def evidence_screen(app: MLConsoleApp) -> Screen[Any]:
    item = Evidence("drift", "check", {"query": "q"}, {"values": []}, "true", ACTOR, NOW)
    return EvidenceScreen(item, NOW)


async def alert_detail(app: MLConsoleApp) -> Screen[Any]:
    return AlertDetailScreen(drift_alert(app), "churn-predictor")


async def no_alert_detail(app: MLConsoleApp) -> Screen[Any]:
    return AlertDetailScreen(None, "recommender")


async def silence_screen(app: MLConsoleApp) -> Screen[Any]:
    return SilenceScreen([], "recommender", "every alert of recommender")


async def help_screen(app: MLConsoleApp) -> Screen[Any]:
    return HelpScreen()


async def text_screen(app: MLConsoleApp) -> Screen[Any]:
    return TextScreen("Note", "what you saw")


async def incident_screen(app: MLConsoleApp) -> Screen[Any]:
    return IncidentScreen(1)  # read in a thread; answered after the pop


async def incidents_screen(app: MLConsoleApp) -> Screen[Any]:
    return IncidentsScreen()


SCREENS: dict[str, Callable[[MLConsoleApp], Awaitable[Screen[Any]]]] = {
    "alert-detail": alert_detail,
    "alert-detail-no-alert": no_alert_detail,
    "action": action_screen,
    "silence": silence_screen,
    "help": help_screen,
    "text": text_screen,
    "incident": incident_screen,
    "incidents": incidents_screen,
    "runbook-picker": runbook_picker,
    "evidence": evidence_screen,
    "runbook": runbook_screen,
}

#: Between the push and the pop: nothing (the same tick), one turn of the loop, a
#: snapshot, or one turn then a snapshot (it reaches a screen mounted by then).
BETWEEN = ("same-tick", "one-turn", "snapshot", "one-turn-then-snapshot")


@pytest.mark.parametrize("between", BETWEEN)
@pytest.mark.parametrize("name", SCREENS)
async def test_a_screen_popped_before_it_mounts_leaves_the_console_running(
    tmp_path: Path, name: str, between: str
) -> None:
    app = app_with_everything(tmp_path)
    build = SCREENS[name]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        stack = app.screen_stack
        for _ in range(ROUNDS):
            app.push_screen(await build(app))
            if between.startswith("one-turn"):
                await asyncio.sleep(0)  # one turn: the push has started, not finished
            if between.endswith("snapshot"):
                app.apply_snapshot(snapshot())
            app.pop_screen()
            await asyncio.sleep(0)
        await app.workers.wait_for_complete()  # answers read for the popped screens
        await pilot.pause()
        assert app._exception is None, app._exception
        assert app.is_running
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen_stack == stack
        app.apply_snapshot(snapshot())  # later snapshots still reach the dashboard
        await pilot.pause()
        assert app._exception is None, app._exception
