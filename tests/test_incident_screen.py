"""Incidents driven by keys: opened from alerts, acknowledged, noted, resolved,
exported, listed; on a real store in the test's directory (no network)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from console.config.models import Config
from console.incidents.book import IncidentBook
from console.incidents.model import Incident
from console.session import Session
from console.sources.snapshot import Snapshot
from screens.app import MLConsoleApp, create_app
from screens.dashboard import DashboardScreen
from screens.incident import IncidentScreen
from screens.incident_acts import TextScreen
from screens.incidents import IncidentsScreen
from screens.timeline import TimelineView
from tests.builders import CONFIG, NOW, alert, snapshot
from tests.waits import until

SIZE = (160, 40)
ACTOR = "ann@host"
FRAUD = "fraud-detector-ModelErrorBudgetBurn"
CHURN = "churn-predictor-ModelFeatureDrift"


def make_config(tmp_path: Path, *, auto_open: bool = False) -> Config:
    return CONFIG.model_copy(
        update={
            "store": CONFIG.store.model_copy(update={"path": tmp_path / "store.db"}),
            "incidents": CONFIG.incidents.model_copy(
                update={"auto_open": auto_open, "export_dir": tmp_path}
            ),
        }
    )


def make_app(config: Config) -> MLConsoleApp:
    app = create_app(config, poll=False, clock=lambda: NOW, actor=ACTOR)
    app.snapshot = snapshot()
    return app


def book_of(config: Config) -> IncidentBook:
    assert config.store.path is not None
    return IncidentBook(config.store.path, clock=lambda: NOW)


def without(snap: Snapshot, fingerprint: str) -> Snapshot:
    """``snap`` with one alert gone (it stopped firing)."""
    return Snapshot.build(
        taken_at=snap.taken_at,
        slis=snap.slis,
        readings=snap.readings,
        alerts=tuple(a for a in snap.alerts if a.fingerprint != fingerprint),
        sources=snap.sources,
    )


def group(model: str) -> list[Any]:
    return [a for a in snapshot().alerts if a.model == model]


async def book_ready(app: MLConsoleApp, pilot: Pilot[Any]) -> IncidentBook:
    await until(pilot, lambda: app.incidents is not None, "the incidents opened")
    assert app.incidents is not None
    return app.incidents


def incident_cell(app: MLConsoleApp, fingerprint: str) -> str:
    table = app.screen.query_one("#alerts", DataTable)
    return str(table.get_cell(fingerprint, "incident"))


def head(screen: IncidentScreen) -> str:
    return str(screen.query_one("#incident-head", Static).render())


def notices(app: MLConsoleApp) -> list[tuple[str, str]]:
    """Record every notification (message, severity): toasts expire, this list does not."""
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        seen.append((str(message), str(kwargs.get("severity", "information"))))
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return seen


async def typed(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*("space" if c == " " else c for c in text))


# -- opening and acknowledging from the dashboard ----------------------------------


async def test_auto_open_shows_incidents_and_the_ack_is_shared(tmp_path: Path) -> None:
    config = make_config(tmp_path, auto_open=True)
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await book_ready(app, pilot)
        assert app.open_incidents == ()
        assert incident_cell(app, FRAUD) == "—"
        app.apply_snapshot(snapshot())  # alertmanager answered a second ago: sync
        await until(pilot, lambda: len(app.open_incidents) == 2, "two incidents opened")
        await until(pilot, lambda: incident_cell(app, FRAUD) == "INC-1 triggered", "INC-1 shown")
        assert incident_cell(app, CHURN) == "INC-2 triggered"
        await pilot.press("tab", "down")  # the alerts table, fraud-detector's row
        await pilot.press("a")  # acknowledge its incident
        await until(
            pilot, lambda: incident_cell(app, FRAUD) == f"INC-1 ack {ACTOR}", "the ack shown"
        )
        assert incident_cell(app, CHURN) == "INC-2 triggered"
        other = book_of(config)  # another responder's console on the same store
        try:
            shared = other.get(1)
            assert (shared.state, shared.acked_by, shared.ack_active) == (
                "acknowledged",
                ACTOR,
                True,
            )
            assert shared.owner == ACTOR
            assert other.get(2).state == "triggered"
        finally:
            other.close()


async def test_many_incidents_opened_at_once_are_one_toast(tmp_path: Path) -> None:
    """A page of many alerts at once (a console started into an outage, a fleet-wide
    fault) opens an incident each, and says so in one toast, not one per incident;
    a few are each told on their own."""
    config = make_config(tmp_path, auto_open=True)
    app = make_app(config)
    many = tuple(
        alert(f"model-{n:03d}", "ModelErrorBudgetBurn", "page", 3, "burn") for n in range(40)
    )
    async with app.run_test(size=SIZE) as pilot:
        seen = notices(app)
        await book_ready(app, pilot)
        app.apply_snapshot(snapshot(alerts=many))  # forty pages at once
        await until(pilot, lambda: len(app.open_incidents) == 40, "forty incidents opened")
        opened = [m for m, _ in seen if "opened" in m]
        assert len(opened) == 1, opened
        assert opened[0].startswith("40 incidents opened: INC-1 ModelErrorBudgetBurn on model-")
        assert opened[0].endswith("and 38 more. I lists them all")
        few = (
            *many,
            *(alert(f"late-{n}", "ModelFeatureDrift", "ticket", 1, "drift") for n in range(2)),
        )
        app.apply_snapshot(snapshot(alerts=few))  # two more pages
        await until(pilot, lambda: len(app.open_incidents) == 42, "two more opened")
        await until(pilot, lambda: len([m for m, _ in seen if "opened" in m]) == 3, "told")
        assert [m.split(":")[0] for m, _ in seen if "opened" in m][1:] == [
            "INC-41 opened",
            "INC-42 opened",
        ]


@pytest.mark.parametrize("opened", [True, False], ids=["incident open", "opened by the key"])
async def test_an_ack_never_holds_the_keys_while_the_store_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: bool
) -> None:
    """The write is made in a thread: while the store makes it wait (another console
    writing), the keys go on, and the ack shows once it is written. With no incident
    yet, ``a`` opens one the same way first."""
    from tests.slow_store import slow

    config = make_config(tmp_path, auto_open=opened)
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await book_ready(app, pilot)
        app.apply_snapshot(snapshot())  # alertmanager answered a second ago: sync
        await until(pilot, lambda: not app._syncing, "the sync done")
        if opened:
            await until(pilot, lambda: incident_cell(app, FRAUD) == "INC-1 triggered", "INC-1")
        store_free, waited = slow(
            monkeypatch, IncidentBook, "acknowledge" if opened else "open"
        )  # a store slow to answer
        await pilot.press("tab", "down")  # the alerts table, fraud-detector's row
        await pilot.press("a")  # acknowledge its incident, on a slow store
        await pilot.press("question_mark")  # the keys go on meanwhile: help opens
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", "help")
        store_free.set()  # the store answers
        await pilot.press("escape")  # back to the dashboard
        await until(
            pilot, lambda: incident_cell(app, FRAUD) == f"INC-1 ack {ACTOR}", "the ack shown"
        )
    assert waited == [True]


async def test_a_snapshot_from_a_down_alertmanager_opens_nothing(tmp_path: Path) -> None:
    from dataclasses import replace

    config = make_config(tmp_path, auto_open=True)
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        book = await book_ready(app, pilot)
        snap = snapshot()
        stale = replace(snap.sources["alertmanager"], last_success=NOW - 600)
        app.apply_snapshot(replace(snap, sources={**snap.sources, "alertmanager": stale}))
        for _ in range(20):
            await pilot.pause()
        await app.workers.wait_for_complete()
        assert book.incidents() == []
        assert app.open_incidents == ()


async def test_ack_opens_by_key_and_notes_are_kept(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        book = await book_ready(app, pilot)
        await pilot.press("tab")  # the alerts table: churn-predictor's row first
        await pilot.press("n")  # no incident yet: nothing to note
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("down", "a")  # fraud-detector: open its incident and acknowledge
        await until(pilot, lambda: app.open_incidents, "the incident opened")
        (incident,) = book.incidents()
        assert (incident.number, incident.model, incident.alertname) == (
            1,
            "fraud-detector",
            "ModelErrorBudgetBurn",
        )
        assert (incident.state, incident.acked_by, incident.opened_by) == (
            "acknowledged",
            ACTOR,
            ACTOR,
        )
        assert [e.kind for e in book.events(1)] == [
            "incident.opened",
            "alert.firing",
            "incident.acknowledged",
        ]
        await until(pilot, lambda: incident_cell(app, FRAUD) == f"INC-1 ack {ACTOR}", "ack shown")

        await pilot.press("n")  # a note on the selected alert's incident
        assert isinstance(app.screen, TextScreen)
        await pilot.press("enter")  # empty: not saved, the prompt stays
        assert isinstance(app.screen, TextScreen)
        await typed(pilot, "rolled back to v3")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "prompt closed")
        notes = [e for e in book.events(1) if e.kind == "note"]
        assert [(n.summary, n.data["text"], n.actor, n.at) for n in notes] == [
            ("rolled back to v3", "rolled back to v3", ACTOR, NOW)
        ]

        await pilot.press("n")
        await typed(pilot, "never mind")
        await pilot.press("escape")  # cancelled: nothing kept
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "prompt closed")
        for _ in range(5):
            await pilot.pause()
        assert [e.kind for e in book.events(1)].count("note") == 1
        assert len(book.events(1)) == 4


def app_with_quiet_incident(tmp_path: Path) -> MLConsoleApp:
    """INC-1 open for fraud-detector, whose alert ends at the first snapshot without it."""
    config = make_config(tmp_path)
    # The clock stands still here: end an alert at its first miss.
    config = config.model_copy(
        update={"incidents": config.incidents.model_copy(update={"end_grace": 0.0})}
    )
    seeded = book_of(config)
    try:
        seeded.open(group("fraud-detector"), model_label="model", actor="bob@host", now=NOW - 60)
    finally:
        seeded.close()
    return make_app(config)


async def fraud_alert_ended(app: MLConsoleApp, pilot: Pilot[Any]) -> IncidentBook:
    """fraud-detector's alert stops, and the sync that sees it is done."""
    book = await book_ready(app, pilot)
    app.apply_snapshot(without(snapshot(), FRAUD))  # fraud-detector's alert stopped
    await until(pilot, lambda: not book.get(1).firing, "the sync saw the alert end")
    await until(pilot, lambda: not app._syncing, "the sync finished")
    return book


