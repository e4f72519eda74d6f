"""A runbook step's evidence: one line of it (the path so far, an alert's detail),
and all of it on a screen of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.render.format import reading_age as age
from console.text import inert
from console.triage.store import Evidence
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    pass

DECISION_MARK = {
    "true": "✓",
    "false": "✗",
    "error": "!",
    "back": "↩",
    "shown": "·",
    "confirmed": "▶",
    "skipped": "⤼",
}


def when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


def series_values(values: object, limit: int, digits: int, model_label: str) -> str:
    """A check's series as ``feature=amount 0.47, ...``: each value with the labels that
    tell the series apart (which feature drifted), not only the bare number."""
    if not isinstance(values, list):
        return ""
    parts = []
    for value in values[:limit]:
        labels = value.get("labels") if isinstance(value, dict) else None
        named = " ".join(
            f"{k}={v}" for k, v in (labels or {}).items() if k not in ("__name__", model_label)
        )
        number = value.get("value") if isinstance(value, dict) else None
        shown = f"{number:.{digits}g}" if isinstance(number, int | float) else str(number)
        parts.append(f"{named} {shown}" if named else shown)
    more = len(values) - limit
    return ", ".join(parts) + (f", +{more} more" if more > 0 else "")


def evidence_line(
    item: Evidence, now: float, *, superseded: bool = False, model_label: str = "model"
) -> Text:
    """One step of the path: its decision, its values (with the labels that tell its
    series apart) and how old they are.
    ``superseded``: a later reading of the same check exists (kept as evidence)."""
    mark = DECISION_MARK.get(item.decision.split(":")[0], "→")
    if item.outputs.get("recheck"):
        mark = "↻"
    text = Text.assemble(
        (f"{mark} ", "bold"),
        (inert(item.step_id), "bold"),
        f" {inert(item.kind)} ",
        (inert(item.decision), "cyan"),
    )
    shown = series_values(item.outputs.get("values"), 3, 3, model_label)
    if shown:
        text.append("  " + inert(shown), style="dim")
    text.append(f"  {age(item.at, now)}", style="dim")
    if superseded:
        text.append(" (earlier reading)", style="dim italic")
        text.stylize("dim")
    return text


class EvidenceScreen(SaysWorkFailures, ModalScreen[None]):
    """One step's evidence: inputs, outputs, the decision, who took it and when."""

    DEFAULT_CSS = """
    EvidenceScreen { align: center middle; }
    EvidenceScreen > VerticalScroll {
        width: 90%; height: auto; max-height: 85%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "dismiss", "Back")]

    def __init__(self, item: Evidence, now: float, model_label: str = "model") -> None:
        super().__init__()
        self.item = item
        self.now = now
        self.model_label = model_label

    def compose(self) -> ComposeResult:
        item = self.item
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("step", Text(inert(f"{item.step_id} ({item.kind})")))
        table.add_row("decision", Text(inert(item.decision)))
        table.add_row("by", Text(inert(item.actor)))
        table.add_row("at", f"{when(item.at)} ({age(item.at, self.now)})")
        series = series_values(item.outputs.get("values"), 10, 4, self.model_label)
        if series:
            table.add_row("series", Text(inert(series)))
        with VerticalScroll() as scroll:
            scroll.border_title = inert(f"Evidence · {item.step_id}", markup=True)
            yield Static(table)
            yield Static(Text("\ninputs", style="bold underline"))
            yield Static(Syntax(json.dumps(item.inputs, indent=2), "json", word_wrap=True))
            yield Static(Text("outputs", style="bold underline"))
            yield Static(Syntax(json.dumps(item.outputs, indent=2), "json", word_wrap=True))
