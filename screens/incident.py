"""An incident: its state and metrics on top, its timeline below, and the keys that
move it (acknowledge, note, export, resolve).

The timeline is read in a worker thread, through the app's session (the store and
the audit log it opened once), so a long one never holds up the keyboard; the view
renders only the lines on screen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label, Static

from adapters.records import AlertRecord
from console.config.models import format_duration
from console.incidents.model import Incident, IncidentError
from console.incidents.timeline import Event, compute_metrics, utc
from console.text import inert
from screens.footer import KeysFooter
from screens.front import Front, IncidentsOpened, IncidentsRead, front_of
from screens.render import INCIDENT_STYLE
from screens.stack import ScreenHeader, while_on_stack
from screens.timeline import TimelineView
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from console.incidents.book import IncidentBook

#: How often an open incident's timeline is read again while it is shown.
REFRESH_EVERY = 5.0
#: Longer timelines are read again only when the incident changes (or on ``R``):
#: rebuilding one costs about a second per 100,000 events.
REFRESH_LIMIT = 20_000


def _actor(app: Front) -> str:
    from console.config.actor import resolve_actor

    return resolve_actor(app.config, app.actor)


def _book_or_say(app: Front) -> bool:
    if app.incidents is None:
        app.notify("Incidents are not available (the store could not be opened)", severity="error")
        return False
    return True


def open_incident_for(
    app: Front, alert: AlertRecord, then: Callable[[Incident], None] | None = None
) -> None:
    """Open (by key) the incident of ``alert``'s group, with every alert of the group.

    The store is written in a worker thread, so the key never waits on it; ``then``
    gets the incident on the event loop once it is open."""
    if not _book_or_say(app):
        return
    book = app.incidents
    assert book is not None
    label = app.config.model_label
    model = alert.labels.get(label, "")
    group = [
        a for a in app.snapshot.alerts if a.name == alert.name and a.labels.get(label, "") == model
    ] or [alert]
    actor = _actor(app)

    def run() -> None:
        try:
            incident = book.open(group, model_label=label, actor=actor)
            open_now = book.open_incidents()
        except IncidentError as exc:
            app.call_from_thread(app.notify, str(exc), severity="error")
            return
        app.call_from_thread(opened, incident, open_now)

    def opened(incident: Incident, open_now: tuple[Incident, ...]) -> None:
        app.post_message(IncidentsRead(open_now))
        app.notify(f"{incident.id} opened for {incident.alertname} on {incident.model}")
        app.post_message(IncidentsOpened([incident]))
        if then is not None:
            then(incident)

    _in_store_thread(app, run)


def _in_store_thread(app: Front, run: Callable[[], None]) -> None:
    """Run a write to the incident store in a worker thread: a key never waits on it."""
    app.run_worker(
        run,
        thread=True,
        group="incident-writes",
        exit_on_error=False,
        name="incident-writes",
        description="write to the incident store",
    )


def write_incident(
    app: Front,
    write: Callable[[IncidentBook], tuple[str, float | None]],
    *,
    severity: SeverityLevel = "warning",
) -> None:
    """A responder's change to an incident, made in a worker thread so the key never
    waits on the store (another console may be writing it). ``write`` returns the
    toast that says it is done (and its timeout); the open incidents are then read
    again in the same thread and every screen redraws. A refusal is said instead."""
    book = app.incidents
    if book is None:
        return

    def run() -> None:
        try:
            said, timeout = write(book)
            open_now = book.open_incidents()
        except IncidentError as exc:
            app.call_from_thread(app.notify, str(exc), severity=severity)
            return
        app.post_message(IncidentsRead(open_now))
        app.call_from_thread(app.notify, said, timeout=timeout)

    _in_store_thread(app, run)


def acknowledge(app: Front, incident: Incident) -> None:
    """Acknowledge: shown to every responder who shares the store. Not a silence."""
    if not _book_or_say(app):
        return
    actor, now = _actor(app), app.now()

    def ack(book: IncidentBook) -> tuple[str, float | None]:
        done = book.acknowledge(incident.number, actor=actor, now=now)
        return (
            f"{done.id} acknowledged by {done.acked_by}. Pages still arrive: this is not a silence",
            6,
        )

    write_incident(app, ack)


def ask_note(app: Front, incident: Incident) -> None:
    def save(text: str | None) -> None:
        if not text:
            return
        actor, now = _actor(app), app.now()

        def note(book: IncidentBook) -> tuple[str, float | None]:
            book.note(incident.number, text, actor=actor, now=now)
            return f"Note added to {incident.id}", None

        write_incident(app, note, severity="error")

    if _book_or_say(app):
        app.push_screen(
            TextScreen(
                f"Note for {incident.id}",
                "what you saw or did (start with 'action:' for an action item)",
            ),
            save,
        )


def ask_resolve(app: Front, incident: Incident) -> None:
    def resolve(comment: str | None) -> None:
        if comment is None:
            return
        actor, now = _actor(app), app.now()

        def close(book: IncidentBook) -> tuple[str, float | None]:
            done = book.resolve(incident.number, actor=actor, comment=comment, now=now)
            return f"{done.id} resolved. e exports the postmortem draft", 8

        write_incident(app, close)

    if not _book_or_say(app):
        return
    still = " Its alert is still firing." if incident.firing else ""
    app.push_screen(
        TextScreen(
            f"Resolve {incident.id}?{still}",
            "why it is resolved (optional); enter resolves, esc cancels",
            allow_empty=True,
        ),
        resolve,
    )


def export_incident(app: Front, incident: Incident) -> None:
    """Write the Markdown and JSON exports (in a thread) and say where."""
    directory = app.config.incidents.export_dir or Path.cwd()

    space = app.session

    def write() -> None:
        from console.export.build import export_files

        try:
            if space is None:
                raise IncidentError("the store is not open yet")
            paths = export_files(space, space.book.get(incident.number), directory)
            left_out = space.audit_problem
        except Exception as exc:  # any failure is said; the console stays up
            app.call_from_thread(app.notify, f"Export failed: {exc}", severity="error")
            return
        said = f"{incident.id} exported: " + ", ".join(str(p) for p in paths)
        if left_out:
            said += f"; the audit log cannot be read ({left_out})"
        app.call_from_thread(
            app.notify, said, severity="warning" if left_out else "information", timeout=10
        )

    app.notify(f"Exporting {incident.id}…", timeout=2)
    app.run_worker(
        write,
        thread=True,
        group="export",
        exit_on_error=False,
        name="export",
        description="export an incident",
    )


class TextScreen(SaysWorkFailures, ModalScreen[str | None]):
    """One line of text: enter gives it, esc cancels (None)."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > Vertical {
        width: 80; height: auto; border: round $accent; background: $surface; padding: 0 1;
    }
    TextScreen Label { width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str, *, allow_empty: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(inert(self.title_text), style="bold"))
            yield Input(placeholder=self.placeholder, id="text")
            yield Label(Text("enter save · esc cancel", style="dim"))

    @on(Input.Submitted, "#text")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text or self.allow_empty:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


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