async def test_ack_on_an_incident_with_no_alert_firing_warns(tmp_path: Path) -> None:
    app = app_with_quiet_incident(tmp_path)
    seen = notices(app)
    async with app.run_test(size=SIZE) as pilot:
        book = await fraud_alert_ended(app, pilot)
        before = book.get(1)
        events = book.events(1)
        assert events[-1].kind == "alert.resolved"
        assert (before.state, before.ack_active, before.acked_by) == ("triggered", False, None)
        # Models: churn-predictor (firing), fraud-detector (breached, quiet), recommender.
        await pilot.press("down", "a")
        await until(pilot, lambda: any(s == "warning" for _, s in seen), "a warning")
        assert ("INC-1 has no alert firing: nothing to acknowledge", "warning") in seen
        assert book.get(1) == before
        assert book.events(1) == events
        assert [i.number for i in book.incidents()] == [1]  # and none opened

        await pilot.press("i")  # the same from the incident's own screen
        screen = app.screen
        assert isinstance(screen, IncidentScreen) and screen.number == 1
        await until(pilot, lambda: screen.incident is not None, "the incident read")
        assert "quiet" in head(screen) and "not acknowledged" in head(screen)
        seen.clear()
        await pilot.press("a")
        await until(pilot, lambda: seen, "a notification")
        assert seen == [("INC-1 has no alert firing: nothing to acknowledge", "warning")]
        assert book.get(1) == before
        assert book.events(1) == events


