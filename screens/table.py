"""A DataTable that draws a cell again only when what the cell shows changed."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Self

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text, TextType
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region, Size, Spacing
from textual.render import measure
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, DuplicateKey, Row, RowKey

from screens.render import TableCell

#: How many drawn cells are kept: a few screens' worth of both tables.
KEPT = 4_000

#: How many entries DataTable's own caches keep, where it keeps 1,000 rows, lines and
#: row renderables and 10,000 cells. Their keys hold the table's update count, so at
#: a thousand models refreshing every entry is dead after the next update, and the
#: caches only fill to their bounds with lines no frame will draw again: megabytes
#: that grew for the first minutes of every session. A few screens of rows, and the
#: cells that are not text (the header, labels), which :attr:`Table._drawn` does not
#: keep.
DATATABLE_KEPT = 256


def measured(console: Console, cell: object) -> int:
    """A cell's width as DataTable measures it (``textual.render.measure``), but a
    text of printable characters alone (so of one line) by its length in cells, the
    width Rich would measure, without building the console's options for it."""
    if type(cell) is Text and cell.plain.isprintable():
        return cell_len(cell.plain)
    return measure(console, cell, 1)  # type: ignore[arg-type]


class Table(DataTable[object]):
    """A :class:`~textual.widgets.DataTable` whose drawn cells outlive an update.

    DataTable keys each drawn cell by its update count, and forgets them all on any
    change of style: any ``update_cell`` (an alert's age that moved, one model's new
    value) raises the count, and a screen pushed over the table or popped off it
    restyles it, so every cell in view is drawn again through Rich, the dearest part
    of a frame at a thousand models. Here a text cell is also kept by what it shows
    (its text, style and spans) and by every style it is drawn with, so only the
    cells that changed are drawn again. Other renderables, the header and row labels
    are drawn as DataTable draws them.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Before DataTable's own set-up, which clears the caches.
        self._drawn: dict[tuple[object, ...], list[list[Segment]]] = {}
        #: The row :meth:`update_cell` is updating, while it does.
        self._updating: RowKey | None = None
        #: Whether every row is one line high, so a row's place is its index.
        self._one_line_rows = True
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._row_render_cache = LRUCache(DATATABLE_KEPT)
        self._cell_render_cache = LRUCache(DATATABLE_KEPT)
        self._row_renderable_cache = LRUCache(DATATABLE_KEPT)
        self._line_cache = LRUCache(DATATABLE_KEPT)

    def add_row(
        self,
        *cells: object,
        height: int | None = 1,
        key: str | None = None,
        label: TextType | None = None,
    ) -> RowKey:
        if height != 1:
            self._one_line_rows = False
        return super().add_row(*cells, height=height, key=key, label=label)

    def add_keyed_rows(self, rows: Iterable[tuple[str, Sequence[object]]]) -> None:
        """Add one-line, unlabelled rows (key, cells) at the bottom, as ``add_row`` adds
        each, but with what ``add_row`` does after each row (the cursor checked
        again, the update count raised, the table told to idle) done once for them
        all: a thousand models filtered in again, or ten thousand at start, cost
        seconds of add_row on the UI thread."""
        columns = self.ordered_columns
        locations, data, table_rows = self._row_locations, self._data, self.rows
        was_empty = not table_rows
        added = 0
        try:
            for key, cells in rows:
                row_key = RowKey(key)
                if row_key in locations:
                    raise DuplicateKey(f"The row key {row_key!r} already exists.")
                if len(cells) > len(columns):
                    raise ValueError("More values provided than there are columns.")
                locations[row_key] = len(table_rows)
                data[row_key] = {
                    column.key: cell for column, cell in itertools.zip_longest(columns, cells)
                }
                table_rows[row_key] = Row(row_key, 1, None, False)
                self._new_rows.add(row_key)
                added += 1
        finally:  # the rows added before a refused one are shown, as add_row's are
            if added:  # what add_row does after each row, once for them all
                self._require_update_dimensions = True
                self.cursor_coordinate = self.cursor_coordinate
                visible_cursor = self.show_cursor and self.cursor_type != "none"
                if was_empty and self.columns and visible_cursor:  # a cell to highlight
                    self._highlight_cursor()
                self._update_count += 1
                self.check_idle()

    def clear(self, columns: bool = False) -> Self:
        self._one_line_rows = True
        # The cells drawn were its rows', and they are gone: a page's 500 alerts left
        # 3,500 drawn cells (megabytes of segments) in a table emptied when it ended.
        self._drawn.clear()
        return super().clear(columns)

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: object,
        *,
        update_width: bool = False,
    ) -> None:
        """As DataTable's, but only the cell's row is drawn again, not every line in
        view: the lines of the other rows, as the screen last showed them, still
        hold. (A new width for the column changes every row: the table is drawn
        again whole, as DataTable does.)"""
        self._updating = (
            None if update_width else RowKey(row_key) if isinstance(row_key, str) else row_key
        )
        try:
            super().update_cell(row_key, column_key, value, update_width=update_width)
        finally:
            self._updating = None

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        row = self._updating
        if row is not None and not regions and not layout and not recompose:
            index = self._row_locations.get(row)
            if index is not None:  # the refresh of update_cell: that row's lines only
                return self.refresh_row(index)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _get_offsets(self, y: int) -> tuple[RowKey, int]:
        """The row drawn on line ``y``, and which of its lines. DataTable looks it up
        in a list of every line of every row, made again after each update (ten
        thousand entries, for each frame that follows one); while every row is a
        line high, line ``y`` is the row at that index."""
        if not self._one_line_rows:
            return super()._get_offsets(y)
        if self.show_header:
            if y < self.header_height:
                return self._header_row_key, y
            y -= self.header_height
        row_key = self._row_locations.get_key(y) if y >= 0 else None
        if row_key is None:
            raise LookupError(f"Y coord {y!r} is greater than total height")
        return row_key, 0

    # DataTable works out where a row is by sorting every row again (its order is
    # cached until any update) and adding up the heights of the rows above it: for
    # each cell told of an update, each cursor move and each scroll to the cursor,
    # at ten thousand rows. While every row is one line high (as in every table
    # here), a row's place is its index, and there is nothing to add up.

    def _row_y(self, row_index: int) -> int:
        return row_index + (self.header_height if self.show_header else 0)

    def _get_row_region(self, row_index: int) -> Region:
        if not self._one_line_rows or not self.is_valid_row_index(row_index):
            return super()._get_row_region(row_index)
        row_width = (
            sum(column.get_render_width(self) for column in self.columns.values())
            + self._row_label_column_width
        )
        return Region(0, self._row_y(row_index), max(self.size.width, row_width), 1)

    def _get_cell_region(self, coordinate: Coordinate) -> Region:
        if not self._one_line_rows or not self.is_valid_coordinate(coordinate):
            return super()._get_cell_region(coordinate)
        row_index, column_index = coordinate
        x = (
            sum(column.get_render_width(self) for column in self.ordered_columns[:column_index])
            + self._row_label_column_width
        )
        column = self.columns[self._column_locations.get_key(column_index)]  # type: ignore[index]
        return Region(x, self._row_y(row_index), column.get_render_width(self), 1)

    def _get_fixed_offset(self) -> Spacing:
        if self.fixed_rows:
            return super()._get_fixed_offset()
        top = self.header_height if self.show_header else 0
        left = (
            sum(
                column.get_render_width(self)
                for column in self.ordered_columns[: self.fixed_columns]
            )
            + self._row_label_column_width
        )
        return Spacing(top, 0, 0, left)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        key = self._cell_key(row_index, column_index, base_style, width, cursor, hover)
        if key is None:  # not a text cell: drawn as DataTable draws it
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        drawn = self._drawn.get(key)
        if drawn is None:
            drawn = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            if len(self._drawn) >= KEPT:  # the older half goes: the newest stay drawn
                for old in list(itertools.islice(self._drawn, KEPT // 2)):
                    del self._drawn[old]
            self._drawn[key] = drawn
        return drawn

    def _cell_key(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> tuple[object, ...] | None:
        """Everything a text cell's drawing depends on; None for the header, row
        labels and cells that are not text."""
        if row_index < 0 or column_index < 0:  # the header, row labels
            return None
        cells = self._get_row_renderables(row_index).cells
        if column_index >= len(cells):
            return None
        cell = cells[column_index]
        text = cell.text if isinstance(cell, TableCell) else cell
        row_key = self._row_locations.get_key(row_index)
        row = self.rows.get(row_key) if row_key is not None else None
        if not isinstance(text, Text) or row is None:
            return None
        fixed = row_index < self.fixed_rows or column_index < self.fixed_columns
        styles = self._get_styles_to_render_cell(
            False,
            False,
            fixed,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        return (
            row_index,  # the drawn cell's metadata names its row and column
            column_index,
            text.plain,
            text.style,
            tuple(text.spans),
            text.justify,
            text.overflow,
            text.no_wrap,
            base_style,
            styles,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
            row.height,
            self.cell_padding,
        )

    def resize_columns(self, widths: dict[str, tuple[int, Text]]) -> None:
        """Give columns new widths and headers in place: each key to (its width, its
        header). A table of a thousand rows keeps its rows; ``clear()`` and
        ``add_row()`` would have measured every cell of every row again."""
        for key, (width, header) in widths.items():
            column = self.columns[ColumnKey(key)]
            column.width = width
            column.label = header
            column.content_width = max(column.content_width, header.cell_len)
        # What DataTable itself does after a change of its columns: draw every cell
        # afresh and measure the table's size again (when it next idles).
        self._update_count += 1
        self._require_update_dimensions = True
        self._clear_caches()
        self.refresh()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every cell of every new row, for its auto-width columns
        and auto-height rows. When no row is labelled or of auto height, the cells are
        measured only if a column is auto-width, and then by :func:`measured`: when
        every column has a fixed width there is nothing to measure (the cells would be
        built for nothing: a thousand rows filtered in again cost seconds). The
        table's size is worked out as DataTable works it out."""
        if any(
            (row := self.rows.get(key)) is not None and (row.auto_height or row.label is not None)
            for key in new_rows
        ):
            super()._update_dimensions(new_rows)
            return
        columns = self.ordered_columns
        if any(column.auto_width for column in columns):
            # As DataTable measures them, but a plain one-line text by its length in
            # cells: DataTable builds the console's options for each cell, and the
            # alerts table (auto-width) is filled again with 500 rows when an alert
            # changes.
            console = self.app.console
            for key in new_rows:
                index = self._row_locations.get(key)
                if index is None:  # removed before the table idled, as DataTable skips it
                    continue
                cells = self._get_row_renderables(index).cells
                for column, cell in zip(columns, cells, strict=False):  # as DataTable
                    width = measured(console, cell)
                    if width > column.content_width:
                        column.content_width = width
        width = sum(column.get_render_width(self) for column in columns)
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(
            width + self._row_label_column_width, self._total_row_height + header
        )
