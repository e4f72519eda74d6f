"""What a key does to an incident, from any screen: open one for an alert,
acknowledge, note, resolve and export it. Each writes through the app's session in a
worker thread, never on the UI's loop, and what it wrote reaches every screen that
shows incidents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from adapters.records import AlertRecord
from console.incidents.model import Incident, IncidentError
from console.text import inert
from screens.front import Front, IncidentsOpened, IncidentsRead
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from console.incidents.book import IncidentBook


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