# -- the incident screen -----------------------------------------------------------


async def test_incident_screen_filter_resolve_and_export(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        book = await book_ready(app, pilot)
        await pilot.press("tab", "down", "a")  # open and acknowledge fraud-detector's
        await until(pilot, lambda: app.open_incidents, "the incident opened")
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, IncidentScreen) and screen.number == 1
        await until(pilot, lambda: screen.events, "the timeline read")
        shown = head(screen)
        assert shown.startswith("INC-1 ACKNOWLEDGED  fraud-detector burns its error budget 58x")
        assert f"acknowledged by {ACTOR}" in shown and "FIRING" in shown
        assert "3 events" in shown
        view = screen.query_one(TimelineView)
        assert view.has_focus
        assert screen.events == sorted(book.events(1), key=lambda e: e.at)
        assert [e.kind for e in screen.events] == [
            "alert.firing",
            "incident.opened",
            "incident.acknowledged",
        ]
        assert view.event_count == 3 and view.visible_count == 3
        assert view.selected is not None and view.selected.kind == "incident.acknowledged"
        await until(
            pilot,
            lambda: "incident.acknowledged" in str(screen.query_one("#event-detail").render()),
            "the selected event's detail",
        )

        await pilot.press("slash")  # filter the timeline
        box = screen.query_one("#timeline-filter", Input)
        assert box.has_focus
        await typed(pilot, "firing")
        assert view.visible_count == 1
        assert view.selected is not None and view.selected.kind == "alert.firing"
        await pilot.press("enter")  # keep the filter, back to the timeline
        assert view.has_focus and view.visible_count == 1
        await pilot.press("escape")  # clears the filter, stays on the incident
        assert app.screen is screen
        assert view.visible_count == 3 and box.value == ""

        await pilot.press("x")  # resolve
        prompt = app.screen
        assert isinstance(prompt, TextScreen)
        assert prompt.title_text == "Resolve INC-1? Its alert is still firing."
        await typed(pilot, "rolled back")
        await pilot.press("enter")
        await until(pilot, lambda: book.get(1).state == "resolved", "resolved in the store")
        done = book.get(1)
        assert (done.resolved_by, done.resolved_at, done.ack_active) == (ACTOR, NOW, False)
        assert book.events(1)[-1].summary == f"resolved by {ACTOR}: rolled back"
        await until(
            pilot,
            lambda: screen.incident is not None and screen.incident.state == "resolved",
            "the screen read it again",
        )
        assert app.screen is screen
        assert head(screen).startswith("INC-1 RESOLVED") and "closed" in head(screen)
        assert view.event_count == 4
        assert app.open_incidents == ()

        await pilot.press("e")  # export
        md, js = tmp_path / "INC-1.md", tmp_path / "INC-1.json"
        await until(pilot, lambda: md.exists() and js.exists(), "the exports written")
        await app.workers.wait_for_complete()
        exported = json.loads(js.read_text())
        assert exported["incident"]["id"] == "INC-1"
        assert exported["incident"]["state"] == "resolved"
        assert "INC-1" in md.read_text()

        await pilot.press("escape")  # back to the dashboard
        assert isinstance(app.screen, DashboardScreen)


