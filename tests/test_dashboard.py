"""The dashboard driven by keys, on deterministic snapshots (no network)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from adapters.base import AdapterError, MetricsAdapter
from adapters.records import AlertRecord, QueryResult, RangeResult
from adapters.settings import SourceSettings
from console.sources.poller import Poller
from console.sources.snapshot import Health, Snapshot
from screens.alert_detail import AlertDetailScreen
from screens.app import MLConsoleApp, create_app
from screens.dashboard import DashboardScreen
from screens.help import HelpScreen
from tests.builders import CONFIG, NOW, alert, snapshot
from tests.waits import until

SIZE = (160, 40)


def app_with_snapshot(**kwargs: bool) -> MLConsoleApp:
    app = create_app(CONFIG, poll=False, clock=lambda: NOW)
    app.snapshot = snapshot(**kwargs)
    return app


def rows(app: MLConsoleApp, table_id: str) -> list[str]:
    table = app.screen.query_one(table_id, DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_worst_models_first_and_alerts_grouped() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE):
        # firing alerts first (alphabetical among them), healthy last
        assert rows(app, "#models") == ["churn-predictor", "fraud-detector", "recommender"]
        assert rows(app, "#alerts") == ["churn-predictor", "fraud-detector"]


async def test_filter_narrows_and_escape_clears() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")  # open the filter box
        assert isinstance(app.focused, Input)
        await pilot.press(*"fraud")  # type a model name
        assert rows(app, "#models") == ["fraud-detector"]
        assert rows(app, "#alerts") == ["fraud-detector"]
        await pilot.press("enter")  # keep the filter, back to the table
        assert isinstance(app.focused, DataTable)
        await pilot.press("escape")  # clear the filter
        assert len(rows(app, "#models")) == 3


def typed(app: MLConsoleApp, *keys: str) -> None:
    """Keys queued at once, as a terminal sends them to a screen too busy to take each
    before the next comes in."""
    from textual import events

    for key in keys:
        char = {"slash": "/", "escape": "\x1b", "down": None}.get(key, key)
        app.post_message(events.Key(key, char))


async def test_letters_queued_behind_slash_land_in_the_filter() -> None:
    """At a thousand models the UI can be busy for a frame or more, and the keys typed
    meanwhile wait in its queue: every letter after `/` lands in the filter, none in
    the table the filter opens over."""
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        typed(app, "slash", *"fraud")
        await until(pilot, lambda: rows(app, "#models") == ["fraud-detector"], "the filter")
        assert app.screen.query_one("#filter", Input).value == "fraud"
        # In the filter `/` is text, typed in its place however fast it comes.
        typed(app, "slash", *"x")
        await until(pilot, lambda: app.screen.query_one("#filter", Input).value == "fraud/x", "/")
        # `escape` after the letters typed before it: it clears what they typed.
        typed(app, "escape")
        await until(pilot, lambda: len(rows(app, "#models")) == 3, "the filter cleared")
        typed(app, "slash", *"fraud", "escape")
        await until(pilot, lambda: not app.screen.query_one("#filter", Input).value, "cleared")
        await pilot.pause()
        assert len(rows(app, "#models")) == 3
        assert isinstance(app.focused, DataTable)


async def test_in_the_filter_slash_is_only_text() -> None:
    """`/` (a key that opens the filter at once) is no action while the filter has
    focus: the Input types it, over a selection too, and the palette does not offer
    to open the filter it is in."""
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert screen.check_action("filter", ()) is True
        await pilot.press("slash", *"abc")
        assert screen.check_action("filter", ()) is False
        box = screen.query_one("#filter", Input)
        box.select_all()
        await pilot.press("slash")
        assert box.value == "/"


async def test_the_footer_is_built_again_only_when_the_keys_it_shows_change() -> None:
    """Every change of focus made Textual's footer build all its keys again (50-170 ms
    at a thousand models): `tab` between the tables shows the same keys and builds
    nothing; the filter, where `/` is off (and not shown), does."""
    from textual.widgets._footer import FooterKey

    from screens.footer import KeysFooter

    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        footer = app.screen.query_one(KeysFooter)
        await pilot.pause()
        rebuilt: list[int] = []
        original = footer.recompose

        async def counting() -> None:
            rebuilt.append(1)
            await original()

        footer.recompose = counting  # type: ignore[method-assign]
        await pilot.press("tab", "tab")  # to the alerts and back: the same keys
        await pilot.pause()
        assert rebuilt == []
        assert [k for k in footer.query(FooterKey) if k.action == "filter"]
        await pilot.press("slash")  # into the filter: "/ Filter" is off there
        await until(pilot, lambda: rebuilt, "the footer rebuilt")
        await pilot.pause()
        assert not [k for k in footer.query(FooterKey) if k.action == "filter"]


async def test_filter_matches_alert_names() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"drift")  # filter by an alert name
        assert rows(app, "#models") == ["churn-predictor"]


async def test_enter_opens_alert_detail_and_escape_returns() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down")  # second row: fraud-detector
        await pilot.press("enter")  # open its firing alert
        assert isinstance(app.screen, AlertDetailScreen)
        assert app.screen.alert is not None
        assert app.screen.alert.name == "ModelErrorBudgetBurn"
        await pilot.press("escape")  # back to the dashboard
        assert isinstance(app.screen, DashboardScreen)


async def test_enter_on_alerts_table_opens_that_alert() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")  # focus the alerts table
        await pilot.press("enter")  # open the first alert
        assert isinstance(app.screen, AlertDetailScreen)
        assert app.screen.alert is not None
        assert app.screen.alert.name == "ModelFeatureDrift"


async def test_help_and_quit() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")  # open help
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")  # close help
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("q")  # quit
    assert app.return_code in (None, 0)


async def test_palette_opens() -> None:
    from textual.command import CommandPalette

    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")  # open the command palette
        assert isinstance(app.screen, CommandPalette)


class _HangingPrometheus(MetricsAdapter):
    """A metrics source that never answers: the refresh stays in flight."""

    def __init__(self) -> None:
        super().__init__("prometheus", SourceSettings(url="http://127.0.0.1:1"))
        self.asked = asyncio.Event()

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        self.asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        return await self.query(promql)  # type: ignore[return-value]


async def test_a_refresh_in_flight_never_blocks_a_key() -> None:
    hanging = _HangingPrometheus()
    app = MLConsoleApp(CONFIG, Poller(CONFIG, {"prometheus": hanging}))
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(hanging.asked.wait(), timeout=30)
        await pilot.press("question_mark")  # help opens while the refresh hangs
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")  # and closes
        await pilot.press("slash", "x")  # the filter takes typing
        assert app.screen.query_one("#filter", Input).value == "x"


async def test_down_source_is_shown_with_its_age() -> None:
    app = app_with_snapshot(prometheus_down=True)
    async with app.run_test(size=SIZE):
        bar = str(app.screen.query_one("#sources").render())
        assert "prometheus DOWN data 42s old" in bar
        assert "cannot connect" in bar


def test_dashboard_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_with_snapshot(), terminal_size=SIZE)


def test_alert_detail_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    # down: select fraud-detector; enter: open its alert
    assert snap_compare(app_with_snapshot(), press=["down", "enter"], terminal_size=SIZE)


async def test_the_alert_detail_says_when_its_source_goes_down_while_it_is_open() -> None:
    """The detail covers the dashboard's source bar, so it carries its own: SLIs read
    from a source that has since gone down must not look current."""
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "enter")  # down: select fraud-detector; enter: its alert
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        bar = app.screen.query_one("#sources")
        assert "prometheus OK" in str(bar.render())
        app.apply_snapshot(snapshot(prometheus_down=True))  # Prometheus stops answering
        await until(pilot, lambda: "prometheus DOWN" in str(bar.render()), "the source down")
        assert "cannot connect" in str(bar.render())


def replayed_lab_app() -> MLConsoleApp:
    """A snapshot recorded from the real lab after `inject bad-deploy`, replayed."""
    import json
    from pathlib import Path

    from console.config.loader import load_config
    from console.sources.snapshot import snapshot_from_dict

    data_dir = Path(__file__).parent / "data"
    config = load_config(data_dir / "lab_config.yaml")
    # No incidents of its own in the replay, and none in the recorded lab's store.
    config = config.model_copy(
        update={
            "store": config.store.model_copy(update={"path": None}),
            "incidents": config.incidents.model_copy(update={"auto_open": False}),
        }
    )
    recorded = json.loads((data_dir / "lab_bad_deploy.json").read_text())
    snap = snapshot_from_dict(recorded, tuple(config.slis))
    app = create_app(config, poll=False, clock=lambda: snap.taken_at)
    app.snapshot = snap
    return app


async def test_replayed_lab_snapshot_shows_the_bad_deploy() -> None:
    app = replayed_lab_app()
    async with app.run_test(size=SIZE):
        # Both paged models (bad deploy, drift) above the healthy one.
        assert rows(app, "#models")[2] == "recommender"
        table = app.screen.query_one("#models", DataTable)
        assert "red" in str(table.get_cell("fraud-detector", "error_ratio").style)
        assert str(table.get_cell("fraud-detector", "serving")) == "v4"  # the bad version
        assert "ModelErrorBudgetBurn" in [
            str(r[1])
            for r in (
                app.screen.query_one("#alerts", DataTable).get_row_at(i)
                for i in range(app.screen.query_one("#alerts", DataTable).row_count)
            )
        ]


def test_lab_bad_deploy_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(replayed_lab_app(), terminal_size=SIZE)


async def test_keys_on_an_alert_find_its_model_by_the_configured_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from console.sources.snapshot import Snapshot

    config = CONFIG.model_copy(update={"model_label": "service"})
    app = create_app(config, poll=False, clock=lambda: NOW)
    base = snapshot()
    relabelled = tuple(
        replace(a, labels={("service" if k == "model" else k): v for k, v in a.labels.items()})
        for a in base.alerts
    )
    app.snapshot = Snapshot.build(
        taken_at=NOW,
        slis=base.slis,
        readings=base.readings,
        alerts=relabelled,
        sources=base.sources,
        model_label="service",
    )
    asked: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(DashboardScreen, "_act", lambda self, name, p: asked.append((name, p)))
    async with app.run_test(size=SIZE) as pilot:
        assert rows(app, "#alerts") == ["churn-predictor", "fraud-detector"]
        await pilot.press("tab")  # focus the alerts table
        await pilot.press("down")  # the fraud-detector alert
        await pilot.press("r")  # roll back the alert's model
    assert asked == [("rollback", {"model": "fraud-detector"})]


def _with_alerts(base: Snapshot, alerts: tuple[AlertRecord, ...]) -> Snapshot:
    return Snapshot.build(
        taken_at=NOW, slis=base.slis, readings=base.readings, alerts=alerts, sources=base.sources
    )


async def test_a_new_page_becomes_the_selection_when_none_is_selected() -> None:
    app = app_with_snapshot()
    quiet = _with_alerts(app.snapshot, ())
    app.snapshot = quiet
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        models = screen.query_one("#models", DataTable)
        assert app.focused is models and rows(app, "#models")[models.cursor_row] != "recommender"
        page = alert("recommender", "ModelLatencyHigh", "page", 0.1, "p99 above 500ms")
        app.apply_snapshot(_with_alerts(quiet, (page,)))  # the page arrives
        await pilot.pause()
        assert app.focused is models  # focus stays where the user left it
        assert rows(app, "#models")[models.cursor_row] == "recommender"
        assert screen._focused_alert() == page
        await pilot.press("t")  # triage: it is the page's, not "select an alert"
        assert not any("Select an alert" in n.message for n in app._notifications)


async def test_a_new_page_leaves_a_chosen_alert_alone() -> None:
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await pilot.press("tab")  # focus the alerts table
        await pilot.press("down")  # choose fraud-detector's alert
        chosen = screen._focused_alert()
        assert chosen is not None and chosen.model == "fraud-detector"
        page = alert("recommender", "ModelLatencyHigh", "page", 0.1, "p99 above 500ms")
        app.apply_snapshot(_with_alerts(app.snapshot, (*app.snapshot.alerts, page)))
        await pilot.pause()
        assert screen._focused_alert() == chosen


async def test_colon_opens_a_palette_that_runs_the_actions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.command import CommandPalette

    asked: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(DashboardScreen, "_act", lambda self, name, p: asked.append((name, p)))
    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down")  # select fraud-detector
        await pilot.press("colon")  # open the command palette, the k9s way
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"roll back")  # search for the action
        await until_palette_settles(pilot)
        await pilot.press("enter")  # run the best match
        await until(pilot, lambda: asked, "the palette ran an action")
    assert asked == [("rollback", {"model": "fraud-detector"})]


async def until_palette_settles(pilot: object) -> None:
    from textual.command import CommandList, CommandPalette

    app = pilot.app  # type: ignore[attr-defined]

    def found() -> bool:
        screen = app.screen
        return isinstance(screen, CommandPalette) and screen.query_one(CommandList).option_count > 0

    await until(pilot, found, "the palette found something")


async def test_the_palette_lists_the_actions_and_hides_mutations_when_read_only() -> None:
    screen_titles: dict[bool, set[str]] = {}
    for read_only in (False, True):
        app = create_app(CONFIG, poll=False, clock=lambda: NOW, read_only=read_only)
        app.snapshot = snapshot()
        async with app.run_test(size=SIZE):
            titles = {c.title for c in app.get_system_commands(app.screen)}
            screen_titles[read_only] = titles
    expected = {"Roll back", "Fallback on/off", "Silence", "Pipeline pause/resume"}
    book = {"Triage", "Acknowledge", "Note", "Incident", "Export", "Refresh now"}
    assert expected | book <= screen_titles[False]
    assert book <= screen_titles[True] and not expected & screen_titles[True]


async def test_during_a_metrics_outage_the_registry_models_stay_and_r_acts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console.sources.snapshot import Deployment

    down = snapshot(prometheus_down=True)
    app = create_app(CONFIG, poll=False, clock=lambda: NOW)
    app.snapshot = Snapshot.build(
        taken_at=NOW,
        slis=down.slis,
        readings={},  # Prometheus never answered
        alerts=(),
        sources=down.sources,
        deployments={
            m: Deployment(m, "champion", "3", NOW - 600, None, True)
            for m in ("fraud-detector", "recommender")
        },
    )
    asked: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(DashboardScreen, "_act", lambda self, name, p: asked.append((name, p)))
    async with app.run_test(size=(80, 24)) as pilot:
        assert rows(app, "#models") == ["fraud-detector", "recommender"]
        table = app.screen.query_one("#models", DataTable)
        assert str(table.get_cell("fraud-detector", "error_ratio")).strip() == "—"  # unknown
        await pilot.press("r")  # roll back the selected (first) model
    assert asked == [("rollback", {"model": "fraud-detector"})]


async def test_colon_opens_the_palette_on_other_screens_but_types_in_a_text_box() -> None:
    from textual.command import CommandPalette

    app = app_with_snapshot()
    async with app.run_test(size=SIZE) as pilot:
        from screens.incidents import IncidentsScreen

        await pilot.press("I")  # the incidents screen
        assert isinstance(app.screen, IncidentsScreen)
        await pilot.press("colon")  # the palette, from this screen too
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")  # close the palette
        await pilot.press("escape")  # back to the dashboard
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("slash")  # open the filter box
        await pilot.press("colon")  # typed into the box, not a palette
        assert not isinstance(app.screen, CommandPalette)
        assert app.screen.query_one("#filter", Input).value == ":"


class _DownPrometheus(MetricsAdapter):
    """A metrics source that refuses every query: an outage from the start."""

    def __init__(self) -> None:
        super().__init__("prometheus", SourceSettings(url="http://127.0.0.1:1"))

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        raise AdapterError("prometheus", "cannot connect", url="http://127.0.0.1:1")

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        return await self.query(promql)  # type: ignore[return-value]


async def test_models_of_an_earlier_session_stay_listed_while_no_source_answers(
    tmp_path: Path,
) -> None:
    from adapters.records import RegisteredModel
    from console.config.models import StoreConfig
    from console.sources.alias_history import AliasHistory

    cfg = CONFIG.model_copy(update={"store": StoreConfig(path=tmp_path / "store.db")})
    earlier = AliasHistory(tmp_path / "store.db")  # what an earlier session saw
    earlier.observe(
        [RegisteredModel("fraud-detector", {"champion": "3"}), RegisteredModel("recommender", {})],
        cfg.actions.alias,
    )
    earlier.close()
    app = MLConsoleApp(cfg, Poller(cfg, {"prometheus": _DownPrometheus()}))
    async with app.run_test(size=SIZE) as pilot:
        known = ["fraud-detector", "recommender"]
        await until(pilot, lambda: rows(app, "#models") == known, "the models of the registry")
        assert app.snapshot.sources["prometheus"].state(time.time()) is Health.DOWN
