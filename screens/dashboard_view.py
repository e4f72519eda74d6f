"""What the dashboard draws and when: its widgets, and a snapshot drawn at once, or
held back while keys come in, or kept for when the dashboard is on top again."""

from __future__ import annotations

import time

from textual.app import ComposeResult, ScreenStackError
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input

from console.sources.snapshot import Snapshot
from screens.dashboard_alerts import AlertsPane
from screens.footer import KeysFooter
from screens.lines import Line, SourceBar
from screens.table import Table

#: A models table longer than this costs more than a frame to draw again: while keys
#: come in, a new snapshot waits for them to pause (see DashboardScreen.show_snapshot).
INPUT_FIRST_ROWS = 200
#: Seconds without a key before a held snapshot is drawn.
INPUT_QUIET = 0.3
#: Seconds a snapshot is held back at most, however fast the keys come.
INPUT_LATEST = 1.0
#: Seconds without a letter typed into the filter before a big table follows it.
FILTER_QUIET = 0.15


class DashboardView(AlertsPane):
    """The dashboard's widgets and how snapshots reach them."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: Snapshot | None = None
        #: Since when a snapshot is held back while keys come in, and the timer that
        #: draws it once they pause.
        self._held_since: float | None = None
        self._retry: Timer | None = None

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
