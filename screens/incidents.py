"""Every open incident (or every incident), newest first; enter opens one."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Static

from console.config.models import format_duration
from console.incidents.model import Incident, IncidentError
from console.text import inert
from screens.footer import KeysFooter
from screens.front import Front, front_of
from screens.incident import IncidentScreen
from screens.render import INCIDENT_STYLE
from screens.stack import ScreenHeader, while_on_stack
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    pass


class IncidentsScreen(SaysWorkFailures, Screen[None]):
    """Every open incident (``A``: resolved ones too); enter opens one."""

    DEFAULT_CSS = """
    IncidentsScreen DataTable { height: 1fr; }
    IncidentsScreen #incidents-title { padding: 0 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open"),
        Binding("A", "toggle_all", "Resolved too"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_all = False
        self._numbers: list[int] = []

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        yield ScreenHeader()
        yield Static("", id="incidents-title")
        yield DataTable(id="incidents", cursor_type="row", zebra_stripes=True)
        yield KeysFooter(compact=True)  # every key in view at 80 columns

    @while_on_stack
    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("incident", "state", "severity", "model", "alert", "since", "owner", ""):
            table.add_column(label)
        self.show_incidents()
        table.focus()

    @while_on_stack
    def show_incidents(self) -> None:
        """Read the incidents again (in a thread: the store may make it wait)."""
        if self.front.incidents is None:
            self.query_one("#incidents-title", Static).update(
                Text("Incidents are not available (the store could not be opened)", "bold red")
            )
            return
        self._read(self.show_all)

    @work(thread=True, exclusive=True, group="incidents-list", exit_on_error=False)
    def _read(self, show_all: bool) -> None:
        book = self.front.incidents
        assert book is not None
        try:
            incidents = book.incidents(open_only=not show_all)
        except IncidentError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._show, incidents, show_all)

    @while_on_stack
    def _show(self, incidents: list[Incident], show_all: bool) -> None:
        if show_all != self.show_all:
            return  # read for a view the responder has left
        table = self.query_one(DataTable)
        now = self.front.now()
        selected = self._numbers[table.cursor_row] if self._numbers and table.row_count else None
        table.clear()
        self._numbers = [i.number for i in incidents]
        for incident in incidents:
            table.add_row(
                Text(incident.id, style="bold"),
                Text(inert(incident.state), style=INCIDENT_STYLE.get(incident.state, "")),
                Text(inert(incident.severity or "—")),
                Text(inert(incident.model or "—")),
                Text(inert(incident.alertname)),
                format_duration(max(0.0, now - incident.alert_started_at)) + " ago",
                Text(inert(incident.owner or "—")),
                Text("FIRING", "bold red") if incident.firing else Text("quiet", "green"),
            )
        if selected in self._numbers:
            table.move_cursor(row=self._numbers.index(selected))
        what = "incidents" if self.show_all else "open incidents"
        self.query_one("#incidents-title", Static).update(
            Text.assemble(
                (f"{len(incidents)} {what}", "bold"), "  enter opens · A toggles resolved"
            )
        )

    def action_back(self) -> None:
        self.dismiss(None)

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.show_incidents()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if self._numbers and table.row_count:
            self.app.push_screen(IncidentScreen(self._numbers[table.cursor_row]))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()
