"""``mlconsole runbook run``: walk a runbook without the TUI.

Checks run against the configured metrics source; each ``ask`` (and
``action``) step takes its answer from ``--answer STEP=CHOICE``, and the walk
stops at the first step with no answer. An action step answered ``confirm``
runs its mitigation the way the action commands do (plan, lock, intent, check,
apply, read back, result, verify), and its outcome becomes the step's
evidence; one that is not applied stops the walk at that step. The evidence and
the conclusion, if one was reached, are printed and kept in the store.

Exit codes: 0 concluded, 1 stopped at a step that needs an answer, 2 usage,
config or runbook error, 3 a check could not run (a source unreachable), or an
action step's mitigation could not be planned or applied, 4 an action step was
refused (read-only mode, the world changed since its plan, its target stayed
locked) or its read-back found another writer's change, 5 the audit log cannot
be written (the action step did not run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from console.cli.common import ExitCode, config_for
from console.text import inert

CONFIRM = {"confirm", "confirmed", "yes", "y", "1"}
SKIP = {"skip", "skipped", "no", "n", "2"}


def add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="walk a runbook non-interactively, answering its questions from --answer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("runbook", metavar="RUNBOOK", help="runbook id, or a path to a YAML file")
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--alert", metavar="FINGERPRINT", help="take the labels of this alert from Alertmanager"
    )
    target.add_argument("--labels", metavar="K=V", nargs="+", help="alert labels, e.g. model=x")
    run.add_argument(
        "--answer",
        metavar="STEP=CHOICE",
        action="append",
        default=[],
        help="answer step STEP with CHOICE (number or label; for an action "
        "step: confirm or skip); repeatable",
    )
    run.add_argument("--json", action="store_true", help="print JSON")
    # Also accepted after the command, as the action commands take it.
    run.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS,
        help="refuse action steps (exit 4)",
    )
    run.add_argument(
        "--actor", metavar="NAME", default=argparse.SUPPRESS, help="who the audit log names"
    )
    run.add_argument("--store", metavar="PATH", help="store file (default: from the config)")
    run.set_defaults(func=cmd_run)


def _pairs(items: list[str], what: str) -> dict[str, str] | str:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return f"{what} {item!r} is not KEY=VALUE"
        out[key.strip()] = value.strip()
    return out


def cmd_run(args: argparse.Namespace) -> int:

    config = config_for(args)
    answers = _pairs(args.answer, "--answer")
    labels = _pairs(args.labels or [], "--labels")
    for parsed in (answers, labels):
        if isinstance(parsed, str):
            print(f"mlconsole runbook run: {inert(parsed)}", file=sys.stderr)
            return ExitCode.USAGE
    assert isinstance(answers, dict) and isinstance(labels, dict)
    import asyncio

    try:
        return asyncio.run(_run(args, config, labels, answers))
    except _UsageError as exc:
        print(f"mlconsole runbook run: {inert(exc)}", file=sys.stderr)
        return ExitCode.USAGE


class _UsageError(Exception):
    pass


async def _run(
    args: argparse.Namespace, config: Any, labels: dict[str, str], answers: dict[str, str]
) -> int:
    from adapters.base import AdapterError, AlertsAdapter, MetricsAdapter
    from console.config.actor import resolve_actor
    from console.config.paths import store_path
    from console.sources.build import build_adapters
    from console.triage.catalog import Catalog, runbook_dirs
    from console.triage.store import Store, StoreError
    from console.triage.validate import validate_runbook_file
    from console.triage.walk import Walk
    from console.triage.walk_state import WalkError

    path = Path(args.runbook)
    if path.suffix in (".yaml", ".yml") or path.exists():
        loaded, issues = validate_runbook_file(path)
        if loaded is None:
            raise _UsageError("\n".join(str(i) for i in issues))
        runbook = loaded
    else:
        catalog = Catalog.load(runbook_dirs(config))
        if args.runbook not in catalog.runbooks:
            known = ", ".join(sorted(catalog.runbooks)) or "none"
            raise _UsageError(f"no runbook {args.runbook!r} (known: {known})")
        runbook = catalog.runbooks[args.runbook]

    adapters, failures = build_adapters(config)
    metrics = next((a for a in adapters.values() if isinstance(a, MetricsAdapter)), None)
    try:
        fingerprint = None
        firing_at = None
        if args.alert:
            fingerprint = args.alert
            alerts_sources = [a for a in adapters.values() if isinstance(a, AlertsAdapter)]
            if not alerts_sources:
                raise _UsageError("--alert needs an alerts source (alertmanager) in the config")
            try:
                found = [
                    a for a in await alerts_sources[0].alerts() if a.fingerprint == fingerprint
                ]
            except AdapterError as exc:
                print(f"mlconsole runbook run: {inert(exc)}", file=sys.stderr)
                return ExitCode.CHECK_FAILED
            if not found:
                raise _UsageError(f"no alert with fingerprint {fingerprint!r}")
            labels = dict(found[0].labels)
            firing_at = found[0].starts_at.timestamp()
        try:
            store = Store(Path(args.store) if args.store else store_path(config))
        except StoreError as exc:
            raise _UsageError(str(exc)) from None
        try:
            walk = Walk.start(
                runbook,
                labels,
                store,
                metrics,
                alert_fingerprint=fingerprint,
                firing_at=firing_at,
                # The evidence names who answered, as the audit does.
                actor=resolve_actor(config, getattr(args, "actor", None)),
            )
            pause = await walk.advance()
            action_exit: int | None = None
            while pause.reason in ("ask", "action") and pause.step.id in answers:
                answer = answers[pause.step.id]
                if pause.reason == "ask":
                    walk.answer(answer)
                elif answer.lower() in CONFIRM:
                    action_exit = await _run_action_step(args, config, walk)
                    if action_exit is not None:
                        break  # not applied: the walk waits at the step
                elif answer.lower() in SKIP:
                    walk.decide_action(False)
                else:
                    raise WalkError(f"answer an action step with confirm or skip, not {answer!r}")
                pause = await walk.advance()
        except WalkError as exc:
            raise _UsageError(str(exc)) from None
        result = walk.as_dict()
        result["stopped"] = {"step": pause.step.id, "reason": pause.reason, "error": pause.error}
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        else:
            _print(result, walk, pause)
        store.close()
    finally:
        for adapter in adapters.values():
            await adapter.aclose()
    if failures:
        for message in failures.values():
            print(f"warning: {inert(message)}", file=sys.stderr)
    if action_exit is not None:
        return action_exit
    return {"concluded": ExitCode.OK, "error": ExitCode.CHECK_FAILED}.get(
        pause.reason, ExitCode.WAITING
    )


class _Tee(io.StringIO):
    """Writes through to ``stream`` and keeps a copy (an action's reason for the evidence)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        return super().write(text)

    def flush(self) -> None:
        self.stream.flush()


async def _run_action_step(args: argparse.Namespace, config: Any, walk: Any) -> int | None:
    """Run the current action step's mitigation through the action commands' path.

    Applied: its outcome is the step's evidence and the walk moves on (None). Not
    applied: the outcome (or the reason it could not run) is the step's evidence, the
    walk stays at the step, and the command's exit code is returned. Read-only mode
    refuses before anything is read or recorded (exit 4).
    """
    from console.actions.contracts import ActionError
    from console.cli.action import mitigate

    step = walk.current
    try:
        name, params = walk.action_request()
    except ActionError as exc:
        raise _UsageError(f"step {step.id}: {exc}") from None
    sink: dict[str, Any] = {}
    command = argparse.Namespace(
        command=f"runbook run: step {step.id} ({name})",
        json=args.json,
        dry_run=False,
        yes=True,  # --answer STEP=confirm is the confirmation
        incident=None,
        # Filed under the incident of the alert the walk triages; judged on its SLI.
        origin=walk.action_origin(),
        no_verify=False,
        read_only=getattr(args, "read_only", False),
        actor=getattr(args, "actor", None),
        outcome_sink=sink,
    )
    if command.read_only or config.actions.read_only:
        return await mitigate(command, config, name, params)  # refuses, exit 4
    tee = _Tee(sys.stderr)
    with contextlib.redirect_stderr(tee):
        code = await mitigate(command, config, name, params)
    if sink.get("outcome") == "applied":
        walk.record_action(sink)
        return None
    if not sink:  # stopped before it ran: the reason is what it said
        said = [line for line in tee.getvalue().splitlines() if line.strip()]
        sink = {"outcome": "not run", "message": said[-1] if said else f"exit {code}"}
    sink["exit"] = code
    walk.record_action(sink)
    return code


def evidence_age(at: float, now: float) -> str:
    """``(read 03:14:09Z, 2s old)``: when a piece of evidence was read, and its age."""
    from console.render.format import reading_age

    return f"(read {time.strftime('%H:%M:%SZ', time.gmtime(at))}, {reading_age(at, now)})"


def _print(result: dict[str, Any], walk: Any, pause: Any) -> None:
    from rich.console import Console
    from rich.text import Text

    from console.times import seconds_of
    from console.triage.runbook import AskStep

    console = Console()
    runbook = walk.runbook
    console.print(
        Text(inert(f"{runbook.title} ({runbook.id}, run {result['run_id']})"), style="bold")
    )
    for item in result["evidence"]:
        line = Text(f"  {inert(item['step']):<22} {inert(item['kind']):<9} ", style="dim")
        line.append(inert(item["decision"]), style="bold")
        line.append(f" {evidence_age(seconds_of(item['at']) or 0.0, walk.clock())}", style="dim")
        if "query" in item["inputs"]:
            values = ", ".join(f"{v['value']:.4g}" for v in item["outputs"].get("values", []))
            query = " ".join(str(item["inputs"]["query"]).split())  # one line per step
            line.append(f"  {inert(query)}  → [{values}]", style="cyan")
        if "error" in item["outputs"]:
            line.append(f"  {inert(item['outputs']['error'])}", style="red")
        console.print(line)
    if result["conclusion"]:
        c = result["conclusion"]
        console.print(Text(inert(f"cause: {c['cause']} — {c['summary']}"), style="bold green"))
    elif isinstance(pause.step, AskStep):
        question = walk.text(pause.step.question)
        console.print(Text(inert(f"waiting at {pause.step.id}: {question}"), style="yellow"))
        for i, choice in enumerate(pause.step.choices, 1):
            console.print(
                Text(inert(f"  --answer {pause.step.id}={i}   {walk.text(choice.label)}"))
            )
    elif pause.reason == "action":
        console.print(
            Text(
                inert(f"waiting at {pause.step.id}: confirm or skip action {pause.step.action}"),
                style="yellow",
            )
        )
    elif pause.error:
        console.print(Text(inert(f"stopped at {pause.step.id}: {pause.error}"), style="red"))