async def test_incidents_list_toggles_resolved_and_opens_one(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    seeded = book_of(config)
    try:
        seeded.open(group("fraud-detector"), model_label="model", actor="bob@host", now=NOW - 300)
        seeded.open(group("churn-predictor"), model_label="model", actor="bob@host", now=NOW - 200)
        seeded.resolve(2, actor="bob@host", comment="upstream fixed", now=NOW - 100)
        latency = alert("recommender", "ModelLatencyHigh", "warning", 2, "recommender p99 slow")
        seeded.open([latency], model_label="model", actor="bob@host", now=NOW - 50)
    finally:
        seeded.close()
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await book_ready(app, pilot)
        await pilot.press("I")
        screen = app.screen
        assert isinstance(screen, IncidentsScreen)
        table = screen.query_one(DataTable)

        def listed() -> list[tuple[str, str]]:
            return [
                (str(table.get_row_at(i)[0]), str(table.get_row_at(i)[1]))
                for i in range(table.row_count)
            ]

        opened_two = [("INC-3", "triggered"), ("INC-1", "triggered")]
        await until(pilot, lambda: listed() == opened_two, "the open incidents listed")
        assert "2 open incidents" in str(screen.query_one("#incidents-title", Static).render())
        await pilot.press("A")  # resolved ones too
        every = [("INC-3", "triggered"), ("INC-2", "resolved"), ("INC-1", "triggered")]
        await until(pilot, lambda: listed() == every, "every incident listed")
        assert "3 incidents" in str(screen.query_one("#incidents-title", Static).render())
        assert table.cursor_row == 0
        await pilot.press("down", "enter")  # open INC-2
        opened = app.screen
        assert isinstance(opened, IncidentScreen) and opened.number == 2
        # The default screen, the dashboard, the list and one incident (not two).
        assert len(app.screen_stack) == 4
        await until(pilot, lambda: opened.events, "the timeline read")
        assert head(opened).startswith("INC-2 RESOLVED")
        assert opened.events[-1].summary == "resolved by bob@host: upstream fixed"
        await pilot.press("escape")  # back to the list, the cursor where it was
        assert app.screen is screen and table.cursor_row == 1
        await pilot.press("A")  # open ones only again; INC-2 is gone
        await until(pilot, lambda: listed() == opened_two, "the open ones listed again")
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_the_incident_list_is_read_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`I` opens the list at once; its incidents come when the store answers."""
    from tests.slow_store import slow

    app = app_with_quiet_incident(tmp_path)  # INC-1, open
    async with app.run_test(size=SIZE) as pilot:
        await book_ready(app, pilot)
        await until(pilot, lambda: not app._syncing, "the first read done")
        store_free, waited = slow(monkeypatch, IncidentBook, "incidents")  # a slow store
        await pilot.press("I")  # every open incident
        screen = await until(
            pilot, lambda: isinstance(app.screen, IncidentsScreen) and app.screen, "the list"
        )
        store_free.set()  # the store answers, once the screen is up
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, "INC-1 listed")
    assert waited and all(waited)


# -- bugs --------------------------------------------------------------------------


async def test_incidents_read_after_the_first_paint_show_on_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    seeded = book_of(config)
    try:
        seeded.open(group("fraud-detector"), model_label="model", actor="bob@host", now=NOW - 60)
    finally:
        seeded.close()
    painted = threading.Event()
    original = IncidentBook.incidents

    def slow_store(self: IncidentBook, **kwargs: Any) -> list[Incident]:
        painted.wait(30)  # a store slower than the first paint (bounded: never hangs)
        return original(self, **kwargs)

    monkeypatch.setattr(IncidentBook, "incidents", slow_store)
    app = make_app(config)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, DashboardScreen)
                    and app.screen.query("#alerts")
                    and app.screen.query_one("#alerts", DataTable).row_count == 2
                ),
                "the dashboard painted",
            )
            assert incident_cell(app, FRAUD) == "—"
            painted.set()
            await book_ready(app, pilot)
            assert [i.id for i in app.open_incidents] == ["INC-1"]
            for _ in range(50):
                if incident_cell(app, FRAUD) != "—":
                    break
                await pilot.pause()
            assert incident_cell(app, FRAUD) == "INC-1 triggered"
    finally:
        painted.set()


async def test_a_change_during_a_read_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import screens.incident

    monkeypatch.setattr(screens.incident, "REFRESH_EVERY", 3600.0)  # no periodic refresh
    config = make_config(tmp_path)
    seeded = book_of(config)
    try:
        seeded.open(group("fraud-detector"), model_label="model", actor="bob@host", now=NOW - 60)
    finally:
        seeded.close()
    read_done, release = threading.Event(), threading.Event()
    hold = {"on": False}
    original = Session.timeline

    def timeline(self: Session, incident: Incident) -> list[Any]:
        events = original(self, incident)
        if hold["on"]:  # the incident is read: hold the read before it is shown
            hold["on"] = False
            read_done.set()
            release.wait(30)  # bounded: never hangs the run
        return events

    monkeypatch.setattr(Session, "timeline", timeline)
    app = make_app(config)
    try:
        async with app.run_test(size=SIZE) as pilot:
            book = await book_ready(app, pilot)
            await until(pilot, lambda: app.open_incidents, "the incidents read")
            await pilot.press("down", "i")  # fraud-detector's row, its incident
            screen = app.screen
            assert isinstance(screen, IncidentScreen) and screen.number == 1
            await until(pilot, lambda: screen.incident is not None, "the first read")
            hold["on"] = True
            await pilot.press("R")  # a read that has the incident before the ack
            await until(pilot, read_done.is_set, "the read in flight")
            await pilot.press("a")  # acknowledged while it is in flight
            await until(pilot, lambda: book.get(1).ack_active, "the ack written")
            release.set()
            await until(pilot, lambda: not screen._loading, "the held read shown")
            for _ in range(50):  # room for a reload asked for meanwhile, if any
                if screen.incident is not None and screen.incident.ack_active:
                    break
                await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.incident is not None and screen.incident.ack_active
            assert f"acknowledged by {ACTOR}" in head(screen)
    finally:
        release.set()


# -- the picture -------------------------------------------------------------------


def seeded_app(tmp_path: Path) -> MLConsoleApp:
    """INC-1 for fraud-detector with fixed times: opened, a breach, an ack and notes."""
    config = make_config(tmp_path)
    book = book_of(config)
    try:
        number = book.open(
            group("fraud-detector"), model_label="model", actor="mlconsole", now=NOW - 150
        ).number
        book.record(
            number,
            "sli.first_breach",
            "error_ratio first breached < 0.01 on fraud-detector: 0.031",
            {"model": "fraud-detector", "sli": "error_ratio", "query": "e", "value": 0.031},
            at=NOW - 420,
        )
        book.acknowledge(number, actor=ACTOR, now=NOW - 120)
        book.note(number, "errors started with the 03:05 deploy", actor=ACTOR, now=NOW - 90)
        book.note(number, "action: gate deploys on the canary", actor="bob@host", now=NOW - 30)
    finally:
        book.close()
    return make_app(config)


def test_incident_screen_snapshot(tmp_path: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = seeded_app(tmp_path)

    async def open_incident(pilot: Pilot[Any]) -> None:
        await book_ready(app, pilot)
        await until(pilot, lambda: app.open_incidents, "the incidents read")
        await pilot.press("down", "i")  # fraud-detector's row, its incident
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        await until(pilot, lambda: screen.events, "the timeline read")
        await until(
            pilot,
            lambda: "note" in str(screen.query_one("#event-detail").render()),
            "the last event's detail",
        )
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, run_before=open_incident, terminal_size=SIZE)


def fresh(snap: Snapshot, now: float) -> Snapshot:
    """``snap`` as read at ``now``: every source answered a second before."""
    from dataclasses import replace

    return Snapshot.build(
        taken_at=now,
        slis=snap.slis,
        readings=snap.readings,
        alerts=snap.alerts,
        sources={n: replace(h, last_success=now - 1) for n, h in snap.sources.items()},
    )


async def test_the_dashboard_resolves_an_incident_quiet_for_auto_resolve_after(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, auto_open=True)
    config = config.model_copy(
        update={
            "incidents": config.incidents.model_copy(
                update={"end_grace": 0.0, "auto_resolve_after": 1800.0}
            )
        }
    )
    clock = [NOW]
    app = create_app(config, poll=False, clock=lambda: clock[0], actor=ACTOR)
    app.snapshot = snapshot()
    async with app.run_test(size=SIZE) as pilot:
        book = await book_ready(app, pilot)
        app.apply_snapshot(fresh(snapshot(), clock[0]))  # both alerts fire: two incidents
        await until(pilot, lambda: len(app.open_incidents) == 2, "two incidents opened")
        quiet = without(snapshot(), FRAUD)
        clock[0] = NOW + 60
        app.apply_snapshot(fresh(quiet, clock[0]))  # fraud-detector's alert stopped
        await until(pilot, lambda: not book.get(1).firing, "INC-1 quiet")
        assert book.get(1).state == "triggered"
        clock[0] = NOW + 60 + 1800
        app.apply_snapshot(fresh(quiet, clock[0]))  # quiet for 30m: resolved by itself
        await until(pilot, lambda: len(app.open_incidents) == 1, "INC-1 resolved")
    after = book_of(config)
    try:
        incident = after.get(1)
        assert incident.state == "resolved" and incident.resolved_by == "mlconsole"
        events = [e for e in after.events(1) if e.kind == "incident.resolved"]
        assert [(e.actor, e.data["why"]) for e in events] == [("mlconsole", "quiet for 30m")]
        assert after.get(2).state == "triggered"  # churn-predictor still fires
    finally:
        after.close()


async def test_a_key_on_a_model_row_finds_its_incident_without_reading_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model with no alert left still has its open incident: `n` finds it among the
    incidents last read, not by a store read on the event loop."""
    app = app_with_quiet_incident(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await fraud_alert_ended(app, pilot)
        await until(pilot, lambda: app.open_incidents, "the open incidents read")
        on_loop: list[str] = []
        incidents = IncidentBook.incidents

        def watched(self: IncidentBook, *args: Any, **kwargs: Any) -> list[Incident]:
            if threading.current_thread() is threading.main_thread():
                on_loop.append("incidents")
            return incidents(self, *args, **kwargs)

        monkeypatch.setattr(IncidentBook, "incidents", watched)
        # Models: churn-predictor (firing), fraud-detector (quiet, INC-1), recommender.
        await pilot.press("down")  # fraud-detector's row: no alert, an open incident
        await pilot.press("n")  # a note for its incident
        dialog = await until(
            pilot, lambda: isinstance(app.screen, TextScreen) and app.screen, "the note dialog"
        )
        assert dialog.title_text == "Note for INC-1"
    assert on_loop == []
