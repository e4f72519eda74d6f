"""One alert in full: labels, annotations, generator URL, and its model's SLIs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from adapters.records import AlertRecord
from console.render.format import STATUS_STYLE, format_burn, format_objective, format_value
from console.sources.snapshot import Snapshot
from console.text import inert
from screens.footer import KeysFooter
from screens.front import Front, front_of
from screens.lines import SourceBar
from screens.render import alert_age, alert_state, utc
from screens.stack import ScreenHeader, while_on_stack
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    from console.triage.store import Evidence


class AlertDetailScreen(SaysWorkFailures, ModalScreen[None]):
    """Everything known about one alert, and the live SLIs of its model."""

    CSS_PATH = "alert_detail.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("q", "dismiss", "Back", show=False),
        Binding("t", "triage", "Triage (runbook)"),
    ]

    def __init__(self, alert: AlertRecord | None, model: str) -> None:
        super().__init__()
        self.alert = alert
        self.model = model
        #: Each part as last drawn: (what it was built from, what its height follows).
        self._drawn: dict[str, tuple[object, object]] = {}

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        yield ScreenHeader()
        yield SourceBar(id="sources")  # whether what is shown here is fresh
        with VerticalScroll(id="detail"):
            yield Static(id="alert")
            yield Static(id="triage")
            yield Static(id="slis")
        yield KeysFooter(compact=True)  # every key in view at 80 columns

    @while_on_stack
    def on_mount(self) -> None:
        self.query_one("#detail").border_title = (
            inert(f"{self.alert.name} · {self.model}", markup=True)
            if self.alert
            else inert(f"{self.model}: no alerts", markup=True)
        )
        self.query_one("#triage", Static).display = False
        self.show_snapshot(self.front.snapshot)
        self.set_interval(1.0, self._tick)
        if self.front.triage is not None and self.alert is not None:
            incident = self.front.incident_for_alert(self.alert)
            self._read_checks(self.alert, None if incident is None else incident.number)

    @work(thread=True, exclusive=True, group="alert-checks", exit_on_error=False)
    def _read_checks(self, alert: AlertRecord, incident: int | None) -> None:
        """The checks this firing's runbook walk has run (pre-triage runs them when the
        page arrives), read in a thread: opening an alert never waits on the store."""
        from console.triage.store import StoreError

        triage = self.front.triage
        assert triage is not None
        try:
            found = triage.firing_checks(alert, incident)
        except StoreError as exc:
            self.app.call_from_thread(
                self.notify, f"Runbook checks not read: {exc}", severity="warning"
            )
            return
        self.app.call_from_thread(self._show_checks, found)

    @while_on_stack  # closed while they were read: nothing to show them on
    def _show_checks(self, found: list[tuple[str, list[Evidence]]]) -> None:
        """Each check with its series: which feature drifted, and by how much."""
        from screens.evidence import evidence_line

        label = self.front.config.model_label
        now = self.front.now()
        lines: list[Text] = []
        for runbook_id, checks in found:
            lines.append(Text(f"\nchecks of runbook {inert(runbook_id)}", style="bold underline"))
            lines.extend(Text("  ") + evidence_line(e, now, model_label=label) for e in checks)
        shown = Text("\n").join(lines)
        triage = self.query_one("#triage", Static)
        triage.update(shown)
        triage.display = bool(shown.plain)

    @while_on_stack
    def show_snapshot(self, snapshot: Snapshot) -> None:
        """The alert and the model's SLIs as ``snapshot`` has them; a part whose inputs
        did not change is left as drawn, and only a change of the alert itself (its
        labels, annotations, end) may change the screen's layout."""
        now = self.front.now()
        self.query_one(SourceBar).show(snapshot, now)
        alert = self.alert
        if alert is not None:
            # Follow the alert in the new snapshot: its state may have changed.
            alert = self.alert = next(
                (a for a in snapshot.alerts if a.fingerprint == alert.fingerprint), alert
            )
            shown = (alert, alert_age(alert, now), self._ended(alert, now))
            self._show("alert", shown, lambda: self._alert_table(alert, now), layout=shown[::2])
        else:
            self._show(
                "alert",
                None,
                lambda: Text(f"No alerts for {inert(self.model)}.", style="green"),
                layout=None,
            )
        readings = tuple(
            None if r is None else (r.value, r.burn_rate, r.status)
            for r in (snapshot.reading(self.model, s.name) for s in snapshot.slis)
        )
        self._show("slis", (snapshot.slis, readings), lambda: self._sli_table(snapshot), layout=0)

    @while_on_stack
    def _tick(self) -> None:
        """Ages move even when no data comes in: stale data must look stale here too."""
        self.query_one(SourceBar).show(self.front.snapshot, self.front.now())

    def _show(
        self, part: str, shown: object, build: Callable[[], RenderableType], *, layout: object
    ) -> None:
        """Draw ``part`` (a Static's id) from ``build()`` unless what it is built from
        (``shown``) is as last drawn; lay the screen out again only the first time
        and when ``layout`` (what its height follows) changed."""
        last = self._drawn.get(part)
        if last is not None and last[0] == shown:
            return
        self._drawn[part] = (shown, layout)
        self.query_one(f"#{part}", Static).update(build(), layout=last is None or last[1] != layout)

    @staticmethod
    def _ended(alert: AlertRecord, now: float) -> bool:
        # A future endsAt is only a timeout.
        return alert.ends_at is not None and alert.ends_at.timestamp() <= now

    def action_triage(self) -> None:
        from screens.runbook_open import open_runbook_for

        if self.alert is None:
            self.notify("No alert to triage for this model")
            return
        alert = self.alert
        self.dismiss()
        open_runbook_for(self.front, alert)

    @staticmethod
    def _alert_table(alert: AlertRecord, now: float) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("state", alert_state(alert))
        table.add_row("started", f"{utc(alert.starts_at)} ({alert_age(alert, now)} ago)")
        if alert.ends_at is not None and AlertDetailScreen._ended(alert, now):
            table.add_row("ended", utc(alert.ends_at))
        table.add_row("fingerprint", Text(inert(alert.fingerprint)))
        table.add_row("generator", Text(inert(alert.generator_url) or "—", style="underline cyan"))
        if alert.silenced_by:
            table.add_row("silenced by", Text(inert(", ".join(alert.silenced_by))))
        table.add_row("", "")
        table.add_row(Text("labels", style="bold underline"), "")
        for key, value in sorted(alert.labels.items()):
            table.add_row(Text(f"  {inert(key)}"), Text(inert(value)))
        table.add_row(Text("annotations", style="bold underline"), "")
        for key, value in sorted(alert.annotations.items()):
            table.add_row(Text(f"  {inert(key)}"), Text(inert(value, multiline=True)))
        return table

    def _sli_table(self, snapshot: Snapshot) -> Table:
        title = f"SLIs of {inert(self.model, markup=True)}"
        table = Table(title=title, title_justify="left", expand=True)
        for column in ("SLI", "value", "objective", "burn", "status"):
            table.add_column(column)
        for sli in snapshot.slis:
            reading = snapshot.reading(self.model, sli.name)
            if reading is None:
                table.add_row(
                    Text(inert(sli.label)), "—", str(sli.objective), "—", Text("no data", "dim")
                )
                continue
            table.add_row(
                Text(inert(sli.label)),
                format_value(reading.value, sli.unit),
                format_objective(sli.objective.op, sli.objective.threshold, sli.unit),
                format_burn(reading.burn_rate),
                Text(reading.status.value, style=STATUS_STYLE[reading.status]),
            )
        return table
