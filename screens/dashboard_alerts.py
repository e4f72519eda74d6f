"""The dashboard's alerts table: the alerts grouped by model, each with its open
incident, and the page that starts firing becoming the selection."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from rich.text import Text
from textual.widgets import DataTable

from adapters.base import AlertsAdapter
from adapters.records import AlertRecord
from console.sources.snapshot import Health, Snapshot
from console.text import CELL_LIMIT, inert
from screens.dashboard_models import ModelsPane, visible_rows
from screens.lines import Line
from screens.render import SEVERITY_STYLE, LiveCell, alert_age, alert_state, incident_cell
from screens.table import Table

if TYPE_CHECKING:
    from console.incidents.model import Incident


#: What an alert's row shows but for its age: the model's name (on its first alert
#: only), the alert, and its open incident.
_AlertKey: TypeAlias = tuple[str, AlertRecord, "Incident | None"]


class AlertsPane(ModelsPane):
    """The dashboard's alerts table (``#alerts``), over its models table."""

    def __init__(self) -> None:
        super().__init__()
        self._alert_rows: list[str] = []
        #: Each alert row as drawn: (what its cells but the age show, its age cell).
        self._alert_drawn: dict[str, tuple[_AlertKey, LiveCell]] = {}
        #: The alerts listed (:meth:`_alerts_listed`), and what they were listed from.
        self._alert_listed: list[tuple[str, _AlertKey]] = []
        self._alert_inputs: tuple[object, object, str] | None = None
        self._alert_age_width = -1

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
