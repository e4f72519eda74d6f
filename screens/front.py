"""What a screen may read of the front end it runs in, and the messages it posts for
what it wants done.

A screen never imports the app, not even for typing (import-linter's screen-app
contract): it reads the console's state through :class:`Front`, a protocol the app
satisfies (mypy checks it, in ``screens/app.py``), and asks the app for a change by
posting one of the messages below. The app is then free to change how it keeps its
state; the screens see only this page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel
    from textual.screen import Screen

    from adapters.records import AlertRecord
    from console.actions.executor import Report
    from console.config.models import Config
    from console.incidents.book import IncidentBook
    from console.incidents.model import Incident
    from console.render.fitting import WidthBook
    from console.session import Session
    from console.sources.poller import Poller
    from console.sources.snapshot import Snapshot
    from console.triage.triage import Triage


class Front(Protocol):
    """The console as a screen sees it: what it may read, and the app's few calls a
    screen makes (toasts, screens, workers)."""

    config: Config
    snapshot: Snapshot
    """The latest snapshot of every source."""
    triage: Triage | None
    """The runbooks, their store and the metrics source; None until opened."""
    session: Session | None
    """What the front end opened once: sources, the store's parts, the audit log."""
    open_incidents: tuple[Incident, ...]
    """The open incidents as last read from the store."""
    read_only: bool
    actor: str | None
    actions_error: str | None
    """Why no mitigation can run, if so."""
    applying: int
    """Actions being applied or verified right now."""
    widths: WidthBook
    last_key_at: float
    """When the last key came in (time.monotonic): screens put input first."""
    poller: Poller | None

    @property
    def incidents(self) -> IncidentBook | None: ...

    @property
    def acting(self) -> Session | None: ...

    def now(self) -> float: ...

    def incident_for_alert(self, alert: AlertRecord) -> Incident | None: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def push_screen(self, screen: Screen[Any], callback: Any = None) -> Any: ...

    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def post_message(self, message: Message) -> bool: ...

    def run_worker(
        self,
        work: Any,
        name: str | None = "",
        group: str = "default",
        description: str = "",
        exit_on_error: bool = True,
        start: bool = True,
        exclusive: bool = False,
        thread: bool = False,
    ) -> Any: ...


def front_of(app: App[Any]) -> Front:
    """The front end a screen runs in (the app, seen through :class:`Front`)."""
    return cast("Front", app)


class IncidentsRead(Message):
    """The open incidents, read again in a thread after a change: show them."""

    def __init__(self, open_now: tuple[Incident, ...]) -> None:
        super().__init__()
        self.open_now = open_now


class IncidentsOpened(Message):
    """Incidents were opened by a key: their first breach is to be read."""

    def __init__(self, opened: Sequence[Incident]) -> None:
        super().__init__()
        self.opened = tuple(opened)


class ActionFinished(Message):
    """An action ran: keep its report and show its effect as soon as possible."""

    def __init__(self, report: Report) -> None:
        super().__init__()
        self.report = report
