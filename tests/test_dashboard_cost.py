"""The dashboard's cost follows what changed and what is in view: a new snapshot
touches only the cells that changed, a source that changed nothing rebuilds nothing,
one-line updates lay out nothing, and the selection survives all of it."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from textual.screen import Screen
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from console.render import fitting, model_table
from console.sources.sli import SliReading, SliStatus
from console.sources.snapshot import Snapshot, SourceHealth
from screens.app import MLConsoleApp, create_app
from tests.builders import CONFIG, NOW, VALUES, snapshot
from tests.waits import screen_lines, until

SIZE = (160, 40)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def new_app(first: Snapshot, clock: Callable[[], float] = lambda: NOW) -> MLConsoleApp:
    app = create_app(CONFIG, poll=False, clock=clock)
    app.snapshot = first
    return app


def with_value(snap: Snapshot, model: str, sli: str, value: float) -> Snapshot:
    """``snap`` with one reading's value changed (a new reading object, as the
    poller makes for every sample)."""
    readings = dict(snap.readings)
    readings[(model, sli)] = replace(readings[(model, sli)], value=value)
    return replace(snap, readings=readings)


def fresh_readings(snap: Snapshot) -> Snapshot:
    """The same values in new reading objects: a refresh in which nothing moved."""
    readings = {key: replace(r) for key, r in snap.readings.items()}
    return replace(snap, readings=readings)


def record(table: DataTable[Any], name: str) -> list[tuple[Any, ...]]:
    """Calls of ``table.<name>`` from now on (the call still happens)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(table, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(tuple(str(a) for a in args[:2]))
        return original(*args, **kwargs)

    setattr(table, name, recording)
    return calls


def record_draws(dashboard: Any) -> list[Snapshot]:
    """The snapshots the dashboard's models table is drawn from, from now on."""
    drawn: list[Snapshot] = []
    original = dashboard._render_models

    def recording(snap: Snapshot, now: float) -> None:
        drawn.append(snap)
        original(snap, now)

    dashboard._render_models = recording
    return drawn


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SLIs whose reading :func:`model_table.sli_widths` measures from now on."""
    names: list[str] = []
    original = model_table.sli_widths

    def counting(sli: Any, reading: Any) -> tuple[int, ...]:
        names.append(sli.name)
        return original(sli, reading)

    monkeypatch.setattr(model_table, "sli_widths", counting)
    monkeypatch.setattr(fitting, "sli_widths", counting)  # where the rows are measured
    return names


def rebuilt(base: Snapshot, **changes: Any) -> Snapshot:
    """``base`` built again (indexes and all) with ``changes`` to what it is built from."""
    given: dict[str, Any] = {
        "taken_at": base.taken_at,
        "slis": base.slis,
        "readings": base.readings,
        "alerts": base.alerts,
        "sources": base.sources,
    }
    return Snapshot.build(**(given | changes))


def many_models(count: int) -> Snapshot:
    """The test world with ``count`` more healthy models (``m-000``...), so the models
    table scrolls."""
    base = snapshot()
    readings = dict(base.readings)
    for index in range(count):
        for sli in base.slis:
            reading = base.readings[("recommender", sli.name)]
            readings[(f"m-{index:03d}", sli.name)] = replace(reading, model=f"m-{index:03d}")
    return rebuilt(base, readings=readings)


async def test_one_changed_reading_updates_only_its_cell() -> None:
    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.press("down")  # select the second model, fraud-detector
        assert table.cursor_row == 1
        updates = record(table, "update_cell")
        rebuilds = record(table, "clear")
        app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", 0.37))
        await pilot.pause()
        assert updates == [("recommender", "latency_p99")]
        assert rebuilds == []
        assert "370ms" in str(table.get_cell("recommender", "latency_p99"))
        assert "370ms" in "\n".join(screen_lines(app))  # drawn, not only stored
        assert table.cursor_row == 1  # still fraud-detector
        # A refresh in which no value moved tells the table of nothing.
        app.apply_snapshot(fresh_readings(app.snapshot))
        await pilot.pause()
        assert updates == [("recommender", "latency_p99")]


async def test_a_metrics_refresh_does_not_rebuild_the_alerts_table() -> None:
    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        alerts = app.screen.query_one("#alerts", DataTable)
        alerts.focus()
        alerts.move_cursor(row=1)  # the second alert
        await pilot.pause()
        rebuilds = record(alerts, "clear")
        added = record(alerts, "add_row")
        updates = record(alerts, "update_cell")
        app.apply_snapshot(with_value(app.snapshot, "fraud-detector", "error_ratio", 0.61))
        await pilot.pause()
        assert (rebuilds, added, updates) == ([], [], [])
        assert alerts.cursor_row == 1 and alerts.has_focus
        # An alert that resolves does rebuild it.
        app.apply_snapshot(snapshot(alerts=app.snapshot.alerts[:1]))
        await until(pilot, lambda: alerts.row_count == 1, "the resolved alert gone")
        assert rebuilds


async def test_the_alerts_are_listed_again_only_when_alerts_incidents_or_the_filter_change() -> (
    None
):
    """A sequence of snapshots, incident changes in the store and a filter: while the
    alerts, the open incidents and the filter are what they were, the dashboard keeps
    its list of alerts and only their ages move (the app keeps its tuple of open
    incidents when the store's are the same); each change of one of them shows."""
    clock = Clock()
    app = new_app(snapshot(), clock)
    async with app.run_test(size=SIZE) as pilot:
        dashboard: Any = app.screen
        alerts = app.screen.query_one("#alerts", DataTable)
        await until(pilot, lambda: app.incidents is not None, "the incidents opened")
        book = app.incidents
        assert book is not None

        def column(index: int) -> list[str]:
            return [str(alerts.get_cell_at((row, index))) for row in range(alerts.row_count)]

        def refresh(seconds: float) -> None:  # a metrics refresh: the alerts as they were
            clock.now += seconds
            app.apply_snapshot(fresh_readings(app.snapshot))

        assert column(0) == ["churn-predictor", "fraud-detector"] and column(5) == ["—", "—"]

        # An incident opens for the fraud detector's alert: its row says so.
        (fraud_alert,) = app.snapshot.alerts_for("fraud-detector")
        opened = book.open([fraud_alert], model_label="model", actor="bob", now=clock.now)
        app.reload_incidents()
        await until(pilot, lambda: column(5)[1] == f"{opened.id} triggered", "the incident shown")

        # Refreshes with nothing new: the same incidents, read again from the store.
        listed, incidents = dashboard._alert_listed, app.open_incidents
        for _ in range(3):
            refresh(1)
            await pilot.pause()
            await app.workers.wait_for_complete()
        assert app.open_incidents is incidents and dashboard._alert_listed is listed
        assert column(4) == ["12m03s", "3m03s"] and column(5) == ["—", f"{opened.id} triggered"]

        # Alice acknowledges it (the store changes, as from another console).
        book.acknowledge(opened.number, actor="alice", now=clock.now)
        refresh(1)
        await until(pilot, lambda: column(5)[1] == f"{opened.id} ack alice", "the ack shown")
        assert app.open_incidents is not incidents and dashboard._alert_listed is not listed

        # A filter lists the matching alert only; clearing it lists both again.
        await pilot.press("slash", *"fraud")
        await until(pilot, lambda: alerts.row_count == 1, "the filter applied")
        assert column(0) == ["fraud-detector"] and column(5) == [f"{opened.id} ack alice"]
        await pilot.press("escape")
        await until(pilot, lambda: alerts.row_count == 2, "the filter cleared")
        assert column(5) == ["—", f"{opened.id} ack alice"]

        # The churn alert resolves: a new alerts tuple, and one row left.
        app.apply_snapshot(rebuilt(app.snapshot, alerts=(fraud_alert,)))
        await until(pilot, lambda: alerts.row_count == 1, "the resolved alert gone")
        assert column(0) == ["fraud-detector"] and column(5) == [f"{opened.id} ack alice"]


async def test_ages_move_only_their_cells() -> None:
    clock = Clock()
    app = new_app(snapshot(), clock)
    async with app.run_test(size=SIZE) as pilot:
        alerts = app.screen.query_one("#alerts", DataTable)
        before = [str(alerts.get_cell_at((row, 4))) for row in range(alerts.row_count)]
        rebuilds = record(alerts, "clear")
        updates = record(alerts, "update_cell")
        clock.now += 1  # ages 3m and 12m: 3m01s and 12m01s
        app.apply_snapshot(fresh_readings(app.snapshot))
        await pilot.pause()
        after = [str(alerts.get_cell_at((row, 4))) for row in range(alerts.row_count)]
        assert before == ["12m", "3m"] and after == ["12m01s", "3m01s"]
        assert rebuilds  # the age column grew: laid out again, as before
        rebuilds.clear()
        clock.now += 1
        app.apply_snapshot(fresh_readings(app.snapshot))
        await pilot.pause()
        assert rebuilds == []
        assert sorted(updates) == [
            ("churn-predictor-ModelFeatureDrift", "age"),
            ("fraud-detector-ModelErrorBudgetBurn", "age"),
        ]
        assert "12m02s" in "\n".join(screen_lines(app))


async def test_the_source_bar_and_titles_lay_out_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    app = new_app(snapshot(alerts=()), clock)  # no ages in an alerts table
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        bar = screen.query_one("#sources")

        def settled() -> bool:
            """Nothing left to lay out or paint."""
            return not (
                bar._layout_required
                or screen._layout_required
                or screen._layout_widgets
                or screen._dirty_widgets
            )

        # Started: the store read (it redraws the dashboard) and the first layouts done.
        await until(pilot, lambda: app.incidents is not None and settled(), "a settled screen")
        await pilot.pause()
        layouts: list[object] = []
        original = Screen._refresh_layout

        def counting(self: Screen[Any], *args: Any, **kwargs: Any) -> None:
            if self is screen:
                layouts.append(args)
            original(self, *args, **kwargs)

        monkeypatch.setattr(Screen, "_refresh_layout", counting)
        clock.now += 5  # every source's age moves: 1s becomes 6s
        screen._tick()  # type: ignore[attr-defined]
        await until(pilot, lambda: "6s" in screen_lines(app)[1] and settled(), "the new ages")
        await pilot.pause()
        assert layouts == []
        # A new snapshot with new ages and values: still no layout.
        clock.now += 1
        app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", 0.37))
        await until(
            pilot, lambda: "370ms" in "\n".join(screen_lines(app)) and settled(), "the new value"
        )
        await pilot.pause()
        assert layouts == []
        # A source going down adds a line to the bar: that one is laid out.
        sources = dict(app.snapshot.sources)
        sources["prometheus"] = SourceHealth(
            "prometheus",
            "prometheus",
            2,
            6,
            last_success=NOW - 42,
            last_error="prometheus: cannot connect",
            last_error_at=clock.now,
        )
        app.apply_snapshot(replace(app.snapshot, sources=sources))
        await until(pilot, lambda: layouts, "a layout for the taller bar")
        await until(
            pilot,
            lambda: any("cannot connect" in line for line in screen_lines(app)),
            "the error line",
        )


async def test_a_changed_row_out_of_view_is_fresh_when_scrolled_to() -> None:
    app = new_app(many_models(120))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.pause()
        last = "recommender"
        assert table.get_row_index(last) == table.row_count - 1
        assert last not in "\n".join(screen_lines(app))  # out of view
        updates = record(table, "update_cell")
        built: list[str] = []
        original = model_table.cells

        def counting(snap: Snapshot, model: str, *args: Any, **kwargs: Any) -> Any:
            built.append(model)
            return original(snap, model, *args, **kwargs)

        model_table.cells = counting  # type: ignore[assignment]
        try:
            app.apply_snapshot(with_value(app.snapshot, last, "latency_p99", 0.37))
            await pilot.pause()
            assert built == []  # not in view: not built
            assert len(updates) == 1  # the table told once that its drawn lines are old
            table.move_cursor(row=table.row_count - 1, animate=False)  # scrolls to it
            lines = await until(
                pilot,
                lambda: [line for line in screen_lines(app) if last in line],
                "the last row in view",
            )
            assert "370ms" in lines[0]
            # Only the rows that came into view were built, not the other hundred.
            assert last in built and len(built) <= table.size.height + 2
        finally:
            model_table.cells = original  # type: ignore[assignment]


async def test_rows_reordered_without_a_rebuild_keep_the_selection() -> None:
    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.press("down")  # select fraud-detector (second: churn-predictor first)
        rebuilds = record(table, "clear")
        # churn-predictor's drift alert resolves and its drift recovers: it sorts last.
        snap = with_value(app.snapshot, "churn-predictor", "drift_psi", 0.02)
        readings = dict(snap.readings)
        key = ("churn-predictor", "drift_psi")
        readings[key] = replace(readings[key], status=SliStatus.OK)
        alerts = tuple(a for a in snap.alerts if a.model != "churn-predictor")
        app.apply_snapshot(rebuilt(snap, readings=readings, alerts=alerts))
        await pilot.pause()
        order = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert order == ["fraud-detector", "churn-predictor", "recommender"]
        assert rebuilds == []
        assert table.cursor_row == 0  # fraud-detector, still selected
        lines = screen_lines(app)
        assert lines.index(next(x for x in lines if "fraud-detector" in x)) < lines.index(
            next(x for x in lines if x.lstrip().startswith("churn-predictor"))
        )


@pytest.mark.parametrize("detail", model_table.DETAILS)
def test_row_widths_measure_what_cells_build(detail: model_table.Detail) -> None:
    snap = snapshot()
    odd = [None, math.nan, math.inf, -0.5, 0.0, 1e-7, 0.00123, 0.999, 12.5, 123456.0, 9e12]
    readings = dict(snap.readings)
    for index, value in enumerate(odd):
        model = f"odd-{index}"
        for sli in snap.slis:
            readings[(model, sli.name)] = SliReading(
                sli.name,
                model,
                value,
                SliStatus.BREACH if index % 2 else SliStatus.OK,
                burn_rate=None if value is None else value * 1000,
                history=tuple(range(index)),
                error="partial" if index % 3 == 0 else None,
            )
    snap = replace(
        snap, readings=readings, models=(*snap.models, *(f"odd-{i}" for i in range(len(odd))))
    )
    stale = frozenset({"latency_p99"})
    for model in [*VALUES, *(f"odd-{i}" for i in range(len(odd))), "x" * 40]:
        built = model_table.cells(snap, model, NOW, stale=stale, detail=detail)
        measured = model_table.row_widths(snap, model, NOW, stale=stale, detail=detail)
        assert measured == [cell.cell_len for cell in built], model
        kept = fitting.RowMeasure(model)
        # Measured afresh, then again from what it kept, at every detail in turn.
        for _ in range(2):
            for other in model_table.DETAILS:
                again = kept.widths(snap, NOW, stale=stale, detail=other)
                wanted = model_table.cells(snap, model, NOW, stale=stale, detail=other)
                assert again == [cell.cell_len for cell in wanted], (model, other)


def test_a_kept_row_measure_measures_again_only_the_readings_that_changed(
    measured: list[str],
) -> None:
    snap = snapshot()
    model = "fraud-detector"
    kept = fitting.RowMeasure(model)
    first = kept.widths(snap, NOW, stale=frozenset(), detail=model_table.FULL)
    assert len(measured) == len(snap.slis)
    measured.clear()
    # The same readings at another detail: nothing is measured again.
    kept.widths(snap, NOW, stale=frozenset(), detail=model_table.COMPACT)
    assert measured == []
    # One reading moves to a wider value: that one alone is measured, and it shows.
    wider = with_value(snap, model, "error_ratio", 123456789.0)
    second = kept.widths(wider, NOW, stale=frozenset(), detail=model_table.FULL)
    assert measured == ["error_ratio"]
    column = 3 + [s.name for s in snap.slis].index("error_ratio")
    assert second[column] > first[column]
    assert second == model_table.row_widths(
        wider, model, NOW, stale=frozenset(), detail=model_table.FULL
    )


async def test_a_snapshot_while_a_screen_is_being_pushed() -> None:
    from screens.alert_detail import AlertDetailScreen

    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(AlertDetailScreen(None, "recommender"))
        # A snapshot arrives before the pushed screen has its widgets.
        app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", 0.37))
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        await until(
            pilot, lambda: "370ms" in "\n".join(screen_lines(app)), "the detail's new value"
        )


async def test_snapshots_at_a_thousand_models_set_off_no_full_collection() -> None:
    """A full collection holds every thread while it scans every object (0.2-0.5 s at a
    thousand models): a stream of snapshots must not set one off every second."""
    before = gc.get_threshold()
    big = many_models(1000)
    app = new_app(big)
    full: list[dict[str, int]] = []

    def noting(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(info)

    async with app.run_test(size=SIZE) as pilot:
        gc.collect()
        gc.callbacks.append(noting)
        try:
            for _ in range(30):
                app.apply_snapshot(fresh_readings(big))  # every reading new, as a refresh
                await pilot.pause()
        finally:
            gc.callbacks.remove(noting)
    assert full == []
    assert gc.get_threshold() == before  # as it was, once the console has ended


async def test_a_wider_value_widens_its_column_in_place_as_a_fresh_table_would_draw_it() -> None:
    wide = 123456.0  # "123456" is wider than any value of the test world
    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.press("down")  # select the second model, fraud-detector
        rebuilds = record(table, "clear")
        added = record(table, "add_row")
        before = table.columns[ColumnKey("drift_psi")].width
        app.apply_snapshot(with_value(app.snapshot, "recommender", "drift_psi", wide))
        await pilot.pause()
        assert (rebuilds, added) == ([], [])  # the rows stayed; only the column moved
        assert table.columns[ColumnKey("drift_psi")].width > before
        assert table.cursor_row == 1  # still fraud-detector
        in_place = screen_lines(app)
        # And back: the column narrows again, still in place.
        app.apply_snapshot(with_value(app.snapshot, "recommender", "drift_psi", 0.02))
        await pilot.pause()
        assert (rebuilds, added) == ([], [])
        assert table.columns[ColumnKey("drift_psi")].width == before
    fresh = new_app(with_value(snapshot(), "recommender", "drift_psi", wide))
    async with fresh.run_test(size=SIZE) as pilot:
        await pilot.press("down")  # the same selection
        assert screen_lines(fresh) == in_place


async def test_a_cell_that_did_not_change_is_not_drawn_again() -> None:
    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.pause()
        drawn: list[tuple[int, int]] = []
        original = DataTable._render_cell

        def drawing(self: DataTable[Any], row: int, column: int, *args: Any) -> Any:
            if self is table and row >= 0:
                drawn.append((row, column))
            return original(self, row, column, *args)

        DataTable._render_cell = drawing  # type: ignore[method-assign]
        try:
            app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", 0.37))
            await until(
                pilot, lambda: "370ms" in "\n".join(screen_lines(app)), "the new value drawn"
            )
            row = table.get_row_index("recommender")
            column = table.get_column_index("latency_p99")
            assert (row, column) in drawn
            assert set(drawn) == {(row, column)}  # every other cell as it was drawn
            drawn.clear()
            # A screen over the dashboard and back: nothing changed, nothing is drawn.
            await pilot.press("question_mark")  # help, over the dashboard
            await pilot.press("escape")  # back
            await until(pilot, lambda: app.screen is not None and table.is_on_screen, "back")
            screen_lines(app)
            assert drawn == []
        finally:
            DataTable._render_cell = original  # type: ignore[method-assign]


async def test_the_alert_detail_draws_again_only_the_part_that_changed() -> None:
    from textual.widgets import Static

    from screens.alert_detail import AlertDetailScreen

    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(AlertDetailScreen(None, "recommender"))
        await until(
            pilot, lambda: "No alerts for recommender" in "\n".join(screen_lines(app)), "the detail"
        )
        updates: list[tuple[str, bool]] = []
        for part in ("alert", "slis"):
            widget = app.screen.query_one(f"#{part}", Static)
            original = widget.update

            def recording(
                *args: Any, _part: str = part, _original: Any = original, **kwargs: Any
            ) -> Any:
                updates.append((_part, kwargs.get("layout", True)))
                return _original(*args, **kwargs)

            widget.update = recording  # type: ignore[method-assign]
        # A refresh in which nothing moved: nothing is drawn again.
        app.apply_snapshot(fresh_readings(app.snapshot))
        await pilot.pause()
        assert updates == []
        # One value moves: the SLIs alone are drawn again, and nothing is laid out.
        app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", 0.37))
        await until(pilot, lambda: "370ms" in "\n".join(screen_lines(app)), "the new value")
        assert updates == [("slis", False)]


async def test_the_alert_detail_does_not_draw_the_dashboard_behind_it() -> None:
    """The detail is opaque: opening it and drawing it again draw nothing of the
    dashboard (a dimmed dashboard behind a dialog was drawn again with every frame
    of the dialog's own, and at a thousand models that was most of the time from
    enter to the detail)."""
    from screens.alert_detail import AlertDetailScreen

    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        tables = [dashboard.query_one(f"#{name}", DataTable) for name in ("models", "alerts")]
        await pilot.press("down")  # select fraud-detector
        await pilot.pause()
        drawn: list[list[str]] = [[], []]
        for table, calls in zip(tables, drawn, strict=True):
            original = table.render_lines

            def recording(crop: Any, _calls: list[str] = calls, _original: Any = original) -> Any:
                if isinstance(app.screen, AlertDetailScreen):  # a frame of the detail's
                    _calls.append(str(crop))
                return _original(crop)

            table.render_lines = recording  # type: ignore[method-assign]
        await pilot.press("enter")  # its alert
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        await until(pilot, lambda: "Errors" in "\n".join(screen_lines(app)), "the detail drawn")
        # A value of the open alert's model moves: the detail is drawn again, alone.
        app.apply_snapshot(with_value(app.snapshot, "fraud-detector", "latency_p99", 0.37))
        await until(pilot, lambda: "370ms" in "\n".join(screen_lines(app)), "the new value")
        assert drawn == [[], []]
        await pilot.press("escape")  # back: the dashboard is drawn again, as it was
        await until(pilot, lambda: app.screen is dashboard, "the dashboard")
        await until(pilot, lambda: "Models (3)" in "\n".join(screen_lines(app)), "its tables")


async def test_snapshots_that_arrive_under_a_screen_are_drawn_once_when_it_closes() -> None:
    from screens.dashboard import DashboardScreen

    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await pilot.press("question_mark")  # help, over the dashboard
        drawn = record_draws(dashboard)
        for value in (0.31, 0.34, 0.37):  # three refreshes while help is up
            app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", value))
        await pilot.pause()
        assert drawn == []  # nothing is drawn under help
        await pilot.press("escape")  # back to the dashboard
        await until(pilot, lambda: "370ms" in "\n".join(screen_lines(app)), "the last value")
        assert drawn == [app.snapshot]  # drawn once, from the last of them


def test_readings_measured_where_they_are_made_are_not_measured_again(
    measured: list[str],
) -> None:
    snap = snapshot()
    book = fitting.WidthBook()
    book.measure(snap)  # as the poller's state thread does with each snapshot
    rows = {model: fitting.RowMeasure(model, book) for model in snap.models}
    for model, row in rows.items():
        got = row.widths(snap, NOW, stale=frozenset(), detail=model_table.FULL)
        assert got == model_table.row_widths(
            snap, model, NOW, stale=frozenset(), detail=model_table.FULL
        )
    measured.clear()  # row_widths, the reference, measures for itself
    for row in rows.values():
        row.widths(snap, NOW, stale=frozenset(), detail=model_table.COMPACT)
    assert measured == []
    # A reading the book has not seen is measured when asked, once.
    wider = with_value(snap, "recommender", "drift_psi", 123456.0)
    rows["recommender"].widths(wider, NOW, stale=frozenset(), detail=model_table.FULL)
    fitting.RowMeasure("recommender", book).widths(
        wider, NOW, stale=frozenset(), detail=model_table.FULL
    )
    assert measured == ["drift_psi"]
    # The book follows the readings there are now, not every reading there was.
    book.measure(wider)
    assert len(book) == len(wider.readings)


async def test_while_keys_come_in_a_big_table_is_drawn_when_they_pause() -> None:
    from screens.dashboard import DashboardScreen
    from screens.dashboard_view import INPUT_FIRST_ROWS

    first = many_models(INPUT_FIRST_ROWS + 100)
    app = new_app(first)
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        clock = [100.0]
        dashboard._monotonic = lambda: clock[0]  # type: ignore[method-assign]
        drawn = record_draws(dashboard)

        def arrive(value: float) -> Snapshot:
            snap = with_value(app.snapshot, "recommender", "latency_p99", value)
            app.apply_snapshot(snap)
            return snap

        # A key has just come in: the new snapshot waits.
        app.last_key_at = 100.0
        arrive(0.31)
        await pilot.pause()
        assert drawn == []
        # Keys keep coming: the next one waits too, but not past a second.
        clock[0], app.last_key_at = 100.5, 100.45
        arrive(0.32)
        await pilot.pause()
        assert drawn == []
        clock[0], app.last_key_at = 101.1, 101.05
        latest = arrive(0.33)
        assert drawn == [latest]  # a second after the first held back: drawn at once
        # The keys pause: what was held is drawn once the quiet comes.
        clock[0], app.last_key_at = 200.0, 199.9
        held = arrive(0.34)
        assert drawn == [latest]
        clock[0] = 200.5  # no key since 199.9
        await until(pilot, lambda: drawn[-1:] == [held], "the held snapshot drawn")
        assert len(drawn) == 2
        # Enter on a filter is the key's own effect: drawn at once, held or not.
        app.last_key_at = clock[0]
        arrive(0.35)
        await pilot.press("slash", "r", "e", "c", "enter")  # filter by "rec", enter
        assert drawn[-1] is app.snapshot
        table = dashboard.query_one("#models", DataTable)
        assert table.row_count == 1  # only the recommender


async def test_a_big_table_follows_the_filter_once_typing_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.widgets import Input

    from screens import dashboard as board
    from screens.dashboard_view import INPUT_FIRST_ROWS

    monkeypatch.setattr(board, "FILTER_QUIET", 3600.0)  # typing never pauses here...
    first = many_models(INPUT_FIRST_ROWS + 100)
    app = new_app(first)
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        # The start-up's incidents are read and drawn first (on a loaded machine that
        # can be while the letters go in): what is counted here is the filter alone.
        await app.workers.wait_for_complete()
        await pilot.pause()
        await until(pilot, lambda: dashboard._retry is None, "the start-up's snapshot drawn")
        drawn = record_draws(dashboard)
        table = dashboard.query_one("#models", DataTable)
        await pilot.press("slash", "m", "-", "1", "2")  # filter by "m-12"
        assert app.screen.query_one("#filter", Input).value == "m-12"  # each letter shown
        assert drawn == [] and table.row_count == len(first.models)  # the table waits
        await pilot.press("enter")  # ...until enter
        assert len(drawn) == 1  # four letters, one redraw
        assert table.row_count == 10  # m-120 ... m-129
        await pilot.press("escape")  # clear: at once, whatever the size
        assert len(drawn) == 2 and table.row_count == len(first.models)
    monkeypatch.setattr(board, "FILTER_QUIET", 0.01)
    app = new_app(first)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.press("slash", "m", "-", "1", "2")  # filter by "m-12", then a pause
        await until(pilot, lambda: table.row_count == 10, "the table following the pause")


async def test_the_alerts_title_counts_what_is_shown_and_waits_for_its_source() -> None:
    from console.sources.snapshot import Health

    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:

        def title() -> str:
            return next(x for x in screen_lines(app) if x.lstrip().startswith("Alerts "))

        assert "2 firing · 2 total" in title()
        await pilot.press("slash", "f", "r", "a", "u", "d")  # filter by "fraud"
        assert "1 firing · 1 total" in title()
        assert "2 firing · 2 in all" in title()
        await pilot.press("escape")  # clear the filter
        # Before Alertmanager has answered, no count: it says it waits.
        pending = SourceHealth("alertmanager", "alertmanager", 2, 6)
        assert pending.state(NOW) is Health.PENDING
        waiting = rebuilt(
            app.snapshot, alerts=(), sources={**app.snapshot.sources, "alertmanager": pending}
        )
        app.apply_snapshot(waiting)
        await pilot.pause()
        assert "waiting for alertmanager" in title()
        assert "0 firing" not in title()


async def test_a_small_table_is_drawn_at_once_while_keys_come_in() -> None:
    from screens.dashboard import DashboardScreen

    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        dashboard._monotonic = lambda: 100.0  # type: ignore[method-assign]
        app.last_key_at = 100.0  # a key has just come in
        app.apply_snapshot(with_value(app.snapshot, "recommender", "latency_p99", 0.37))
        await pilot.pause()
        assert "370ms" in "\n".join(screen_lines(app))


def odd_world() -> Snapshot:
    """The test world with models whose readings are odd (none, NaN, huge, errors),
    one in fallback with its pipeline paused, and deploys seen moving (an age shown)."""
    from console.sources.snapshot import Deployment

    snap = snapshot()
    odd = [None, math.nan, math.inf, -0.5, 0.0, 1e-7, 0.00123, 0.999, 12.5, 123456.0, 9e12]
    readings = dict(snap.readings)
    names = [f"odd-{i}" for i in range(len(odd))]
    for model, value in zip(names, odd, strict=True):
        for sli in snap.slis:
            readings[(model, sli.name)] = SliReading(
                sli.name,
                model,
                value,
                SliStatus.BREACH if value and value > 1 else SliStatus.OK,
                burn_rate=None if value is None else value * 1000,
                history=(1.0, 2.0),
                error="partial" if model.endswith("3") else None,
            )
    deployments = {
        "recommender": Deployment("recommender", "champion", "12", NOW - 90, "11", False),
        "odd-1": Deployment("odd-1", "champion", "3", NOW - 7200, None, True),
        "odd-2": Deployment("odd-2", "champion", "40", NOW - 4000, "39", False),
    }
    switches = {"fallback": {"odd-4": True}, "pipeline": {"odd-4": True, "odd-5": True}}
    return rebuilt(
        snap,
        readings=readings,
        deployments=deployments,
        switches=switches,
        known=("never-read",),
    )


@pytest.mark.parametrize("stale", [frozenset(), frozenset({"latency_p99"}), None])
def test_a_survey_gives_each_columns_widest_cell_as_every_row_would(
    stale: frozenset[str] | None,
) -> None:
    snap = odd_world()
    gone = stale if stale is not None else frozenset(s.name for s in snap.slis)
    book = fitting.WidthBook()
    book.measure(snap)  # as the poller's state thread does
    survey = book.survey_of(snap)
    assert survey is not None and survey.order == tuple(model_table.ordered(snap, snap.models))
    for now in (NOW, NOW + 3600):  # the deploys' ages move with the clock
        for detail in model_table.DETAILS:
            rows = [
                model_table.row_widths(snap, m, now, stale=gone, detail=detail) for m in snap.models
            ]
            widest = [max(column) for column in zip(*rows, strict=True)]
            assert survey.widths(detail, now, gone) == widest, detail
    assert book.survey_of(snapshot()) is None  # a survey is of one snapshot only


async def walk_a_big_table(surveyed: bool) -> list[list[str]]:
    """The screen at each step of one sequence of snapshots and keys, drawn from the
    poller's surveys (``surveyed``) or measuring every row."""
    first = many_models(120)
    app = new_app(first)
    screens: list[list[str]] = []

    def step(snap: Snapshot) -> None:
        if surveyed:
            app.widths.measure(snap)  # as the poller does before it publishes
        app.apply_snapshot(snap)

    async with app.run_test(size=SIZE) as pilot:
        step(first)
        await pilot.pause()
        screens.append(screen_lines(app))
        snap = first
        for model, value in [
            ("m-000", 0.37),
            ("m-119", 0.44),
            ("m-001", 12345.0),  # wider: the column grows
            ("m-060", 0.02),
        ]:
            snap = with_value(snap, model, "latency_p99", value)
            step(snap)
            await pilot.pause()
            screens.append(screen_lines(app))
        app.screen.query_one("#models", DataTable).focus()
        await pilot.press("ctrl+end")  # to the last model
        screens.append(screen_lines(app))
        snap = with_value(snap, "m-000", "error_ratio", 0.9)  # breaches, out of view
        step(snap)
        await pilot.pause()
        screens.append(screen_lines(app))
        await pilot.press("ctrl+home")  # back to the first
        screens.append(screen_lines(app))
    return screens


async def test_a_surveyed_table_draws_as_one_measured_row_by_row() -> None:
    surveyed = await walk_a_big_table(surveyed=True)
    measured = await walk_a_big_table(surveyed=False)
    for index, (one, other) in enumerate(zip(surveyed, measured, strict=True)):
        assert one == other, f"step {index}"

    def line(screen: list[str], model: str) -> str:
        return next((x for x in screen if x.lstrip().startswith(model + " ")), "")

    assert "370ms" in line(surveyed[1], "m-000")
    assert line(surveyed[3], "m-001") != line(surveyed[2], "m-001")  # the wide value
    assert line(surveyed[5], "m-000") == ""  # scrolled out of view...
    assert "90%" in line(surveyed[7], "m-000")  # ...and back, as it is now


async def test_a_filter_on_a_surveyed_table_keeps_its_columns_and_measures_no_row() -> None:
    first = with_value(many_models(120), "m-001", "latency_p99", 12345.0)  # a wide value
    app = new_app(first)
    app.widths.measure(first)  # as the poller does
    async with app.run_test(size=SIZE) as pilot:
        app.apply_snapshot(first)
        await pilot.pause()
        table = app.screen.query_one("#models", DataTable)
        before = {key.value: column.width for key, column in table.columns.items()}
        measured_rows = record(app.screen, "_measure_rows")  # type: ignore[arg-type]
        await pilot.press("slash", "m", "-", "1", "1")  # filter by "m-11"
        assert table.row_count == 10  # m-110 ... m-119
        assert [str(table.get_row_at(i)[0]) for i in (0, 9)] == ["m-110", "m-119"]
        after = {key.value: column.width for key, column in table.columns.items()}
        assert after == before  # m-001's wide value still sets its column
        assert measured_rows == []
        assert "10 of 123" in "\n".join(screen_lines(app))


async def test_rows_of_fixed_width_columns_are_not_measured_and_size_the_table_the_same() -> None:
    from rich.console import Console, ConsoleOptions
    from rich.measure import Measurement
    from textual.app import App, ComposeResult

    from screens.table import Table

    measured: list[str] = []

    class Cell:
        def __init__(self, table: str, text: str) -> None:
            self.table, self.text = table, text

        def __rich_console__(self, console: Console, options: ConsoleOptions) -> Any:
            yield self.text

        def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
            measured.append(self.table)
            return Measurement(len(self.text), len(self.text))

    class Both(App[None]):
        def compose(self) -> ComposeResult:
            yield Table(id="ours")
            yield DataTable(id="theirs")

    app = Both()
    async with app.run_test(size=SIZE) as pilot:
        tables = (app.query_one("#ours", DataTable), app.query_one("#theirs", DataTable))
        for table in tables:
            table.add_column("a", key="a", width=6)
            table.add_column("b", key="b", width=9)
            for row in range(500):
                table.add_row(
                    Cell(table.id or "", f"r{row}"),
                    Cell(table.id or "", "x" * (row % 12)),
                    key=str(row),
                )
        await pilot.pause()
        ours, theirs = tables
        assert ours.virtual_size == theirs.virtual_size
        assert "theirs" in measured and "ours" not in measured
        # An auto-width column still is measured, as DataTable measures it.
        ours.add_column("c", key="c")
        ours.add_row(Cell("ours", "a"), Cell("ours", "b"), Cell("ours", "wide text"), key="more")
        await pilot.pause()
        assert "ours" in measured
        assert ours.columns[ColumnKey("c")].content_width == len("wide text")


async def test_the_ui_takes_the_interpreter_back_quickly_while_the_console_runs() -> None:
    """The poller's state thread works on thousands of readings; each time the UI
    loop wakes it waits for the interpreter up to the switch interval (5 ms unless
    set), several times per key. The console shortens it while it runs, and puts it
    back when it ends."""
    import sys

    from screens.app import SWITCH_INTERVAL

    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL
    app = new_app(snapshot())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(before)


def every_row_moved(snap: Snapshot, models: list[str], value: float) -> Snapshot:
    """``snap`` with the latency of each of ``models`` at ``value`` (still healthy, so
    the order holds)."""
    readings = dict(snap.readings)
    for model in models:
        readings[(model, "latency_p99")] = replace(readings[(model, "latency_p99")], value=value)
    return replace(snap, readings=readings)


def rows_in_view(dashboard: Any, table: DataTable[Any]) -> list[str]:
    """The models of the rows the models table shows (under its header)."""
    return [dashboard._model_rows[i] for i in range(table.size.height - 2)]


async def drawn_afresh_equals(last: Snapshot, drawn: list[str]) -> None:
    """``drawn`` is what a dashboard drawn afresh from ``last`` shows."""
    fresh = new_app(last)
    async with fresh.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert screen_lines(fresh) == drawn


async def test_a_snapshot_that_moves_every_row_in_view_is_drawn_a_few_rows_a_frame() -> None:
    """At a thousand models every row in view moves on each refresh. The rows are
    told of their new cells :data:`PATCH_ROWS` at a time, one lot a frame (a key
    that comes in between two lots waits for one lot, not all of them), and in the
    end the screen is what a table drawn from the last snapshot shows, even when a
    snapshot arrives while the rows of the one before are still being told."""
    from screens.dashboard_models import PATCH_ROWS

    start = many_models(120)
    app = new_app(start)
    async with app.run_test(size=SIZE) as pilot:
        dashboard: Any = app.screen
        table = dashboard.query_one("#models", DataTable)
        await pilot.pause()
        in_view = rows_in_view(dashboard, table)
        assert len(in_view) > 2 * PATCH_ROWS
        updates = record(table, "update_cell")
        app.apply_snapshot(every_row_moved(start, in_view, 0.111))
        assert len({row for row, _ in updates}) == PATCH_ROWS  # the first lot, now
        assert len(dashboard._patches) == len(in_view) - PATCH_ROWS  # the rest, later
        # A second snapshot before the rest are told: the rows show it, once told.
        last = every_row_moved(start, in_view, 0.122)
        app.apply_snapshot(last)
        await until(pilot, lambda: not dashboard._patches, "every row in view told")
        drawn = screen_lines(app)
        assert sum("122ms" in line for line in drawn) == len(in_view)
        assert not any("111ms" in line for line in drawn)

    await drawn_afresh_equals(last, drawn)


async def test_what_the_tables_keep_drawn_stays_bounded_while_every_row_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At a thousand models every refresh moves every row in view, and each drawn
    line, row and cell is new. What the table keeps of them stops at its bounds (the
    newest cells kept, DataTable's own caches a few screens of rows), and the screen
    is still what a table drawn from the last snapshot shows."""
    from screens import table as table_module
    from screens.table import DATATABLE_KEPT

    monkeypatch.setattr(table_module, "KEPT", 200)
    start = many_models(120)
    app = new_app(start)
    async with app.run_test(size=SIZE) as pilot:
        dashboard: Any = app.screen
        table = dashboard.query_one("#models", DataTable)
        await pilot.pause()
        in_view = rows_in_view(dashboard, table)
        last = start
        for step in range(12):
            last = every_row_moved(start, in_view, 0.101 + step / 1000)
            app.apply_snapshot(last)
            await until(pilot, lambda: not dashboard._patches, "every row in view told")
            await pilot.pause()
            assert len(table._drawn) <= 200
            for cache in (
                table._row_render_cache,
                table._cell_render_cache,
                table._row_renderable_cache,
                table._line_cache,
            ):
                assert len(cache) <= DATATABLE_KEPT
        newest = f"{round((0.101 + 11 / 1000) * 1000)}ms"
        assert any(newest in key for entry in table._drawn for key in entry if isinstance(key, str))
        drawn = screen_lines(app)
        assert sum(newest in line for line in drawn) == len(in_view)

    await drawn_afresh_equals(last, drawn)


async def test_a_changed_cell_draws_its_row_again_not_every_row_in_view() -> None:
    """``update_cell`` marks only its row's lines to be drawn again: the rest of the
    table is as the screen last showed it."""
    from textual.widgets._data_table import DataTable as TextualTable

    app = new_app(many_models(120))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models", DataTable)
        await pilot.pause()
        drawn: list[object] = []
        original = TextualTable._render_line_in_row

        def counting(self: Any, row_key: Any, *args: Any, **kwargs: Any) -> Any:
            if self is table:
                drawn.append(row_key.value)
            return original(self, row_key, *args, **kwargs)

        TextualTable._render_line_in_row = counting  # type: ignore[method-assign]
        try:
            app.apply_snapshot(with_value(app.snapshot, "m-000", "latency_p99", 0.37))
            await until(pilot, lambda: drawn, "the changed row drawn")
            await pilot.pause()
            assert set(drawn) == {"m-000"}
            assert any("370ms" in line for line in screen_lines(app))
        finally:
            TextualTable._render_line_in_row = original  # type: ignore[method-assign]


async def test_a_rows_place_is_where_datatable_would_draw_it() -> None:
    """The place of a row, of a cell and of the fixed part (worked out from the row's
    index while every row is a line high) is the place DataTable works out, scrolled
    or not, with a header or none, with a fixed column; a taller row makes the table
    add the heights up again."""
    from textual.app import App, ComposeResult
    from textual.coordinate import Coordinate
    from textual.widgets import DataTable as TextualTable

    from screens.table import Table

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Table()

    def same(table: Table, index: int) -> None:
        assert table._get_row_region(index) == TextualTable._get_row_region(table, index)
        cell = Coordinate(index, 1)
        assert table._get_cell_region(cell) == TextualTable._get_cell_region(table, cell)
        assert table._get_fixed_offset() == TextualTable._get_fixed_offset(table)

    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(Table)
        table.add_columns("a", "b")
        for index in range(40):
            table.add_row(str(index), "x", key=f"r{index}")
        await pilot.pause()
        table.scroll_to(y=15, animate=False)
        for show_header, fixed in ((True, 0), (False, 1), (True, 1)):
            table.show_header = show_header
            table.fixed_columns = fixed
            await pilot.pause()
            for index in (0, 1, 17, 39, 40, -1):
                same(table, index)
        table.move_cursor(row=30, animate=False)  # scrolls to a place worked out here
        await pilot.pause()
        assert table.window_region.contains_region(table._get_row_region(30))
        table.add_row("tall", "y", height=3, key="tall")
        table.add_row("after", "z", key="after")
        await pilot.pause()
        assert not table._one_line_rows
        same(table, 41)
        table.clear()
        table.add_row("0", "x", key="again")
        assert table._one_line_rows


async def test_each_line_is_the_row_datatable_would_draw_there() -> None:
    """The row on each line (worked out from the line while every row is a line high)
    is the one DataTable's list of every line gives, with a header of two lines,
    after a sort, and past the last row; with a taller row the list is used."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable as TextualTable

    from screens.table import Table

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Table()

    def both(table: Table, y: int) -> tuple[object, object]:
        def one(get: Callable[[int], Any]) -> object:
            try:
                key, line = get(y)
            except LookupError:
                return "none"
            return (key.value, line)

        return one(table._get_offsets), one(lambda y: TextualTable._get_offsets(table, y))

    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(Table)
        table.add_column("a", key="a")
        table.add_column("b", key="b")
        for index in range(30):
            table.add_row(str(index), str(-index), key=f"r{index}")
        table.header_height = 2
        table.sort("b")
        await pilot.pause()
        for y in (0, 1, 2, 3, 17, 31, 32, 33, 40):
            ours, datatable = both(table, y)
            assert ours == datatable, y
        table.add_row("tall", "x", height=2, key="tall")
        await pilot.pause()
        assert both(table, 33) == both(table, 33)[::-1]


async def test_a_snapshot_drawn_after_newer_ones_were_surveyed_is_drawn_from_its_survey(
    measured: list[str],
) -> None:
    """The dashboard draws a snapshot held under another screen when that screen
    closes; by then the state thread may have surveyed the next ones. It is still
    drawn from its survey, not measured row by row on the UI's thread."""
    first = many_models(120)
    app = new_app(first)
    async with app.run_test(size=SIZE) as pilot:
        dashboard: Any = app.screen
        await pilot.pause()
        held = with_value(first, "m-000", "latency_p99", 0.37)
        app.widths.measure(held)
        newer = [with_value(held, "m-001", "latency_p99", 0.1 + i / 100) for i in range(2)]
        for snap in newer:  # surveyed, not yet handed to the UI
            app.widths.measure(snap)
        assert app.widths.survey_of(held) is not None
        measured.clear()
        measured_rows = record(dashboard, "_measure_rows")
        app.apply_snapshot(held)
        await pilot.pause()
        assert measured_rows == [] and measured == []
        assert any("370ms" in line for line in screen_lines(app))
        app.widths.measure(with_value(held, "m-002", "latency_p99", 0.2))
        assert app.widths.survey_of(held) is None  # kept: the last three measured
