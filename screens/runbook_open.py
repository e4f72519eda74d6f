"""Opening an alert's runbook walk: resumed if the firing has one, with a picker when
several runbooks match."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from adapters.records import AlertRecord
from console.text import inert
from console.triage.runbook import Runbook
from console.triage.walk_state import WalkError
from screens.front import Front
from screens.runbook import RunbookScreen
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    pass


class RunbookPicker(SaysWorkFailures, ModalScreen[str | None]):
    """Several runbooks match an alert: pick one."""

    DEFAULT_CSS = """
    RunbookPicker { align: center middle; }
    RunbookPicker > OptionList { width: 70; height: auto; max-height: 20; border: round $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, runbooks: list[Runbook]) -> None:
        super().__init__()
        self.runbooks = runbooks

    def compose(self) -> ComposeResult:
        options = OptionList(
            *(Option(Text(inert(f"{rb.title}  ({rb.id})")), id=rb.id) for rb in self.runbooks)
        )
        options.border_title = "Several runbooks match: pick one"
        yield options

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def open_runbook_for(app: Front, alert: AlertRecord) -> None:
    """Open this firing's runbook walk (resumed if it has one), picking if several match."""
    triage = app.triage
    if triage is None:
        app.notify("Runbooks are not available yet (no store)", severity="warning")
        return
    matched = triage.catalog.for_alert(alert.labels, alert.annotations)
    if not matched:
        app.notify(
            f"No runbook matches {alert.name}; see `mlconsole runbook validate`", severity="warning"
        )
        return

    incident = app.incident_for_alert(alert)

    def open_walk(runbook_id: str | None) -> None:
        if runbook_id is None:
            return
        try:
            walk = triage.walk_for(
                triage.runbooks[runbook_id], alert, None if incident is None else incident.number
            )
        except WalkError as exc:
            app.notify(str(exc), severity="error")
            return
        app.push_screen(RunbookScreen(walk))

    if len(matched) == 1:
        open_walk(matched[0].id)
    else:
        app.push_screen(RunbookPicker(matched), open_walk)
