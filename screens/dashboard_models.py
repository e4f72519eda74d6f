"""The dashboard's models table: one row per model, worst first, drawn at the cost
of what changed and what is in view."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.screen import Screen
from textual.widgets import DataTable

from console.render import fitting, model_table
from console.sources.snapshot import Snapshot
from console.text import inert
from screens.front import Front, front_of
from screens.lines import Line
from screens.render import LazyCell, LazyRow, same_text
from screens.table import Table


@dataclass(eq=False)
class _ModelRow:
    """One model's row as last drawn: what it was built from, its cells' widths at
    each detail (:func:`model_table.row_widths`, measured by ``measure``), and its
    cells, built when in view."""

    key: tuple[object, ...]
    row: LazyRow
    measure: fitting.RowMeasure
    widths: dict[model_table.Detail, list[int]] = field(default_factory=dict)
    cells: list[LazyCell] = field(default_factory=list)
    """The table's cell objects (:class:`LazyCell`) for this row."""


#: Rows in view a frame draws anew when a snapshot changed more of them: the rest
#: follow in the next frames, and a key that comes in meanwhile is answered first.
PATCH_ROWS = 8


def visible_rows(table: DataTable[object]) -> range:
    """The indexes of the rows in view (one more each side)."""
    top = int(table.scroll_y)
    height = max(0, table.size.height - (table.header_height if table.show_header else 0))
    return range(max(0, top - 1), top + height + 1)


