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
