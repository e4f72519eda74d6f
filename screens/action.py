"""Mitigation screens: the plan to confirm, the outcome, the SLI watch, the undo.

One modal carries an action from its plan to its verdict. The work itself runs
in :class:`console.actions.executor.Executor` (the same path as the CLI); this screen
only shows it and asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from console import mitigation
from console.actions.contracts import Action, Plan
from console.actions.executor import Report
from console.actions.origin import Origin
from console.actions.verify import Recovery
from console.mitigation import Proposal
from console.text import inert
from screens.front import ActionFinished, Front, front_of
from screens.stack import on_stack, while_on_stack
from screens.work import SaysWorkFailures

CSS = """
ActionScreen, SilenceScreen { align: center middle; }
ActionScreen > Vertical, SilenceScreen > Vertical {
    width: 96; max-width: 100%; height: auto; max-height: 90%;
    border: thick $warning; background: $surface; padding: 0 1;
}
ActionScreen #plan { height: auto; max-height: 20; }
ActionScreen #status { height: auto; margin-top: 1; }
ActionScreen #keys, SilenceScreen #keys { height: 1; margin-top: 1; color: $text-muted; }
SilenceScreen Input { margin-bottom: 1; }
"""


ReportCallback = Callable[[Report], None]


async def start_action(
    app: Front,
    name: str,
    params: Mapping[str, Any],
    on_report: ReportCallback | None = None,
    origin: Origin | None = None,
) -> None:
    """Propose ``name`` (:func:`console.mitigation.propose`) and, if it can be planned,
    show the plan for confirmation.

    ``origin`` says where it was taken from (the selected alert, a runbook step): it
    decides the incident the action is filed under and the SLI that judges it.
    ``on_report`` hears the outcome once the action has run (a runbook step
    records it as its evidence); it is not called when the responder cancels.
    """
    space = app.acting
    if app.read_only:
        app.notify("Read-only mode: mitigations are disabled", severity="warning")
        return
    if space is None:
        why = app.actions_error or "the audit log is not open yet"
        app.notify(f"Cannot act: {why}", severity="error", timeout=10)
        return
    app.notify(f"Planning {name}…", timeout=2)
    try:
        proposal = await mitigation.propose(space, name, params, origin)
    except mitigation.MitigationStopped as exc:
        if exc.stop is mitigation.Stop.REFUSED:
            app.notify(str(exc), severity="warning")
        elif exc.stop is mitigation.Stop.CANNOT_PLAN:
            app.notify(str(exc), title="Cannot plan", severity="warning", timeout=10)
        else:
            app.notify(str(exc), title="Cannot plan", severity="error", timeout=15)
        return
    except Exception as exc:  # a plug-in's bug must not kill the worker silently
        app.notify(
            space.ctx.redact(f"{exc.__class__.__name__}: {exc}"),
            title="Cannot plan",
            severity="error",
            timeout=15,
        )
        return
    app.push_screen(ActionScreen(proposal, on_report))


class ActionScreen(SaysWorkFailures, ModalScreen[None]):
    """Plan (before → after) → confirm → outcome → SLI watch → verdict / undo."""

    DEFAULT_CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "apply", "Apply"),
        Binding("d", "dry_run", "Dry run"),
        Binding("u", "undo", "Undo", show=False),
        Binding("escape,n", "close", "Cancel"),
    ]

    def __init__(self, proposal: Proposal, on_report: ReportCallback | None = None) -> None:
        super().__init__()
        self.proposal = proposal
        """Decided with the plan, shown before ``y``, and kept: what was shown is done."""
        self.on_report = on_report
        self.stage = "confirm"  # confirm → applying → watching → done
        self.report: Report | None = None
        self.undo: tuple[Action, Plan] | None = None
        self.recovery: Recovery | None = None

    @property
    def plan(self) -> Plan:
        return self.proposal.plan

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            title = self.proposal.action.title + (f" {self.plan.model}" if self.plan.model else "")
            yield Label(Text(inert(title), style="bold"))
            with VerticalScroll(id="plan"):
                yield Static(self._plan_text(), id="plan-text")
            yield Static("", id="status")
            yield Static("y apply · d dry run (nothing changes) · esc cancel", id="keys")

    def _plan_text(self) -> Text:
        text = Text()
        for change in self.plan.changes:
            text.append(f"{inert(change.target)}: ", style="bold")
            text.append(inert(change.before), style="red")
            text.append(" → ")
            text.append(inert(change.after), style="bold green")
            text.append("\n")
            for detail in change.details:
                text.append(f"  {inert(detail)}\n", style="dim")
        for note in self.plan.notes:
            text.append(f"{inert(note)}\n", style="italic")
        space = self.front.acting
        if space is not None:
            text.append(
                f"as {inert(space.ctx.actor)}; written to the audit log before and after\n", "dim"
            )
        filing = self.proposal.filing
        text.append(inert(filing.line()), "bold" if filing.incident else "dim")
        if self.proposal.watches:
            text.append(
                f"\nVerification will watch {inert(self.proposal.target.describe())}", "dim"
            )
        return text

    @while_on_stack  # the watch outlives a closed screen
    def _status(self, text: Text | str) -> None:
        self.query_one("#status", Static).update(text)

    @while_on_stack
    def _keys(self, text: str) -> None:
        self.query_one("#keys", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("apply", "dry_run"):
            return self.stage == "confirm"
        if action == "undo":
            return self.stage == "done" and self.undo is not None
        return True

    def action_close(self) -> None:
        if self.stage == "applying":
            self.notify("Wait: the action is being applied and audited")
            return
        self.dismiss(None)

    def action_dry_run(self) -> None:
        self.notify(f"Dry run: {self.plan.summary()}; nothing changed", timeout=6)
        self.dismiss(None)

    def action_apply(self) -> None:
        self.stage = "applying"
        self.front.applying += 1
        self.refresh_bindings()
        self._status(Text("Applying… (intent audited first)", style="bold yellow"))
        self._keys("applying…")
        # The app owns the work, so closing this screen never cuts an audit short.
        self.app.run_worker(
            self._apply(),
            group="action",
            exit_on_error=False,
            name="action",
            description="apply a mitigation",
        )

    async def _apply(self) -> None:
        try:
            await self._apply_and_watch()
        except Exception as exc:
            # Said by the app as a failed worker; this screen must not stay "applying"
            # (its Esc would refuse to close it forever).
            if self.stage in ("applying", "watching"):
                self._stopped(f"FAILED: {inert(exc.__class__.__name__)}: {inert(exc)}")
            raise
        finally:
            self.front.applying -= 1

    def _stopped(self, text: str) -> None:
        self.stage = "done"
        self._status(Text(text, style="bold red"))
        self._keys("esc close")
        self.refresh_bindings()

    async def _apply_and_watch(self) -> None:
        space = self.front.acting
        assert space is not None
        try:
            applied = await mitigation.apply(
                space, self.proposal, on_wait=lambda text: self._status(Text(text, "yellow"))
            )
        except mitigation.MitigationStopped as exc:
            self._stopped(
                f"NOT RUN: {inert(exc)}" if exc.stop is mitigation.Stop.AUDIT else inert(exc)
            )
            return
        report = self.report = applied.report
        self.app.post_message(ActionFinished(report))
        if self.on_report is not None:
            self.on_report(report)
        result = applied.result
        style = "bold green" if result is mitigation.Result.APPLIED else "bold red"
        lines = Text(inert(report.message), style=style)
        if result is mitigation.Result.UNCONFIRMED:
            lines.append(f"\n{mitigation.UNCONFIRMED}", style="bold red")
        if report.audit_warning:
            lines.append(f"\nWARNING: {inert(report.audit_warning)}", style="bold red")
        if not applied.watches:
            self.undo = await mitigation.undo_of(applied)
            self.stage = "done"
            self._status(lines)
            self._done_keys()
            return
        self.stage = "watching"
        self.refresh_bindings()
        self._keys("watching the SLI… esc hides this (the watch goes on)")
        sli = self.proposal.target.sli

        def progress(value: float | None, elapsed: float, total: float) -> None:
            shown = "no data" if value is None else f"{value:.4g}"
            status = lines.copy()
            status.append(f"\nWatching {inert(sli)}: {shown}  ({elapsed:.0f}s of {total:g}s)")
            self._status(status)

        verdict = await mitigation.watch(space, applied, on_read=progress)
        recovery = self.recovery = verdict.recovery
        if verdict.warning:
            lines.append(f"\n{inert(verdict.warning)}", style="red")
        lines.append(
            "\n" + inert(recovery.line()), style="bold green" if recovery.recovered else "bold red"
        )
        self.front.notify(
            recovery.line(),
            severity="information" if recovery.recovered else "error",
            timeout=15,
        )
        self.undo = verdict.undo
        self.stage = "done"
        if not on_stack(self) and self.undo is not None:
            # The responder closed this screen while it watched: bring the undo back.
            self.front.push_screen(self._undo_screen())
        if self.undo is not None:
            lines.append(f"\nUndo plan: {inert(self.undo[1].summary())}", style="bold")
        self._status(lines)
        self._done_keys()

    @while_on_stack
    def _done_keys(self) -> None:
        self._keys("u undo · esc close" if self.undo is not None else "esc close")
        self.refresh_bindings()

    def action_undo(self) -> None:
        if self.undo is None:
            return
        self.dismiss(None)
        self.front.push_screen(self._undo_screen())

    def _undo_screen(self) -> ActionScreen:
        """The undo's plan, filed and judged as the action it undoes."""
        assert self.undo is not None
        action, plan = self.undo
        undo = replace(self.proposal, action=action, plan=plan, watches=plan.watch_sli)
        return ActionScreen(undo)