class ModelsPane(Screen[None]):
    """The dashboard's models table (``#models``) and the filter both its tables
    follow. :class:`screens.dashboard.DashboardScreen` builds on it."""

    def __init__(self) -> None:
        super().__init__()
        self._filter = ""
        self._model_rows: list[str] = []
        self._model_layout: tuple[object, ...] = ()
        self._model_cache: dict[str, _ModelRow] = {}
        #: What the rows in view are built from: (snapshot, now, stale SLIs), and
        #: (columns, their widths, detail).
        self._model_inputs: tuple[Snapshot, float, frozenset[str]] | None = None
        self._model_view: tuple[list[model_table.Column], list[int], model_table.Detail]
        self._model_view = ([], [], model_table.FULL)
        #: Rows in view still to be told of their changed cells, in order: each with
        #: the cells the table shows for it (None: every cell changed).
        self._patches: dict[str, list[Text] | None] = {}
        self._seen_firing: set[str] = set()

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def _matches(self, snapshot: Snapshot, model: str) -> bool:
        if not self._filter:
            return True
        needle = self._filter.lower()
        return needle in model.lower() or any(
            needle in a.name.lower() for a in snapshot.alerts_for(model)
        )

    def _render_models(self, snapshot: Snapshot, now: float) -> None:
        """The models table, at the cost of what changed and what is in view.

        Each row's cells are built only when drawn (:class:`LazyRow`); a snapshot
        rebuilds the table only when the rows or the columns change, re-sorts it when
        only the order changes, and otherwise tells the table of the changed cells of
        the rows in view. The widths that :func:`fitting.fit` needs come from the
        survey the poller made of the snapshot (:class:`fitting.Survey`), so a
        snapshot costs what is in view; with a filter they are still the whole
        fleet's, so the columns stay where they were while the responder types. For
        a snapshot not surveyed (none made by a poller), they come from every row
        shown, measured (:func:`model_table.row_widths`), not built, and only for the
        rows whose inputs changed."""
        table = self.query_one("#models", Table)
        stale = model_table.stale_slis(snapshot, self.front.config, now)
        self._model_inputs = (snapshot, now, stale)
        survey = self.front.widths.survey_of(snapshot)
        if survey is not None:
            rows, changed, make_widths = self._survey_rows(table, survey, now, stale)
        else:
            rows, changed, make_widths = self._measure_rows(snapshot, now, stale)
        cache = self._model_cache
        if len(cache) > 2 * len(snapshot.models) + 64:  # models that left for good
            known = set(snapshot.models)
            for model in [m for m in cache if m not in known]:
                del cache[model]

        # The table's own width, less its vertical scrollbar: what fits without scrolling.
        room = max(0, (table.size.width or self.size.width) - 2)
        detail, sizes = fitting.fit_widths(snapshot.slis, make_widths, room, 2 * table.cell_padding)
        cols = model_table.columns(snapshot.slis, detail)
        layout = (detail, tuple(sizes), tuple(c.key for c in cols))
        self._model_view = (cols, sizes, detail)
        same_rows = set(rows) == set(self._model_rows)
        if same_rows and layout[::2] == self._model_layout[::2] and layout != self._model_layout:
            # Only the widths moved (a value grew a digit): the columns change in
            # place, and every row is built again when drawn, aligned to them.
            old_sizes = self._model_layout[1]
            assert isinstance(old_sizes, tuple)
            table.resize_columns(
                {
                    column.key: (size, model_table.aligned_header(column, size))
                    for column, size, was in zip(cols, sizes, old_sizes, strict=True)
                    if size != was
                }
            )
            self._model_layout = layout
            for model in rows:
                entry = cache[model]
                entry.row.reset()
                for cell in entry.cells:
                    cell.width = sizes[cell.index]
            changed = []
        if layout != self._model_layout or not same_rows:
            self._patches.clear()  # every row is added anew, as it is now
            selected = self._selected_key(table, self._model_rows)
            table.clear(columns=layout != self._model_layout)
            if layout != self._model_layout:
                table.fixed_columns = detail.fixed
                for column, size in zip(cols, sizes, strict=True):
                    header = model_table.aligned_header(column, size)
                    table.add_column(header, key=column.key, width=size)
                self._model_layout = layout
            for model in rows:
                entry = cache[model]
                entry.row.reset()
                entry.cells = list(entry.row.lazy_cells(sizes))
            table.add_keyed_rows((model, cache[model].cells) for model in rows)
            self._model_rows = rows
            self._restore_cursor(table, rows, selected)
        else:
            if rows != self._model_rows:  # the same rows, in another order
                selected = self._selected_key(table, self._model_rows)
                place = {model: index for index, model in enumerate(rows)}
                table.sort("model", key=lambda cell: place[cell.row.key])
                self._model_rows = rows
                self._restore_cursor(table, rows, selected)
            self._patch_models(table, changed, cols)
        shown = f"{len(rows)} of {len(snapshot.models)}" if self._filter else str(len(rows))
        title = f"Models ({shown})"
        if self._filter:
            title += f"  filter: {self._filter!r}"
        self.query_one("#models-title", Line).show_text(Text(inert(title)))

    def _entry(self, model: str, key: tuple[object, ...]) -> _ModelRow:
        entry = self._model_cache[model] = _ModelRow(
            key,
            LazyRow(model, self._model_builder(model)),
            fitting.RowMeasure(model, self.front.widths),
        )
        return entry

    def _moved(self, model: str, key: tuple[object, ...]) -> bool:
        """Whether ``model``'s row was built from other inputs than ``key`` (a row
        seen for the first time has nothing to move from)."""
        entry = self._model_cache.get(model)
        if entry is None:
            self._entry(model, key)
            return False
        if entry.key == key:
            return False
        entry.key = key
        entry.widths.clear()
        return True

    def _measure_rows(
        self, snapshot: Snapshot, now: float, stale: frozenset[str]
    ) -> tuple[list[str], list[str], fitting.WidthMaker]:
        """The rows shown, worst first; those whose inputs changed; and their widths
        at each detail, measured row by row."""
        rows = model_table.ordered(
            snapshot, (m for m in snapshot.models if self._matches(snapshot, m))
        )
        cache = self._model_cache
        changed: list[str] = []
        for model in rows:
            if self._moved(model, fitting.row_key(snapshot, model, now, stale)):
                changed.append(model)

        def make_widths(detail: model_table.Detail) -> list[list[int]]:
            found = []
            for model in rows:
                entry = cache[model]
                sizes = entry.widths.get(detail)
                if sizes is None:
                    sizes = entry.widths[detail] = entry.measure.widths(
                        snapshot, now, stale=stale, detail=detail, key=entry.key
                    )
                found.append(sizes)
            return found

        return rows, changed, make_widths

    def _survey_rows(
        self,
        table: DataTable[object],
        survey: fitting.Survey,
        now: float,
        stale: frozenset[str],
    ) -> tuple[list[str], list[str], fitting.WidthMaker]:
        """:meth:`_measure_rows` from the survey: only the rows in view (as drawn
        now, and as they will be) are compared with what they were built from; every
        other row is built afresh when it is next drawn."""
        snapshot = survey.snapshot
        rows = [m for m in survey.order if self._matches(snapshot, m)]
        view = visible_rows(table)
        drawn = self._model_rows
        in_view = {drawn[i] for i in view if i < len(drawn)}
        in_view.update(rows[i] for i in view if i < len(rows))
        cache = self._model_cache
        changed: list[str] = []
        hidden: str | None = None
        for model in rows:
            if model in in_view:
                if self._moved(model, fitting.row_key(snapshot, model, now, stale)):
                    changed.append(model)
                continue
            entry = cache.get(model)
            if entry is None:
                self._entry(model, ())
            else:
                entry.row.reset()
                hidden = hidden or model
        if hidden is not None:  # the table is told, so it forgets the lines it drew
            changed.append(hidden)

        def make_widths(detail: model_table.Detail) -> list[list[int]]:
            return [survey.widths(detail, now, stale)]

        return rows, changed, make_widths

    def _model_builder(self, model: str) -> Callable[[], list[Text]]:
        def build() -> list[Text]:
            assert self._model_inputs is not None
            snapshot, now, stale = self._model_inputs
            cols, sizes, detail = self._model_view
            cells = model_table.cells(snapshot, model, now, stale=stale, detail=detail)
            return [
                model_table.aligned_cell(column, cell, size)
                for column, cell, size in zip(cols, cells, sizes, strict=True)
            ]

        return build

    def _patch_models(
        self, table: DataTable[object], changed: list[str], cols: Sequence[model_table.Column]
    ) -> None:
        """Tell the table of the changed cells of the rows in view, :data:`PATCH_ROWS`
        rows a frame (:meth:`_patch_some`). A changed row out of view is built afresh
        when it is drawn; the table is told of one of them, because any update drops
        the lines it drew of rows out of view."""
        if not changed:
            return
        view = visible_rows(table)
        hidden: str | None = None
        patches = self._patches
        for model in changed:
            old = self._model_cache[model].row.reset()
            if table.get_row_index(model) not in view:
                hidden = hidden or model
            elif model not in patches:  # else: still what the table shows
                patches[model] = old
        if hidden is not None:
            table.update_cell(hidden, cols[0].key, self._model_cache[hidden].cells[0])
        self._patch_some()

    def _patch_some(self) -> None:
        """Tell the models table of the changed cells of the next :data:`PATCH_ROWS`
        rows to patch, and of the next ones after the frame that draws them: a key
        that came in meanwhile is answered before them, and a frame draws a few rows
        anew, not every row in view. A row left meanwhile is skipped; one rebuilt
        since is built from what is newest."""
        patches = self._patches
        if not patches or not self.is_mounted:
            return
        table = self.query_one("#models", Table)
        cols = self._model_view[0]
        for model in list(itertools.islice(patches, PATCH_ROWS)):
            old = patches.pop(model)
            entry = self._model_cache.get(model)
            if entry is None or model not in table.rows:
                continue
            new = entry.row.cells()
            for index, column in enumerate(cols):
                if old is None or not same_text(old[index], new[index]):
                    table.update_cell(model, column.key, entry.cells[index])
        if patches:
            self.call_after_refresh(self._patch_some)

    @staticmethod
    def _selected_key(table: DataTable[object], keys: list[str]) -> str | None:
        if not keys or table.row_count == 0:
            return None
        row = table.cursor_row
        return keys[row] if 0 <= row < len(keys) else None

    @staticmethod
    def _restore_cursor(table: DataTable[object], keys: list[str], selected: str | None) -> None:
        if selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False)
