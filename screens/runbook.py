"""The runbook screen: the path so far, the current step, and each step's evidence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.render.format import reading_age as age
from console.text import inert
from console.triage.runbook import ActionStep, AskStep, CheckStep, ConcludeStep
from console.triage.store import Evidence
from console.triage.walk import Pause, Walk
from console.triage.walk_state import WalkError
from screens.evidence import EvidenceScreen, evidence_line, series_values, when
from screens.footer import KeysFooter
from screens.front import Front, front_of
from screens.stack import ScreenHeader, while_on_stack
from screens.work import SaysWorkFailures

if TYPE_CHECKING:
    from console.actions.executor import Report

#: Seconds between two redraws of the evidence's ages.
AGE_TICK = 5.0
CAUSE_STYLE = {
    "data": "bold yellow",
    "model": "bold magenta",
    "infra": "bold cyan",
    "unknown": "bold",
}


class RunbookScreen(SaysWorkFailures, Screen[None]):
    """Walk one runbook for one alert, one key per decision."""

    CSS_PATH = "runbook.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("b", "back", "Step back"),
        Binding("R", "retry", "Re-run checks"),
        Binding("e", "evidence", "Evidence"),
        *(Binding(str(n), f"choose({n})", f"Choose {n}", show=False) for n in range(1, 10)),
    ]

    def __init__(self, walk: Walk) -> None:
        super().__init__()
        self.walk = walk
        self.pause: Pause | None = None
        self.busy = False

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        yield ScreenHeader()
        yield Static(id="rb-title")
        with Horizontal():
            yield OptionList(id="path")
            with VerticalScroll(id="current-pane"):
                yield Static(id="current")
        yield KeysFooter(compact=True)  # every key in view at 80 columns

    @while_on_stack
    def on_mount(self) -> None:
        runbook = self.walk.runbook
        labels = self.walk.record.labels
        self.query_one("#rb-title", Static).update(
            Text.assemble(
                (inert(runbook.title), "bold"),
                inert(f"  ·  {runbook.id} v{runbook.version}  ·  "),
                (inert(labels.get(self.front.config.model_label, "")), "bold"),
                f"  {inert(labels.get('alertname', ''))}",
            )
        )
        self.query_one("#path", OptionList).border_title = "Path so far (e or enter: evidence)"
        self.query_one("#current-pane").border_title = "Current step"
        self.refresh_view()
        self.set_interval(AGE_TICK, self._tick)
        read_at = self.walk.checks_read_at()
        recheck_after = self.front.config.runbooks.recheck_after
        if (
            not self.walk.concluded
            and read_at is not None
            and self.walk.clock() - read_at > recheck_after
        ):  # opened long after pre-triage: fresh values first, the old ones kept
            self.notify(
                f"Checks read {age(read_at, self.walk.clock())}: running them again",
                timeout=4,
            )
            self.recheck()
        else:
            self.run_walk()

    def _tick(self) -> None:
        """Evidence shows its age: redraw it as it grows older."""
        if not self.busy:
            self.refresh_view()

    # -- the walk ------------------------------------------------------------

    @work(exclusive=True, group="walk", exit_on_error=False)
    async def recheck(self) -> None:
        """Run the checks of the current path again (earlier readings stay as evidence)."""
        await self._drive(self.walk.recheck)

    @work(exclusive=True, group="walk", exit_on_error=False)
    async def run_walk(self) -> None:
        """Take every automatic step (checks run here, off the key path)."""
        await self._drive(self._advance)

    async def _advance(self, *, actor: str) -> Pause:
        triage = self.front.triage
        if triage is not None and await triage.settled(self.walk):
            self.refresh_view()  # pre-triage's evidence, before anything more runs
        return await self.walk.advance(actor=actor)

    async def _drive(self, move: Callable[..., Awaitable[Pause]]) -> None:
        self.busy = True
        self.refresh_view()
        try:
            self.pause = await move(actor=self.front_actor())
            if self.pause.reason == "error" and self.pause.step is not self.walk.current:
                self.notify(  # a re-read check failed; the walk stays where it was
                    f"check {self.pause.step.id} failed: {self.pause.error}", severity="error"
                )
        except WalkError as exc:
            self.notify(str(exc), severity="error")
        finally:
            self.busy = False
            self.refresh_view()

    def front_actor(self) -> str:
        triage = self.front.triage
        return triage.actor if triage is not None else self.walk.actor

    def action_choose(self, number: int) -> None:
        if self.busy:
            return
        step = self.walk.current
        try:
            if isinstance(step, AskStep):
                self.walk.answer(number, actor=self.front_actor())
            elif isinstance(step, ActionStep) and number == 1:
                self._run_mitigation(step)
                return
            elif isinstance(step, ActionStep) and number == 2:
                self.walk.decide_action(False, actor=self.front_actor())
            else:
                return
        except WalkError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.run_walk()

    def _run_mitigation(self, step: ActionStep) -> None:
        """Confirm goes through the one action path: plan, confirm, audit, verify.

        The step moves on once the action has run, with its outcome as evidence;
        cancelling the plan leaves the walk where it is.
        """
        from console.actions.contracts import ActionError
        from screens.action import start_action

        if self.front.read_only:
            self.notify("Read-only mode: mitigations are disabled; 2 skips", severity="warning")
            return
        try:
            name, action_params = self.walk.action_request()
        except (ActionError, WalkError) as exc:
            self.notify(str(exc), title="Cannot plan", severity="error")
            return

        def ran(report: Report) -> None:
            # The same evidence `runbook run` records: the outcome, whatever it was.
            try:
                moved = self.walk.record_action(report.as_dict(), actor=self.front_actor())
            except WalkError as exc:
                self.notify(str(exc), severity="warning")
                return
            if not moved:
                # Refused, failed or in conflict: the walk stays here, to retry (1) or skip (2).
                self.notify(f"{report.message}; the runbook waits", severity="warning")
                self.refresh_view()
                return
            self.run_walk()

        # Filed under the incident of the alert this walk is for; judged on its SLI.
        origin = self.walk.action_origin()
        self.run_worker(
            start_action(self.front, name, action_params, on_report=ran, origin=origin),
            exit_on_error=False,
            name="action-plan",
            description="plan a mitigation",
        )

    def action_back(self) -> None:
        if self.busy:
            return
        if self.walk.back(actor=self.front_actor()):
            self.pause = None
            self.refresh_view()
        else:
            self.notify("Already at the first step")

    def action_retry(self) -> None:
        """R: run the checks of the current path again."""
        if not self.busy:
            self.recheck()

    def action_evidence(self) -> None:
        """One key from anywhere on the screen: the evidence of the step highlighted
        in the path, else of the latest step."""
        evidence = self.walk.evidence
        if not evidence:
            self.notify("No evidence yet: no step has run")
            return
        highlighted = self.query_one("#path", OptionList).highlighted
        index = highlighted if highlighted is not None and highlighted < len(evidence) else -1
        self.app.push_screen(self._evidence_screen(evidence[index]))

    def _evidence_screen(self, item: Evidence) -> EvidenceScreen:
        return EvidenceScreen(item, self.walk.clock(), self.front.config.model_label)

    @on(OptionList.OptionSelected, "#path")
    def _open_evidence(self, event: OptionList.OptionSelected) -> None:
        evidence = self.walk.evidence
        index = event.option_index
        if 0 <= index < len(evidence):
            self.app.push_screen(self._evidence_screen(evidence[index]))

    # -- rendering -----------------------------------------------------------

    @while_on_stack  # also from a walk cancelled by the pop, and from an action's report
    def refresh_view(self) -> None:
        evidence = self.walk.evidence
        path = self.query_one("#path", OptionList)
        highlighted = path.highlighted
        path.clear_options()
        now = self.walk.clock()
        label = self.front.config.model_label
        newest = {e.step_id: i for i, e in enumerate(evidence) if e.kind == "check"}
        path.add_options(
            [
                Option(
                    evidence_line(
                        item,
                        now,
                        superseded=item.kind == "check" and newest[item.step_id] > i,
                        model_label=label,
                    )
                )
                for i, item in enumerate(evidence)
            ]
        )
        if highlighted is not None and highlighted < len(evidence):
            path.highlighted = highlighted
        self.query_one("#current", Static).update(self._current(evidence))

    def _current(self, evidence: list[Evidence]) -> RenderableType:
        step = self.walk.current
        parts: list[RenderableType] = [Text(inert(step.title or step.id), style="bold")]
        last_check = next((e for e in reversed(evidence) if e.kind == "check"), None)
        if self.busy:
            parts.append(Text("running checks…", style="italic yellow"))
        if isinstance(step, ConcludeStep) and self.walk.concluded:
            parts.append(
                Text.assemble("cause: ", (step.cause.upper(), CAUSE_STYLE.get(step.cause, "bold")))
            )
            parts.append(Text(inert(self.walk.record.summary, multiline=True)))
        elif isinstance(step, AskStep):
            parts.append(Text(inert(self.walk.text(step.question), multiline=True)))
            for number, choice in enumerate(step.choices, 1):
                parts.append(
                    Text.assemble(
                        (f"  {number} ", "bold reverse"), f" {inert(self.walk.text(choice.label))}"
                    )
                )
        elif isinstance(step, ActionStep):
            params = ", ".join(f"{k}={self.walk.text(v)}" for k, v in step.params.items())
            parts.append(Text(inert(f"Proposed mitigation: {step.action} ({params})")))
            parts.append(
                Text.assemble(
                    ("  1 ", "bold reverse"), " confirm   ", ("  2 ", "bold reverse"), " skip"
                )
            )
        elif isinstance(step, CheckStep) and self.pause and self.pause.reason == "error":
            parts.append(Text(f"check failed: {inert(self.pause.error)}", style="bold red"))
            parts.append(Text("R re-runs it", style="dim"))
        if last_check is not None:
            now = self.walk.clock()
            stale = now - last_check.at > self.front.config.runbooks.recheck_after
            parts.append(
                Text.assemble(
                    (f"\nlast check: {inert(last_check.step_id)}", "bold"),
                    (
                        f"  read {when(last_check.at)}, {age(last_check.at, now)}",
                        "bold yellow" if stale else "dim",
                    ),
                    ("  R reads it again" if stale else "", "yellow"),
                )
            )
            parts.append(
                Syntax(
                    inert(last_check.inputs.get("query", ""), multiline=True),
                    "promql",
                    word_wrap=True,
                    theme="ansi_dark",
                )
            )
            values = last_check.outputs.get("values") or []
            label = self.front.config.model_label
            shown = series_values(values, 5, 4, label) or "no series"
            parts.append(
                Text(
                    inert(
                        f"{last_check.inputs.get('condition', '')} → "
                        f"{last_check.decision} (values: {shown})"
                    ),
                    style="cyan",
                )
            )
        note = next((e for e in reversed(evidence) if e.kind == "note"), None)
        if note is not None and not self.walk.concluded:
            parts.append(Markdown(inert(note.outputs.get("text", ""), multiline=True)))
        return Group(*parts)
