"""The models table adds a fleet's rows at once (:meth:`screens.table.Table.add_keyed_rows`):
the table must come out as ``add_row`` one row at a time leaves it."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets.data_table import DuplicateKey

from screens.table import Table


class Two(App[None]):
    def compose(self) -> ComposeResult:
        yield Table(id="one")
        yield Table(id="bulk")


def fill_columns(table: Table) -> None:
    for key in ("model", "value", "trend"):
        table.add_column(key, key=key, width=12)


def state(table: Table) -> tuple[object, ...]:
    return (
        list(table.rows),
        [table.get_row_index(key) for key in table.rows],
        {key: dict(cells) for key, cells in table._data.items()},
        [(r.key, r.height, r.label, r.auto_height) for r in table.rows.values()],
        table.cursor_coordinate,
        table.row_count,
        table.virtual_size,
    )


@pytest.mark.parametrize("before", [0, 3])
async def test_rows_added_at_once_leave_the_table_as_add_row_does(before: int) -> None:
    rows = [
        (f"model-{i:03d}", [Text(f"model-{i:03d}"), Text(str(i)), Text("▁▃▅")]) for i in range(40)
    ]
    app = Two()
    async with app.run_test(size=(80, 30)) as pilot:
        one, bulk = app.query_one("#one", Table), app.query_one("#bulk", Table)
        for table in (one, bulk):
            fill_columns(table)
            for key, cells in rows[:before]:  # rows already there, cursor on them
                table.add_row(*cells, key=key)
        for key, cells in rows[before:]:
            one.add_row(*cells, key=key)
        bulk.add_keyed_rows(rows[before:])
        await pilot.pause()
        assert state(bulk) == state(one)
        assert [str(bulk.get_row_at(i)[1]) for i in range(40)] == [str(i) for i in range(40)]
        for table in (one, bulk):
            table.move_cursor(row=25)
        await pilot.pause()
        assert state(bulk) == state(one)
        # Drawn alike: every line in view.
        assert [bulk.render_line(y).text for y in range(bulk.size.height)] == [
            one.render_line(y).text for y in range(one.size.height)
        ]


async def test_a_key_added_twice_is_refused() -> None:
    app = Two()
    async with app.run_test(size=(80, 30)):
        bulk = app.query_one("#bulk", Table)
        fill_columns(bulk)
        bulk.add_keyed_rows([("a", [Text("a")])])
        with pytest.raises(DuplicateKey):
            bulk.add_keyed_rows([("b", [Text("b")]), ("a", [Text("a")])])
        assert list(bulk.rows) == ["a", "b"]  # as add_row one at a time leaves it
        assert str(bulk.get_row_at(1)[0]) == "b"
        with pytest.raises(ValueError, match="More values"):
            bulk.add_keyed_rows([("c", [Text("c")] * 4)])


#: Cells that fight back: wide, zero-width, combining, tabs, line breaks of every kind
#: Python splits on, escapes, empty, and cells that are not plain text.
HOSTILE = [
    "plain",
    "漢字かな",
    "🔥 burn",
    "e\u0301\u200b",
    "a\tb",
    "two\nlines here",
    "x\u2028longer line",
    "\x1b[2Jcleared",
    "\x85next",
    "",
    "  padded  ",
    "[bold]not markup[/]",
]


async def test_auto_width_columns_are_measured_as_datatable_measures_them() -> None:
    """The alerts table's columns are auto-width: the table measures a plain one-line
    text by its length in cells, and anything else as DataTable does. Both tables
    come out the same width, column by column."""
    from textual.widgets import DataTable

    from screens.render import LiveCell

    class Pair(App[None]):
        def compose(self) -> ComposeResult:
            yield Table(id="ours")
            yield DataTable(id="theirs")

    app = Pair()
    async with app.run_test(size=(120, 40)) as pilot:
        ours, theirs = app.query_one("#ours", Table), app.query_one("#theirs", DataTable)
        for table in (ours, theirs):
            for key in ("text", "styled", "live", "plain_str"):
                table.add_column(key, key=key)  # auto-width
            for index, raw in enumerate(HOSTILE):
                styled = Text(raw, style="bold")
                styled.stylize("red", 0, 2)
                table.add_row(Text(raw), styled, LiveCell(Text(raw)), raw, key=str(index))
        await pilot.pause()
        widths = [c.content_width for c in ours.ordered_columns]
        assert widths == [c.content_width for c in theirs.ordered_columns]
        assert ours.virtual_size == theirs.virtual_size
        assert max(widths) > len("plain_str")  # the cells, not the headers, set them


def test_each_cell_measures_as_datatable_measures_it() -> None:
    from rich.console import Console
    from textual.render import measure

    from screens.render import LiveCell
    from screens.table import measured

    console = Console(width=120)
    for raw in HOSTILE:
        for cell in (Text(raw), Text(raw, style="bold"), LiveCell(Text(raw)), raw):
            assert measured(console, cell) == measure(console, cell, 1), (raw, cell)


async def test_a_cleared_table_keeps_none_of_the_cells_it_drew() -> None:
    """What a table keeps drawn follows the rows it has: a page's alerts, drawn and
    then cleared when it ends, leave nothing behind; rows added again are drawn again
    as before."""
    rows = [
        (f"fp-{i:03d}", [Text(f"model-{i:03d}"), Text(str(i)), Text("page")]) for i in range(40)
    ]
    app = Two()
    async with app.run_test(size=(80, 30)) as pilot:
        table = app.query_one("#bulk", Table)
        fill_columns(table)
        table.add_keyed_rows(rows)
        await pilot.pause()
        drawn = [table.render_line(y).text for y in range(table.size.height)]
        assert table._drawn  # the rows in view were drawn, and kept
        table.clear()
        await pilot.pause()
        assert table._drawn == {}
        table.add_keyed_rows(rows)
        await pilot.pause()
        assert [table.render_line(y).text for y in range(table.size.height)] == drawn
