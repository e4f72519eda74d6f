"""Keys and what the colours mean."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from screens.work import SaysWorkFailures

KEYS = (
    ("?", "this help"),
    ("/", "filter models and alerts by name; esc clears"),
    ("enter", "open the selected alert (or the selected model's first alert)"),
    ("tab", "move between the models and alerts tables"),
    ("t", "triage the selected alert with its runbook (resumes a walk in progress)"),
    ("r", "roll the selected model back to the version its alias held before"),
    ("f", "switch the selected model's serving to its rule-based fallback (or back)"),
    ("s", "silence the selected alert, or every alert of the selected model"),
    ("p", "pause the selected model's retraining pipeline (or resume it)"),
    ("a", "acknowledge the selected alert's incident (opens one if none): not a silence"),
    ("n", "add a note to the selected alert's incident"),
    ("i", "open the selected alert's incident and its timeline (opens one if none)"),
    ("I", "every open incident (A there: resolved ones too); enter opens one"),
    ("e", "export the incident: Markdown postmortem draft and JSON"),
    ("x", "incident: resolve it"),
    ("1-9", "runbook: answer a question / 1 plan and run the mitigation, 2 skip it"),
    ("b", "runbook: go back one step"),
    ("e", "runbook: the evidence of the highlighted step (enter too)"),
    ("R", "runbook: read the checks of the current path again (older readings kept)"),
    ("R", "refresh every source now"),
    (": or ctrl+p", "command palette"),
    ("y / d / u", "on a plan: apply / dry run (nothing changes) / undo once applied"),
    ("esc", "back"),
    ("q", "quit"),
)

#: Keys that change production; disabled in read-only mode.
MUTATION_KEYS = frozenset({"r", "f", "s", "p", "y / d / u"})

LEGEND = (
    ("green", "within objective / source ok"),
    ("bold red", "objective breached / alert firing / source down"),
    ("yellow", "source stale: its data is older than stale_after"),
    ("dim", "no data, or data from a source that is not ok"),
    ("bold magenta", "burn rate ≥ 1x: the error budget burns faster than the SLO allows"),
)


class HelpScreen(SaysWorkFailures, ModalScreen[None]):
    """Keys, and what the colours mean."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        read_only = bool(getattr(self.app, "read_only", False))
        for key, what in KEYS:
            if read_only and key in MUTATION_KEYS:
                keys.add_row(Text(key, style="dim strike"), Text(f"{what} (read-only)", "dim"))
            else:
                keys.add_row(key, what)
        legend = Table.grid(padding=(0, 2))
        legend.add_column(no_wrap=True)
        legend.add_column()
        for style, what in LEGEND:
            legend.add_row(Text("■■■", style=style), what)
        with VerticalScroll() as scroll:
            scroll.border_title = "mlconsole help"
            yield Static(keys)
            yield Static(Text("\nColours", style="bold"))
            yield Static(legend)
