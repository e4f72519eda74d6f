"""The dashboard at 80×24 and 160×48: each model's name and its breached SLIs are in view
without scrolling, no column is clipped, and the footer keeps its essential keys."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable

from screens.app import MLConsoleApp
from tests.test_dashboard import replayed_lab_app
from tests.waits import until_drawn


def filled_lab_app() -> MLConsoleApp:
    """The replayed lab with every sparkline full (as after ten minutes of polling)."""
    app = replayed_lab_app()
    snap = app.snapshot
    points = app.config.ui.history_points
    readings = {
        key: replace(
            r,
            history=tuple((r.value or 0) * (1 + 0.5 * math.sin(i)) for i in range(points)),
        )
        for key, r in snap.readings.items()
    }
    app.snapshot = replace(snap, readings=readings)
    return app


def row_of(lines: list[str], model: str) -> str:
    """The first drawn line of ``model``'s row ('' while it is not drawn)."""
    return next((line for line in lines if line.startswith(f" {model}")), "")


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)])
async def test_names_and_breaches_in_view_without_scrolling(size: tuple[int, int]) -> None:
    app = filled_lab_app()
    async with app.run_test(size=size) as pilot:
        lines = await until_drawn(
            pilot, app, lambda ls: row_of(ls, "churn-predictor"), "the models table"
        )
        fraud = row_of(lines, "fraud-detector")
        # Both breached SLIs of fraud-detector, by name or under their headers.
        assert "44.9%" in fraud and "55.1%" in fraud, "\n".join(lines)
        churn = row_of(lines, "churn-predictor")
        assert "5.22" in churn, "\n".join(lines)
        table = app.screen.query_one("#models", DataTable)
        assert table.scroll_x == 0


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_footer_keeps_its_essential_keys(size: tuple[int, int]) -> None:
    app = filled_lab_app()
    async with app.run_test(size=size) as pilot:
        # The footer fills in once the screen has its focus: wait for its last key.
        lines = await until_drawn(pilot, app, lambda ls: "q Quit" in ls[-1], "the footer")
        footer = lines[-1]
        for key in ("t Triage", "r Rollback", "f Fallback", "s Silence", "? Help", "q Quit"):
            assert key in footer, footer
        assert ": Palette" in footer, footer


async def test_at_160_columns_no_column_is_clipped_once_sparklines_fill() -> None:
    app = filled_lab_app()
    async with app.run_test(size=(160, 48)) as pilot:
        lines = await until_drawn(
            pilot, app, lambda ls: row_of(ls, "churn-predictor"), "the models table"
        )
        table = app.screen.query_one("#models", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        header = "\n".join(lines[:8])
        assert "Pipeline" in header and ">= 50%" in header


async def test_model_names_stay_when_the_slis_scroll_sideways() -> None:
    app = filled_lab_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until_drawn(pilot, app, lambda ls: row_of(ls, "churn-predictor"), "the models")
        table = app.screen.query_one("#models", DataTable)
        assert table.max_scroll_x > 0  # there is something to scroll to at 80 columns
        table.scroll_to(x=table.max_scroll_x, animate=False)  # to the last SLI column
        lines = await until_drawn(
            pilot, app, lambda ls: table.scroll_x == table.max_scroll_x, "the scroll"
        )
        fraud = row_of(lines, "fraud-detector")
        assert "Errors 55.1%" in fraud  # the name and the breaches stay in view
        assert any("Pipeline" in line or ">= 50%" in line for line in lines[:10])


def test_dashboard_80x24_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(filled_lab_app(), terminal_size=(80, 24))


def test_dashboard_160x48_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(filled_lab_app(), terminal_size=(160, 48))


def test_the_breached_column_says_unknown_or_stale_rather_than_fine() -> None:
    from console.render import model_table

    app = filled_lab_app()
    snap = app.snapshot
    assert str(model_table.breached_cell(snap, "recommender", frozenset())) == "·"
    stale = frozenset(s.name for s in snap.slis)  # the metrics source is down
    assert str(model_table.breached_cell(snap, "recommender", stale)) == "· stale"
    # Known to the registry only: no SLI ever read.
    assert str(model_table.breached_cell(snap, "never-read", stale)) == "unknown"
    assert "Errors 55.1%" in str(model_table.breached_cell(snap, "fraud-detector", stale))


async def test_a_model_breaching_every_sli_still_fits_80_columns() -> None:
    from console.render import model_table
    from console.sources.sli import SliStatus

    app = filled_lab_app()
    snap = app.snapshot
    worst = {
        key: replace(r, status=SliStatus.BREACH) if key[0] == "fraud-detector" else r
        for key, r in snap.readings.items()
    }
    app.snapshot = replace(snap, readings=worst)
    cell = model_table.breached_cell(app.snapshot, "fraud-detector", frozenset())
    assert cell.cell_len <= model_table.BREACHED_WIDTH
    assert cell.plain.startswith("Avail 44.9% Errors 55.1%") and cell.plain.endswith("+5")
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await until_drawn(
            pilot, app, lambda ls: row_of(ls, "fraud-detector"), "the models table"
        )
        fraud = row_of(lines, "fraud-detector")
        assert "Errors 55.1% +5" in fraud and len(fraud) <= 80


async def test_the_other_screens_keep_their_keys_at_80_columns(tmp_path: Path) -> None:
    from screens.incidents import IncidentsScreen
    from screens.runbook import RunbookScreen
    from tests.test_runbook_screen import app_with_triage, wait_idle
    from tests.test_triage import Scripted

    app = app_with_triage(tmp_path, Scripted({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")  # triage the top alert: the runbook screen
        await wait_idle(app, pilot)
        assert isinstance(app.screen, RunbookScreen)
        lines = await until_drawn(pilot, app, lambda ls: "? Help" in ls[-1], "the footer")
        footer = lines[-1]
        for key in ("esc Back", "b Step back", "R Re-run checks", "e Evidence", "? Help"):
            assert key in footer, footer
        await pilot.press("escape")  # back to the dashboard
        await pilot.press("I")  # every open incident
        assert isinstance(app.screen, IncidentsScreen)
        await until_drawn(pilot, app, lambda ls: "? Help" in ls[-1], "the incidents' footer")