class SilenceScreen(SaysWorkFailures, ModalScreen[None]):
    """Ask for a silence's duration and comment, then show its plan."""

    DEFAULT_CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel")]

    def __init__(
        self,
        matchers: list[dict[str, object]],
        model: str,
        what: str,
        *,
        origin: Origin | None = None,
    ) -> None:
        super().__init__()
        self.matchers = matchers
        self.model = model
        self.what = what
        self.origin = origin

    @property
    def front(self) -> Front:
        return front_of(self.app)

    def compose(self) -> ComposeResult:
        from console.actions.silence import matchers_text
        from console.config.models import SILENCE_RANGE, format_duration

        default = self.front.config.actions.silence_duration
        with Vertical():
            yield Label(Text(inert(f"Silence {self.what}"), style="bold"))
            yield Static(Text(inert(matchers_text(self.matchers)), style="dim"))
            yield Label(f"Duration (e.g. 30m, 2h; {SILENCE_RANGE})")
            yield Input(value=format_duration(default), id="duration")
            yield Label("Comment (required: why, for whoever looks next)")
            yield Input(placeholder="investigating bad deploy", id="comment")
            yield Static("enter continue to the plan · esc cancel", id="keys")

    @while_on_stack
    def on_mount(self) -> None:
        # Duration first, its default selected: what is typed first replaces it, and
        # enter moves on to the comment.
        self.query_one("#duration", Input).focus()

    @on(Input.Submitted)
    async def _submitted(self, event: Input.Submitted) -> None:
        from console.config.models import parse_silence_duration

        comment_box = self.query_one("#comment", Input)
        if event.input.id == "duration" and not comment_box.value.strip():
            comment_box.focus()  # the next field, not an error yet
            return
        try:
            duration = parse_silence_duration(self.query_one("#duration", Input).value)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            self.query_one("#duration", Input).focus()
            return
        comment = self.query_one("#comment", Input).value.strip()
        if not comment:
            self.notify("A comment is required: say why", severity="warning")
            self.query_one("#comment", Input).focus()
            return
        self.dismiss(None)
        await start_action(
            self.front,
            "silence",
            {
                "matchers": self.matchers,
                "duration": duration,
                "comment": comment,
                "model": self.model,
            },
            origin=self.origin,
        )
