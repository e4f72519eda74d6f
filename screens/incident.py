"""An incident: its state and metrics on top, its timeline below, and the keys that
move it (acknowledge, note, export, resolve: :mod:`screens.incident_acts`, which the
dashboard's keys share).

The timeline is read in a worker thread, through the app's session (the store and
the audit log it opened once), so a long one never holds up the keyboard; the view
renders only the lines on screen.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from console.config.models import format_duration
from console.incidents.model import Incident, IncidentError
from console.incidents.timeline import Event, compute_metrics, utc
from console.text import inert
from screens.footer import KeysFooter
from screens.front import Front, IncidentsOpened, front_of
from screens.incident_acts import acknowledge, ask_note, ask_resolve, export_incident
from screens.render import INCIDENT_STYLE
from screens.stack import ScreenHeader, while_on_stack
from screens.timeline import TimelineView
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    pass


#: How often an open incident's timeline is read again while it is shown.
REFRESH_EVERY = 5.0
#: Longer timelines are read again only when the incident changes (or on ``R``):
#: rebuilding one costs about a second per 100,000 events.
REFRESH_LIMIT = 20_000


def _seconds(value: float | None) -> str:
    return "—" if value is None else format_duration(value)


class IncidentScreen(SaysWorkFailures, Screen[None]):
    """One incident: state, owner and metrics; the timeline; the selected event."""

    DEFAULT_CSS = """
    IncidentScreen #incident-head { height: auto; padding: 0 1; background: $boost; }
    IncidentScreen #timeline-filter { display: none; }
    IncidentScreen #timeline-filter.visible { display: block; }
    IncidentScreen TimelineView { height: 1fr; }
    IncidentScreen #event-detail {
        height: 8; padding: 0 1; border-top: solid $accent; overflow-y: auto;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "acknowledge", "Ack"),
        Binding("n", "note", "Note"),
        Binding("e", "export", "Export"),
        Binding("x", "resolve", "Resolve"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("R", "reload", "Reload", show=False),
    ]

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number
        self.incident: Incident | None = None
        self.events: list[Event] = []
        self._loading = False
        self._again = False
        self._looked = False
        #: Why the audit log is left out of the timeline, once said.
        self._left_out: str | None = None

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        yield ScreenHeader()
        yield Static("Loading the timeline…", id="incident-head")
        yield Input(
            placeholder="filter events by kind, actor or text (esc clears)", id="timeline-filter"
        )
        yield TimelineView(id="timeline")
        yield Static("", id="event-detail")
        yield KeysFooter(compact=True)  # every key in view at 80 columns

    @while_on_stack
    def on_mount(self) -> None:
        self.query_one(TimelineView).focus()
        self.load()
        self.set_interval(REFRESH_EVERY, self._tick)

    def _tick(self) -> None:
        if (
            self.is_current
            and self.incident is not None
            and self.incident.is_open
            and len(self.events) <= REFRESH_LIMIT
        ):
            self.load()

    def show_incidents(self) -> None:
        """The store's incidents changed (an ack, a note, a sync): read ours again."""
        self.load()

    def load(self) -> None:
        """Read the incident and its timeline again (once more after a read in progress:
        it may have missed the change that asked for this one)."""
        if self._loading:
            self._again = True
            return
        self._loading = True
        self._again = False
        self._read()

    def _read_done(self) -> None:
        self._loading = False
        if self._again:
            self.load()

    @work(thread=True, group="timeline", exit_on_error=False)
    def _read(self) -> None:
        space = self.front.session
        try:
            if space is None:
                raise IncidentError("the store is not open yet")
            incident = space.book.get(self.number)
            events = space.timeline(incident)
            left_out = space.audit_problem
        except Exception as exc:  # shown, never a crash: the console stays up
            self.app.call_from_thread(self._failed, str(exc))
            return
        if left_out and left_out != self._left_out:  # said once, not every read
            self._left_out = left_out
            self.app.call_from_thread(
                self.app.notify, f"The audit log cannot be read: {left_out}", severity="warning"
            )
        self.app.call_from_thread(self._show, incident, events)

    @while_on_stack  # the answer of a read for a screen popped since
    def _failed(self, error: str) -> None:
        self._read_done()
        self.query_one("#incident-head", Static).update(
            Text(f"Cannot read incident {self.number}: {inert(error)}", style="bold red")
        )

    @while_on_stack
    def _show(self, incident: Incident, events: list[Event]) -> None:
        self._read_done()
        self.incident = incident
        self.events = events
        self._find_first_breach(incident, events)
        self.query_one("#incident-head", Static).update(self._head(incident, events))
        self.query_one(TimelineView).set_events(events)

    def _find_first_breach(self, incident: Incident, events: list[Event]) -> None:
        """Prometheus may have been down when the incident opened: look once more."""
        app = self.front
        if self._looked or app.poller is None or app.incidents is None:
            return
        if any(e.kind == "sli.first_breach" for e in events):
            return
        self._looked = True
        # Read in the app's first-breach queue (in a thread); when found, the app
        # redraws every screen that shows incidents, this one included.
        app.post_message(IncidentsOpened([incident]))

    def _head(self, incident: Incident, events: list[Event]) -> Text:
        text = Text()
        text.append(f"{incident.id} ", style="bold")
        text.append(inert(incident.state.upper()), style=INCIDENT_STYLE.get(incident.state, ""))
        text.append(f"  {inert(incident.title)}\n")
        text.append(
            inert(
                f"model {incident.model or '—'} · alert {incident.alertname} · severity "
                f"{incident.severity or '—'} · owner {incident.owner or '—'} · "
            )
        )
        if incident.ack_active:
            text.append(f"acknowledged by {inert(incident.acked_by)}", style="yellow")
        else:
            text.append("not acknowledged" if incident.is_open else "closed", style="dim")
        text.append(" · ")
        text.append(
            "FIRING" if incident.firing else "quiet", "bold red" if incident.firing else "green"
        )
        text.append(f"\nsince {utc(incident.alert_started_at)} · {len(events)} events · ")
        metrics = compute_metrics(events)
        text.append(
            "  ".join(f"{m.label} {_seconds(m.seconds)}" for m in metrics.values()), style="cyan"
        )
        return text

    @on(TimelineView.Selected)
    @while_on_stack
    def _selected(self, message: TimelineView.Selected) -> None:
        event = message.event
        body = Text()
        body.append(
            inert(f"{utc(event.at)}  {event.kind}  by {event.actor}  [{event.ref}]") + "\n", "bold"
        )
        body.append(inert(event.summary) + "\n")
        if event.data:
            shown = json.dumps(dict(event.data), indent=None, sort_keys=True, default=str)
            body.append(shown[:2000], style="dim")
        self.query_one("#event-detail", Static).update(body)

    # -- keys --------------------------------------------------------------------

    def action_back(self) -> None:
        box = self.query_one("#timeline-filter", Input)
        if box.has_class("visible"):
            box.value = ""
            box.remove_class("visible")
            self.query_one(TimelineView).set_filter("")
            self.query_one(TimelineView).focus()
            return
        self.dismiss(None)

    def action_filter(self) -> None:
        box = self.query_one("#timeline-filter", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#timeline-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(TimelineView).set_filter(event.value.strip())

    @on(Input.Submitted, "#timeline-filter")
    def _filter_done(self) -> None:
        self.query_one(TimelineView).focus()

    def action_reload(self) -> None:
        self.load()

    def _current(self) -> Incident | None:
        if self.incident is None:
            self.notify("Still reading the incident…")
        return self.incident

    def action_acknowledge(self) -> None:
        if (incident := self._current()) is not None:
            acknowledge(self.front, incident)

    def action_note(self) -> None:
        if (incident := self._current()) is not None:
            ask_note(self.front, incident)

    def action_export(self) -> None:
        if (incident := self._current()) is not None:
            export_incident(self.front, incident)

    def action_resolve(self) -> None:
        if (incident := self._current()) is not None:
            ask_resolve(self.front, incident)
