"""The dashboard: models × SLIs, alerts grouped by model, and source health.

The screen is built in layers, each in its own module: the models table
(:mod:`screens.dashboard_models`), the alerts table under it
(:mod:`screens.dashboard_alerts`), what is drawn when (:mod:`screens.dashboard_view`),
and here the keys: the filter, triage, mitigations and incidents."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import DataTable, Input

from screens.dashboard_view import FILTER_QUIET, INPUT_FIRST_ROWS, DashboardView
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    from console.actions.origin import Origin
    from console.incidents.model import Incident


class DashboardScreen(SaysWorkFailures, DashboardView):
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
        #: The timer that redraws a big table once typing in the filter pauses.
        self._filter_timer: Timer | None = None

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
        from screens.runbook_open import open_runbook_for

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
        from screens.incident_acts import open_incident_for

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
        from screens.incident_acts import acknowledge

        self._with_incident(lambda incident: acknowledge(self.front, incident), open_one=True)

    def action_note(self) -> None:
        from screens.incident_acts import ask_note

        self._with_incident(lambda incident: ask_note(self.front, incident), open_one=False)

    def action_incident(self) -> None:
        """Open the selected alert's incident and its timeline (opening it if need be)."""
        from screens.incident import IncidentScreen

        def show(incident: Incident) -> None:
            self.app.push_screen(IncidentScreen(incident.number))

        self._with_incident(show, open_one=True)

    def action_incidents(self) -> None:
        """Every open incident, whatever is selected."""
        from screens.incidents import IncidentsScreen

        self.app.push_screen(IncidentsScreen())

    def action_export(self) -> None:
        from screens.incident_acts import export_incident

        self._with_incident(lambda incident: export_incident(self.front, incident), open_one=False)

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
