"""The Textual app and the factory shared by the CLI, the TUI and the tests.

The app wires the poller to the screens: the poller runs as asyncio tasks in the
app's loop, and each new snapshot reaches the screens as a :class:`SnapshotUpdated`
message. Screens render snapshots; they never wait on the network. The app is built
in layers: its incidents (:mod:`screens.app_incidents`), how it connects
(:mod:`screens.app_connect`), and here keys, toasts, failures and quitting.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual import events
from textual.app import SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

if TYPE_CHECKING:
    # The runbook engine and the action path load in the start-up thread, after
    # the first paint.
    from textual.driver import Driver
    from textual.notifications import SeverityLevel

    from console.actions.executor import Report
    from console.actions.reconcile import Reconciliation
    from console.session import Session
    from console.triage.triage import Triage

from adapters.base import Adapter
from console import __version__
from console.config.models import Config
from console.keys_first import KeysFirst
from console.render import fitting
from console.sources.build import build_adapters
from console.sources.poller import Poller
from console.sources.snapshot import Snapshot
from console.sources.state import initial_snapshot
from console.text import inert
from screens.app_connect import Connecting, SnapshotUpdated
from screens.front import ActionFinished, Front
from screens.work import SaysWorkFailures, WorkFailed

#: The collector's first threshold while the console runs (Python's is 700). A refresh
#: at a thousand models makes tens of thousands of objects that live a refresh or two:
#: at 700 they were promoted, and a full collection, which holds every thread for as
#: long as it scans every object (0.2-0.5 s there), ran every second. At 10,000 most
#: die young, and a young collection stays short.
GC_YOUNG_THRESHOLD = 10_000
#: How long a thread holds the interpreter before another may take it, while the
#: console runs (Python's is 5 ms). The poller's state thread applies and surveys
#: thousands of readings; each time the UI loop wakes (a key, a frame, a socket) it
#: waits for the interpreter, up to this long, several times per key.
SWITCH_INTERVAL = 0.001


def watch_keys(keys_first: KeysFirst, driver: Driver) -> None:
    """Tell ``keys_first`` of each key as ``driver`` (Textual's, reading the terminal in
    a thread of its own) sends it to the app, before the app's loop gets to it: a key
    queued behind a frame must not also wait behind a parse."""
    send = driver.send_message

    def announce(message: Message) -> None:
        if isinstance(message, events.Key):
            keys_first.key_in()
        send(message)

    driver.send_message = announce  # type: ignore[method-assign]


REPEAT_QUIET = 30.0
"""Seconds in which the same background failure is said once."""


class MLConsoleApp(SaysWorkFailures, Connecting):
    """mlconsole's terminal UI."""

    TITLE = "mlconsole"
    SUB_TITLE = __version__
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("R", "refresh", "Refresh", show=False),
        # k9s's habit, on every screen; a text box takes ':' as text first.
        Binding("colon", "palette", "Palette", show=False),
    ]

    def __init__(
        self,
        config: Config,
        poller: Poller | Callable[[], Poller] | None,
        *,
        clock: Callable[[], float] | None = None,
        triage: Triage | None = None,
        read_only: bool = False,
        actor: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.triage = triage
        #: Whether the triage's store is the app's to close (not the session's, lent).
        self._owns_triage = False
        self.read_only = read_only or config.actions.read_only
        self.actor = actor
        #: What this front end opened once (the sources lent by the poller, the store's
        #: parts, the audit log) and closes once; None until opened, in a thread.
        self.session: Session | None = None
        #: Why no mitigation can run (the audit log could not be opened), if so.
        self.actions_error: str | None = None
        #: Actions applied in this session, newest last.
        self.reports: list[Report] = []
        #: Intents found in doubt at start, and what reconciling them found.
        self.reconciled: list[Reconciliation] = []
        self._gc_thresholds = gc.get_threshold()
        self._switch_interval = sys.getswitchinterval()
        #: Actions being applied or verified right now; quitting then asks twice.
        self.applying = 0
        #: Background work that failed (when, what and why), newest last.
        self.work_failures: deque[tuple[float, str]] = deque(maxlen=100)
        #: Each failure said, when it was last said and how often it came since.
        self._failures_said: dict[str, tuple[float, int]] = {}
        self._quit_asked_at = -1e9
        #: Each reading's widths in the models table, measured where it is made.
        self.widths = fitting.WidthBook()
        #: When the last key came in (time.monotonic): screens put input first.
        self.last_key_at = -math.inf
        #: The poller's state thread steps aside while a key is answered.
        self.keys_first = KeysFirst()
        self._key_heard: events.Key | None = None
        # A factory defers building the adapters (and importing their HTTP
        # clients, ~0.1 s) to a thread after the first paint.
        self._poller_factory = None if isinstance(poller, Poller) else poller
        self.poller = poller if isinstance(poller, Poller) else None
        self.snapshot = self.poller.snapshot if self.poller else initial_snapshot(config)
        self.clock = time.time if clock is None else clock  # tests freeze time
        self.started_at = time.perf_counter()
        self.first_paint: float | None = None
        self.theme = config.ui.theme

    @property
    def acting(self) -> Session | None:
        """The session when mitigations can run through it: it was opened to act and
        its audit log is open."""
        space = self.session
        if space is None or space.audit is None or space.audit_mode != "create":
            return None
        return space

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.last_key_at = time.monotonic()
            # Textual hands the app a key twice: as it comes in, and as it bubbles up
            # from the focused widget.
            if event is not self._key_heard:
                self._key_heard = event
                if self.keys_first.idle:  # not heard from the driver (a Pilot's key)
                    self.keys_first.key_in()
                self.call_after_refresh(self.keys_first.key_shown)
        await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast, whatever its text holds: messages quote model names, alert
        text and source errors, so they are made inert and never read as markup."""
        super().notify(
            inert(message, multiline=True),
            title=inert(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def on_work_failed(self, message: WorkFailed) -> None:
        """A worker failed, the app's or a screen's (:mod:`screens.work`): kept in
        :attr:`work_failures`, never dropped, and said on screen. The same failure again
        within :data:`REPEAT_QUIET` seconds is kept and counted, not said again: a store
        that fails fails every worker that touches it (500 of them in a page of 500
        alerts), and one toast says it."""
        error = f"{message.name}: {message.error}"
        now = time.monotonic()
        self.work_failures.append((time.time(), error))
        self.log.error(f"worker failed: {error}")
        said_at, repeats = self._failures_said.get(error, (-math.inf, 0))
        if now - said_at < REPEAT_QUIET:
            self._failures_said[error] = (said_at, repeats + 1)
            return
        if len(self._failures_said) > 1000:
            self._failures_said.clear()
        self._failures_said[error] = (now, 0)
        if repeats:
            error += f" (again; {repeats} more since it was last said)"
        self.notify(error, title="Background work failed", severity="error", timeout=15)

    def on_mount(self) -> None:
        from screens.dashboard import DashboardScreen

        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *self._gc_thresholds[1:])
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        if self._driver is not None:
            watch_keys(self.keys_first, self._driver)
        self.push_screen(DashboardScreen())
        if self.poller is not None:  # given ready-made: poll from the start
            self._start_poller(self.poller)

    async def action_quit(self) -> None:
        """Quit; while an action is applied or verified, only when asked twice."""
        now = time.monotonic()
        if self.applying and now - self._quit_asked_at > 5:
            self._quit_asked_at = now
            self.notify(
                "An action is being applied or verified. Press q again to quit anyway: "
                "an unfinished action stays in the audit log and is reconciled at the next "
                "start.",
                severity="warning",
                timeout=5,
            )
            return
        self.exit()

    def on_action_finished(self, message: ActionFinished) -> None:
        """An action ran: keep its report and show its effect as soon as possible."""
        self.reports.append(message.report)
        if self.poller is not None:
            self.poller.refresh_now()

    def on_ready(self) -> None:
        self.first_paint = time.perf_counter() - self.started_at
        self.log.info(f"first paint after {self.first_paint:.3f}s")
        self._connect()

    async def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_thresholds)
        sys.setswitchinterval(self._switch_interval)
        if self.poller is not None:
            await self.poller.stop()
        if self.session is not None:
            self.session.owns_adapters = False  # the poller closed them
            await self.session.close()
        if self.triage is not None and self._owns_triage:
            # Closed, not left to the collector: the process's exit skips collecting
            # what the app held (console.cli.main), so an open connection would keep its
            # write-ahead log uncheckpointed until the next start.
            self.triage.store.close()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Show ``snapshot`` now (the poller's path, and the tests')."""
        self.snapshot = snapshot
        self._pretriage(snapshot)
        self._sync_incidents(snapshot)
        for screen in self.screen_stack:
            # A screen pushed but not mounted yet shows the app's snapshot when it mounts.
            if hasattr(screen, "show_snapshot") and screen.is_mounted:
                screen.show_snapshot(snapshot)

    def on_snapshot_updated(self, message: SnapshotUpdated) -> None:
        self.apply_snapshot(message.snapshot)

    def action_refresh(self) -> None:
        if self.poller is not None:
            self.poller.refresh_now()
            self.notify("Refreshing every source", timeout=2)

    def action_palette(self) -> None:
        """``:``: the command palette (a name of its own, so the footer's ``^p palette``
        hint, which follows the ``command_palette`` action, stays as it is)."""
        self.action_command_palette()

    def action_help(self) -> None:
        from screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Refresh now", "Refresh every source immediately (R)", self.action_refresh
        )
        yield SystemCommand("Help", "Show keys and what the colours mean (?)", self.action_help)
        # The screen's own actions, as its keys would run them (on what is selected);
        # what check_action refuses (mutations when read-only) is not offered.
        for action, title, text in getattr(screen, "PALETTE", ()):
            if screen.check_action(action, ()) is not False:
                yield SystemCommand(title, text, getattr(screen, f"action_{action}"))


def _satisfies_front(app: MLConsoleApp) -> Front:
    """Never called: mypy checks here that the app is the :class:`Front` every screen
    reads."""
    return app


def create_app(
    config: Config,
    *,
    adapters: dict[str, Adapter] | None = None,
    poll: bool = True,
    clock: Callable[[], float] | None = None,
    triage: Triage | None = None,
    read_only: bool = False,
    actor: str | None = None,
) -> MLConsoleApp:
    """Build the app as the CLI does. ``poll=False`` leaves snapshots to the caller."""
    options = {"clock": clock, "triage": triage, "read_only": read_only, "actor": actor}
    if not poll:
        return MLConsoleApp(config, None, **options)  # type: ignore[arg-type]
    if adapters is not None:
        return MLConsoleApp(config, Poller(config, adapters), **options)  # type: ignore[arg-type]

    def connect() -> Poller:
        built, failures = build_adapters(config)
        return Poller(config, built, load_errors=failures)

    return MLConsoleApp(config, connect, **options)  # type: ignore[arg-type]
