"""The dashboard: models × SLIs, alerts grouped by model, and source health."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from rich.text import Text
from textual import on
from textual.app import ComposeResult, ScreenStackError
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input

from adapters.base import AlertsAdapter
from adapters.records import AlertRecord
from console.render import fitting, model_table
from console.sources.snapshot import Health, Snapshot
from console.text import CELL_LIMIT, inert
from screens.footer import KeysFooter
from screens.front import Front, front_of
from screens.lines import Line, SourceBar
from screens.render import (
    SEVERITY_STYLE,
    LazyCell,
    LazyRow,
    LiveCell,
    alert_age,
    alert_state,
    incident_cell,
    same_text,
)
from screens.table import Table
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    from console.actions.origin import Origin
    from console.incidents.model import Incident


#: What an alert's row shows but for its age: the model's name (on its first alert
#: only), the alert, and its open incident.
_AlertKey: TypeAlias = tuple[str, AlertRecord, "Incident | None"]


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


#: A models table longer than this costs more than a frame to draw again: while keys
#: come in, a new snapshot waits for them to pause (see DashboardScreen.show_snapshot).
INPUT_FIRST_ROWS = 200
#: Seconds without a key before a held snapshot is drawn.
INPUT_QUIET = 0.3
#: Seconds a snapshot is held back at most, however fast the keys come.
INPUT_LATEST = 1.0
#: Seconds without a letter typed into the filter before a big table follows it.
FILTER_QUIET = 0.15
#: Rows in view a frame draws anew when a snapshot changed more of them: the rest
#: follow in the next frames, and a key that comes in meanwhile is answered first.
PATCH_ROWS = 8


def visible_rows(table: DataTable[object]) -> range:
    """The indexes of the rows in view (one more each side)."""
    top = int(table.scroll_y)
    height = max(0, table.size.height - (table.header_height if table.show_header else 0))
    return range(max(0, top - 1), top + height + 1)


class DashboardScreen(SaysWorkFailures, Screen[None]):
    """Models × SLIs on top, alerts grouped by model below."""

    CSS_PATH = "dashboard.tcss"
    # The footer holds what a responder needs first, and fits 80 columns; every other
    # key is in help (?) and the palette (:), which lists the actions too.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "triage", "Triage"),
        Binding("r", "rollback", "Rollback"),
        Binding("f", "fallback", "Fallback"),
        Binding("s", "silence", "Silence"),
        Binding("a", "acknowledge", "Ack"),
        # Priority: handled as the key comes in, so focus has moved before the keys
        # queued behind it are handed on (see action_filter). Off while the filter has
        # focus (check_action): there a `/` is text, typed as the Input types it.
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
        Binding("colon", "app.command_palette", "Palette", key_display=":"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("enter", "open", "Open", show=False, priority=False),
        Binding("p", "pipeline", "Pipeline", show=False),
        Binding("n", "note", "Note", show=False),
        Binding("i", "incident", "Incident", show=False),
        Binding("I", "incidents", "Incidents", show=False),
        Binding("e", "export", "Export", show=False),
        Binding("ctrl+p", "app.command_palette", "Palette", show=False),
    ]
    #: What the command palette offers here: (action, title, help); each acts on the
    #: selection, exactly as its key does.
    PALETTE: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("triage", "Triage", "Walk the selected alert's runbook (t)"),
        ("rollback", "Roll back", "Point the selected model's alias at its previous version (r)"),
        ("fallback", "Fallback on/off", "Serve the selected model's rule-based fallback (f)"),
        ("silence", "Silence", "Silence the selected alert, or the model's alerts (s)"),
        ("pipeline", "Pipeline pause/resume", "Pause or resume the model's retraining (p)"),
        ("acknowledge", "Acknowledge", "Acknowledge the selected alert's incident (a)"),
        ("note", "Note", "Add a note to the selected alert's incident (n)"),
        ("incident", "Incident", "Open the selected alert's incident and timeline (i)"),
        ("incidents", "Incidents", "Every open incident; enter opens one (I)"),
        ("export", "Export", "Export the selected alert's incident as Markdown and JSON (e)"),
        ("open", "Open alert", "The selected alert in full, with its model's SLIs (enter)"),
        ("filter", "Filter models", "Filter the dashboard by model or alert (/)"),
    )
    #: Mutations: hidden and refused in read-only mode.
    MUTATIONS: ClassVar[frozenset[str]] = frozenset({"rollback", "fallback", "silence", "pipeline"})

    def __init__(self) -> None:
        super().__init__()
        self._filter = ""
        self._pending: Snapshot | None = None
        #: Since when a snapshot is held back while keys come in, and the timer that
        #: draws it once they pause.
        self._held_since: float | None = None
        self._retry: Timer | None = None
        #: The timer that redraws a big table once typing in the filter pauses.
        self._filter_timer: Timer | None = None
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
        self._alert_rows: list[str] = []
        #: Each alert row as drawn: (what its cells but the age show, its age cell).
        self._alert_drawn: dict[str, tuple[_AlertKey, LiveCell]] = {}
        #: The alerts listed (:meth:`_alerts_listed`), and what they were listed from.
        self._alert_listed: list[tuple[str, _AlertKey]] = []
        self._alert_inputs: tuple[object, object, str] | None = None
        self._alert_age_width = -1

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield SourceBar(id="sources")
        yield Input(placeholder="filter by model or alert name (esc clears)", id="filter")
        with Vertical(id="panes"):
            yield Line("Models", classes="pane-title", id="models-title")
            yield Table(id="models", cursor_type="row", zebra_stripes=True)
            yield Line("Alerts", classes="pane-title", id="alerts-title")
            yield Table(id="alerts", cursor_type="row")
        yield KeysFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        models = self.query_one("#models", DataTable)
        models.header_height = 2  # an SLI's name over its objective
        alerts = self.query_one("#alerts", DataTable)
        alerts.fixed_columns = 1  # the model's name stays when the summary scrolls
        for key, label in (
            ("model", "model"),
            ("alert", "alert"),
            ("severity", "severity"),
            ("state", "state"),
            ("age", "age"),
            ("incident", "incident"),
            ("summary", "summary"),
        ):
            alerts.add_column(label, key=key)
        self.set_interval(1.0, self._tick)
        self._draw(self.front.snapshot)
        models.focus()

    # -- rendering ---------------------------------------------------------

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """A new snapshot arrived: draw it, or keep it for later while another screen
        is on top (a modal too: the dashboard dimmed behind it stays as it was, and
        the screen the responder is reading is not slowed by redrawing it), before
        the screen's widgets are mounted, or after they are gone.

        Input comes first: while keys are coming in, a table of more than
        :data:`INPUT_FIRST_ROWS` models (whose drawing costs more than a frame) is
        drawn once they pause for :data:`INPUT_QUIET` seconds, and never later than
        :data:`INPUT_LATEST` seconds after the first snapshot held back."""
        if len(snapshot.models) > INPUT_FIRST_ROWS and self._on_top():
            now = self._monotonic()
            quiet_in = INPUT_QUIET - (now - self.front.last_key_at)
            if self._held_since is None:
                self._held_since = now
            if quiet_in > 0 and now - self._held_since < INPUT_LATEST:
                self._pending = snapshot
                if self._retry is None:
                    self._retry = self.set_timer(quiet_in, self._show_held)
                return
        self._draw(snapshot)

    def _show_held(self) -> None:
        self._retry = None
        if self._pending is not None:
            self.show_snapshot(self._pending)

    def _draw(self, snapshot: Snapshot) -> None:
        if not self._on_top() or not self.is_mounted or not self.query(SourceBar):
            self._pending = snapshot
            return
        self._pending = None
        self._held_since = None
        now = self.front.now()
        self.query_one(SourceBar).show(snapshot, now)
        self._render_models(snapshot, now)
        self._render_alerts(snapshot, now)
        self._follow_new_page(snapshot)

    @staticmethod
    def _monotonic() -> float:
        return time.monotonic()

    def _on_top(self) -> bool:
        try:
            return self.app.screen is self
        except ScreenStackError:  # the app is ending: no screen left
            return False

    def _follow_new_page(self, snapshot: Snapshot) -> None:
        """A page that starts firing while no alert is selected becomes the selection
        (in both tables, focus left where it is), so `t`, `a` and `i` act on it."""
        firing = {a.fingerprint: a for a in snapshot.firing}
        new = [a for f, a in firing.items() if f not in self._seen_firing]
        self._seen_firing = set(firing)
        if not new or self._focused_alert() is not None:
            return
        page = next((a for a in new if a.fingerprint in self._alert_rows), None)
        if page is None:  # filtered out: not the user's current view
            return
        alerts = self.query_one("#alerts", DataTable)
        alerts.move_cursor(row=self._alert_rows.index(page.fingerprint), animate=False)
        if page.model in self._model_rows:
            models = self.query_one("#models", DataTable)
            models.move_cursor(row=self._model_rows.index(page.model), animate=False)

    def on_resize(self) -> None:
        """A new width may show more or less of each SLI: lay the models out again."""
        self._draw(self._pending or self.front.snapshot)

    def on_screen_resume(self) -> None:
        """Back from a screen over it: the dashboard comes back as it was first (the
        key that closed that screen is answered at once), and what arrived meanwhile
        is drawn right after."""
        if self._pending is not None:
            self.call_after_refresh(self._show_pending)

    def _show_pending(self) -> None:
        if self._pending is not None:
            self._draw(self._pending)

    def _tick(self) -> None:
        """Ages move even when no data comes in: a stalled source must look stalled."""
        if self._on_top() and self.query(SourceBar):
            self.query_one(SourceBar).show(self.front.snapshot, self.front.now())

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

    def _render_alerts(self, snapshot: Snapshot, now: float) -> None:
        """The alerts table, rebuilt only when its alerts, their incidents or the age
        column's width changed; otherwise only the ages that moved are replaced, and
        the table is told of those in view."""
        table = self.query_one("#alerts", Table)
        listed = self._alerts_listed(snapshot)
        wanted = [(fingerprint, key, alert_age(key[1], now)) for fingerprint, key in listed]
        drawn = self._alert_drawn
        keys = [fingerprint for fingerprint, _, _ in wanted]
        widest = max((len(age) for _, _, age in wanted), default=0)
        same = (
            keys == self._alert_rows
            and widest == self._alert_age_width
            and all(drawn[f][0] == key for f, key, _ in wanted)
        )
        if same:
            view = visible_rows(table)
            told = False
            hidden: str | None = None
            for row, (fingerprint, _, age) in enumerate(wanted):
                cell = drawn[fingerprint][1]
                if cell.text.plain == age:
                    continue
                cell.set(Text(age))
                if row in view:
                    table.update_cell(fingerprint, "age", cell)
                    told = True
                else:
                    hidden = hidden or fingerprint
            if hidden is not None and not told:
                table.update_cell(hidden, "age", drawn[hidden][1])
        else:
            selected = self._selected_key(table, self._alert_rows)
            table.clear()
            self._alert_drawn = drawn = {}
            rows: list[tuple[str, tuple[object, ...]]] = []
            for fingerprint, key, age in wanted:
                shown, alert, incident = key
                cell = LiveCell(Text(age))
                drawn[fingerprint] = (key, cell)
                rows.append(
                    (
                        fingerprint,
                        (
                            Text(inert(shown), style="bold"),
                            Text(inert(alert.name)),
                            Text(
                                inert(alert.severity),
                                style=SEVERITY_STYLE.get(alert.severity, ""),
                            ),
                            alert_state(alert),
                            cell,
                            incident_cell(incident),
                            Text(inert(alert.summary, limit=CELL_LIMIT)),
                        ),
                    )
                )
            table.add_keyed_rows(rows)  # 500 alerts at once, not 500 add_row calls
            self._alert_rows = keys
            self._alert_age_width = widest
            self._restore_cursor(table, keys, selected)
        if not keys and table.has_focus:  # the last alert stopped: back to the models
            self.query_one("#models", DataTable).focus()
        self.query_one("#alerts-title", Line).show_text(
            self._alerts_title(snapshot, now, [key[1] for _, key, _ in wanted])
        )

    def _alerts_listed(self, snapshot: Snapshot) -> list[tuple[str, _AlertKey]]:
        """The alerts the table lists, in order: each fingerprint with what its row
        shows but for its age. Kept while its inputs are the very objects they were
        (the snapshot keeps its alert index while the alerts did not change, and the
        app its open incidents): a snapshot from a metrics source, or a tick, does not
        look through hundreds of alerts and incidents again."""
        inputs = (snapshot.alerts_by_model, self.front.open_incidents, self._filter)
        last = self._alert_inputs
        if (
            last is not None
            and last[0] is inputs[0]
            and last[1] is inputs[1]
            and last[2] == inputs[2]
        ):
            return self._alert_listed
        label = self.front.config.model_label
        incidents: dict[tuple[str, str], Incident] = {}
        for open_one in reversed(self.front.open_incidents):  # the first one wins
            incidents[(open_one.model, open_one.alertname)] = open_one
        listed: list[tuple[str, _AlertKey]] = []
        for model, alerts in snapshot.alerts_by_model.items():
            if not self._matches(snapshot, model):
                continue
            for index, alert in enumerate(alerts):
                incident = incidents.get((alert.labels.get(label, ""), alert.name))
                listed.append((alert.fingerprint, (model if index == 0 else "", alert, incident)))
        self._alert_inputs = inputs
        self._alert_listed = listed
        return listed

    def _alerts_title(self, snapshot: Snapshot, now: float, shown: list[AlertRecord]) -> Text:
        """``Alerts 2 firing · 2 total``; under a filter, of the alerts shown (and of
        how many there are); before any alerts source has answered, that it waits,
        never "0 firing"."""
        waiting = [
            name
            for name in self._alert_sources(snapshot)
            if (health := snapshot.sources.get(name)) is not None
            and health.state(now) is Health.PENDING
        ]
        if waiting and not snapshot.alerts:
            return Text.assemble("Alerts ", (f"waiting for {inert(', '.join(waiting))}", "yellow"))
        firing = sum(1 for alert in shown if alert.state == "active")
        title = Text.assemble(
            "Alerts ",
            (f"{firing} firing", "bold red" if firing else "green"),
            f" · {len(shown)} total",
        )
        if self._filter:
            title.append(
                f" (filtered; {len(snapshot.firing)} firing · {len(snapshot.alerts)} in all)",
                style="dim",
            )
        return title

    def _alert_sources(self, snapshot: Snapshot) -> list[str]:
        poller = self.front.poller
        if poller is not None:
            return [n for n, a in poller.adapters.items() if isinstance(a, AlertsAdapter)]
        return [name for name, health in snapshot.sources.items() if health.type == "alertmanager"]

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

    # -- actions -----------------------------------------------------------

    # At a thousand models keys typed while the screen is busy wait in the app's
    # queue, and the app hands each to the widget focused when it gets to it: the
    # letters after `/` belong in the filter. So `/` is a priority binding (run as the
    # app gets to the key, before it hands on the next) and moves focus at once
    # (Screen.set_focus), not once the messages already queued are handled
    # (Widget.focus). `escape` stays an ordinary binding: it must come after the
    # letters typed before it, which the filter has yet to take.

    def _filter_focused(self) -> bool:
        focused = self.focused
        return isinstance(focused, Input) and focused.id == "filter"

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        self.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.value or self._filter or box.has_class("visible"):  # else: no redraw
            box.value = ""
            box.remove_class("visible")
            self._set_filter("")
        self.set_focus(self.query_one("#models", DataTable))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        """A letter typed into the filter. Over :data:`INPUT_FIRST_ROWS` models the
        letter shows at once and the tables follow once typing pauses for
        :data:`FILTER_QUIET` seconds (each redraw of a big table costs more than a
        letter's worth of time); smaller tables follow each letter."""
        text = event.value.strip()
        if text == self._filter:
            return
        if len(self.front.snapshot.models) <= INPUT_FIRST_ROWS:
            self._set_filter(text)
            return
        self._filter = text
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_QUIET, self._filter_settled)

    def _filter_settled(self) -> None:
        self._filter_timer = None
        self._draw(self._pending or self.front.snapshot)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        if self._filter_timer is not None:  # enter: the tables follow now
            self._filter_settled()
        self.set_focus(self.query_one("#models", DataTable))

    def _set_filter(self, text: str) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        self._filter = text
        self._draw(self._pending or self.front.snapshot)

    def action_open(self) -> None:
        self._open_focused()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._open_focused()

    def action_triage(self) -> None:
        """Open the runbook of the selected alert (or the selected model's first alert)."""
        from screens.runbook import open_runbook_for

        alert = self._focused_alert()
        if alert is None:
            self.notify("Select an alert (or a model with a firing alert) to triage")
            return
        open_runbook_for(self.front, alert)

    # -- mitigations ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and self._filter_focused():
            return False  # in the filter, `/` is text (and the filter is open already)
        # Read-only: hidden from the footer, and the key does nothing.
        return not (action in self.MUTATIONS and self.front.read_only)

    def _focused_model(self) -> str | None:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "alerts":
            alert = self._focused_alert()
            return alert.model if alert is not None and alert.model else None
        return self._selected_key(self.query_one("#models", DataTable), self._model_rows)

    def _origin(self) -> Origin:
        """Where a key's action is taken from: the selected alert when the alerts
        table has the focus (it is filed under that alert's incident), else the
        model alone."""
        from console.actions.origin import Origin

        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "alerts":
            return Origin.of_alert(self._focused_alert())
        return Origin()

    def _act(self, name: str, params: dict[str, object]) -> None:
        from screens.action import start_action

        origin = self._origin()
        self.run_worker(
            start_action(self.front, name, params, origin=origin),
            exit_on_error=False,
            name="action-plan",
            description="plan a mitigation",
        )

    def action_rollback(self) -> None:
        """Roll the selected model back to the version its alias held before."""
        model = self._focused_model()
        if model is None:
            self.notify("Select a model to roll back")
            return
        self._act("rollback", {"model": model})

    def _toggle(self, name: str, role: str, key: str) -> None:
        model = self._focused_model()
        if model is None:
            self.notify(f"Select a model first ({name})")
            return
        on = self.front.snapshot.switches.get(role, {}).get(model)
        # Unknown (not read yet): the action reads the switch and flips it.
        self._act(name, {"model": model, key: None if on is None else not on})

    def action_fallback(self) -> None:
        """Turn the selected model's rule-based fallback on, or off when it is on."""
        self._toggle("fallback", "fallback", "on")

    def action_pipeline(self) -> None:
        """Pause the selected model's retraining pipeline, or resume it when paused."""
        self._toggle("pipeline", "pipeline", "paused")

    def action_silence(self) -> None:
        """Silence the selected alert, or every alert of the selected model."""
        from console.actions.silence import equal_matcher
        from screens.action import SilenceScreen

        label = self.front.config.model_label
        focused = self.focused
        alert = self._focused_alert()
        if isinstance(focused, DataTable) and focused.id == "alerts" and alert is not None:
            matchers = [equal_matcher("alertname", alert.name)]
            if alert.model:
                matchers.append(equal_matcher(label, alert.model))
            self.app.push_screen(
                SilenceScreen(
                    matchers,
                    alert.model,
                    f"{alert.name} on {alert.model or '?'}",
                    origin=self._origin(),
                )
            )
            return
        model = self._focused_model()
        if model is None:
            self.notify("Select a model or an alert to silence")
            return
        self.app.push_screen(
            SilenceScreen(
                [equal_matcher(label, model)],
                model,
                f"every alert of {model}",
            )
        )

    # -- incidents -------------------------------------------------------------

    def show_incidents(self) -> None:
        self.show_snapshot(self.front.snapshot)

    def _with_incident(self, then: Callable[[Incident], None], *, open_one: bool) -> None:
        """Hand the focused alert's incident to ``then``; ``open_one`` opens it by key
        first (in a worker thread) if there is none."""
        from console.incidents.model import pick_open
        from screens.incident import open_incident_for

        alert = self._focused_alert()
        if alert is None:
            models = self.query_one("#models", DataTable)
            model = self._focused_model() or self._selected_key(models, self._model_rows)
            # The incidents last read (kept current by the sync): a key never reads the store.
            found = pick_open(self.front.open_incidents, model) if model else None
            if found is None:
                self.notify("Select an alert (or a model with a firing alert) first")
            else:
                then(found)
            return
        incident = self.front.incident_for_alert(alert)
        if incident is not None:
            then(incident)
        elif open_one:
            open_incident_for(self.front, alert, then)
        else:
            self.notify(f"{alert.name} has no incident yet: a or i opens one")

    def action_acknowledge(self) -> None:
        """Acknowledge the selected alert's incident (opening it if need be)."""
        from screens.incident import acknowledge

        self._with_incident(lambda incident: acknowledge(self.front, incident), open_one=True)

    def action_note(self) -> None:
        from screens.incident import ask_note

        self._with_incident(lambda incident: ask_note(self.front, incident), open_one=False)

    def action_incident(self) -> None:
        """Open the selected alert's incident and its timeline (opening it if need be)."""
        from screens.incident import IncidentScreen

        def show(incident: Incident) -> None:
            self.app.push_screen(IncidentScreen(incident.number))

        self._with_incident(show, open_one=True)

    def action_incidents(self) -> None:
        """Every open incident, whatever is selected."""
        from screens.incident import IncidentsScreen

        self.app.push_screen(IncidentsScreen())

    def action_export(self) -> None:
        from screens.incident import export_incident

        self._with_incident(lambda incident: export_incident(self.front, incident), open_one=False)

    def _focused_alert(self) -> AlertRecord | None:
        snapshot = self.front.snapshot
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "alerts":
            key = self._selected_key(focused, self._alert_rows)
            return next((a for a in snapshot.alerts if a.fingerprint == key), None)
        model = self._selected_key(self.query_one("#models", DataTable), self._model_rows)
        alerts = snapshot.alerts_for(model) if model else ()
        firing = [a for a in alerts if a.state == "active"] or list(alerts)
        return firing[0] if firing else None

    def _open_focused(self) -> None:
        from screens.alert_detail import AlertDetailScreen

        alert = self._focused_alert()
        if alert is not None:
            self.app.push_screen(AlertDetailScreen(alert, alert.model))
            return
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "alerts":
            return
        model = self._selected_key(self.query_one("#models", DataTable), self._model_rows)
        if model is not None:  # a model with no alerts: its SLIs alone
            self.app.push_screen(AlertDetailScreen(None, model))
