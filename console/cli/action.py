"""``mlconsole rollback|fallback|silence|pipeline``: mitigations from the command line.

They take the same path as the dashboard's keys: the plan is printed (before →
after), ``--dry-run`` stops there, confirmation is asked (or ``--yes``), the
intent is audited before anything changes, the world is checked against the
plan, and the result is audited and read back. Rollback and fallback then
watch the SLI and say whether the model recovered.

Exit codes:
  0  applied (and recovered, when the SLI is watched), or a dry run
  1  applied, but the SLI that paged did not recover within the window, or nothing
     could be watched (the undo is printed)
  2  usage or config error, or nothing to do
  3  a source failed: the action could not be planned or applied, or its state
     read back is not the planned one
  4  refused: the world changed since the plan (or another console kept the
     target's lock), read-only mode, or not confirmed; or a conflict: applied, but
     the state read back is another writer's
  5  the audit log cannot be written: nothing was run
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from console.cli.common import ExitCode, config_for
from console.durations import SILENCE_RANGE
from console.text import inert

if TYPE_CHECKING:
    from console.mitigation import Applied, Proposal
    from console.session import Session

COMMON_EPILOG = (
    "Exit codes: 0 applied (and recovered) or dry run, 1 applied but not recovered "
    "(or not verifiable), "
    "2 usage error or nothing to do, 3 a source failed, 4 refused (the state changed "
    "since the plan, the target is locked, read-only, or not confirmed) or a conflict "
    "(another writer moved it between apply and read-back), 5 the audit log cannot be written "
    "(nothing ran)."
)


def _common(parser: argparse.ArgumentParser, *, watches: bool) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("-y", "--yes", action="store_true", help="apply without asking")
    parser.add_argument(
        "--incident",
        metavar="ID",
        help="incident to file the action under, or `none` (default: the model's one "
        "firing incident; none when it has no firing incident, or several)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    # Also accepted after the command (mlconsole rollback M --read-only).
    parser.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS, help="refuse (exit 4)"
    )
    parser.add_argument(
        "--actor", metavar="NAME", default=argparse.SUPPRESS, help="who the audit log names"
    )
    if watches:
        parser.add_argument(
            "--no-verify", action="store_true", help="do not watch the SLI after applying"
        )


def add_action_parsers(sub: Any) -> None:
    rollback = sub.add_parser(
        "rollback",
        help="point the model's serving alias back at its previous version",
        description="Roll MODEL back: the alias (actions.alias, default champion) moves to "
        "the version it held before, as the console observed it, or else to the next "
        "lower version. " + COMMON_EPILOG,
    )
    rollback.add_argument("model", help="the model to roll back")
    rollback.add_argument("--to", metavar="VERSION", help="roll back to this version instead")
    _common(rollback, watches=True)
    rollback.set_defaults(func=cmd_rollback)

    fallback = sub.add_parser(
        "fallback",
        help="serve the model's rule-based fallback (on) or the model again (off)",
        description="Switch MODEL's serving to its rule-based fallback, or back. " + COMMON_EPILOG,
    )
    fallback.add_argument("model")
    fallback.add_argument("state", choices=("on", "off"))
    _common(fallback, watches=True)
    fallback.set_defaults(func=cmd_fallback)

    silence = sub.add_parser(
        "silence",
        help="silence alerts in Alertmanager, or expire a silence",
        description="Silence the alerts of MODEL (and/or those matching --alert/--match) for "
        "--duration, with a comment; createdBy is the actor. --expire ID ends a silence. "
        + COMMON_EPILOG,
    )
    silence.add_argument("model", nargs="?", help="silence this model's alerts")
    silence.add_argument("--alert", metavar="NAME", help="only this alertname")
    silence.add_argument(
        "--match",
        metavar="LABEL=VALUE",
        action="append",
        default=[],
        help="extra matcher; also LABEL!=VALUE, LABEL=~REGEX, LABEL!~REGEX (repeatable)",
    )
    silence.add_argument(
        "--duration",
        metavar="DURATION",
        help=f"e.g. 30m, 2h, {SILENCE_RANGE} (default: actions.silence_duration, 1h)",
    )
    silence.add_argument("-m", "--comment", help="why (required)")
    silence.add_argument("--expire", metavar="ID", help="expire this silence instead")
    _common(silence, watches=False)
    silence.set_defaults(func=cmd_silence)

    pipeline = sub.add_parser(
        "pipeline",
        help="pause or resume a model's retraining pipeline",
        description="Pause or resume MODEL's retraining pipeline. " + COMMON_EPILOG,
    )
    pipeline.add_argument("operation", choices=("pause", "resume"))
    pipeline.add_argument("model")
    _common(pipeline, watches=False)
    pipeline.set_defaults(func=cmd_pipeline)


def cmd_rollback(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"model": args.model}
    if args.to:
        params["to"] = args.to
    return run_action(args, "rollback", params)


def cmd_fallback(args: argparse.Namespace) -> int:
    return run_action(args, "fallback", {"model": args.model, "on": args.state == "on"})


def cmd_pipeline(args: argparse.Namespace) -> int:
    return run_action(args, "pipeline", {"model": args.model, "paused": args.operation == "pause"})


def parse_matcher(raw: str) -> dict[str, object]:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``: the
    first operator in the text splits it, so values may hold ``=`` and ``!=``."""
    kinds = {"!~": (True, False), "=~": (True, True), "!=": (False, False), "=": (False, True)}
    found = [(raw.find(op), -len(op), op) for op in kinds if op in raw]
    if not found:
        raise ValueError(f"matcher {raw!r} is not LABEL=VALUE")
    _, _, op = min(found)
    name, value = raw.split(op, 1)
    if not name.strip():
        raise ValueError(f"matcher {raw!r} has no label name")
    regex, equal = kinds[op]
    return {"name": name.strip(), "value": value, "isRegex": regex, "isEqual": equal}


def cmd_silence(args: argparse.Namespace) -> int:
    if args.expire:
        return run_action(args, "silence-expire", {"silence_id": args.expire})
    from console.actions.silence import equal_matcher
    from console.config.models import parse_silence_duration

    matchers: list[dict[str, object]] = []
    if args.model:
        matchers.append(equal_matcher("model", args.model))
    if args.alert:
        matchers.append(equal_matcher("alertname", args.alert))
    try:
        matchers.extend(parse_matcher(m) for m in args.match)
        duration = parse_silence_duration(args.duration) if args.duration is not None else None
    except ValueError as exc:
        print(f"mlconsole silence: {inert(exc)}", file=sys.stderr)
        return ExitCode.USAGE
    if not matchers:
        print("mlconsole silence: say what to silence: MODEL, --alert or --match", file=sys.stderr)
        return ExitCode.USAGE
    if not args.comment:
        print("mlconsole silence: --comment is required: say why", file=sys.stderr)
        return ExitCode.USAGE
    params: dict[str, Any] = {"matchers": matchers, "comment": args.comment}
    if duration is not None:
        params["duration"] = duration
    if args.model:
        params["model"] = args.model
    return run_action(args, "silence", params)


def run_action(args: argparse.Namespace, name: str, params: Mapping[str, Any]) -> int:
    import asyncio

    config = config_for(args)
    return asyncio.run(mitigate(args, config, name, params))


def refused_read_only(args: argparse.Namespace, config: Any) -> bool:
    """Read-only mode (``--read-only`` or ``actions.read_only``) refuses, said once."""
    if getattr(args, "read_only", False) or config.actions.read_only:
        print(
            f"mlconsole {args.command}: refused: read-only mode (--read-only or "
            "actions.read_only); nothing was changed",
            file=sys.stderr,
        )
        return True
    return False


async def mitigate(
    args: argparse.Namespace, config: Any, name: str, params: Mapping[str, Any]
) -> int:
    """One mitigation the command's way: plan, confirm, lock, intent, check, apply, read
    back, result, incident, verify. Returns the exit code. A caller that sets
    ``args.outcome_sink`` (a dict; ``runbook run``) gets the outcome there, not printed.
    """
    if refused_read_only(args, config):
        return ExitCode.REFUSED
    if name == "silence" and config.model_label != "model":
        for m in params.get("matchers", ()):
            if m["name"] == "model":
                m["name"] = config.model_label
    return await _run(args, config, name, params)


def _say(args: argparse.Namespace, text: str) -> None:
    """Human progress goes to stderr when stdout carries JSON."""
    print(inert(text, multiline=True), file=sys.stderr if args.json else sys.stdout, flush=True)


STOP_CODES = {
    "refused": ExitCode.REFUSED,
    "cannot plan": ExitCode.USAGE,
    "unreachable": ExitCode.UNREACHABLE,
    "audit": ExitCode.AUDIT,
}
"""Each way the flow stops (:class:`console.mitigation.Stop`), as the exit code."""

RESULT_CODES = {
    "refused": ExitCode.REFUSED,
    "conflict": ExitCode.REFUSED,
    "failed": ExitCode.UNREACHABLE,
    "unconfirmed": ExitCode.UNREACHABLE,
}
"""Each result that is not a success (:class:`console.mitigation.Result`), as the
exit code."""


async def _run(args: argparse.Namespace, config: Any, name: str, params: Mapping[str, Any]) -> int:
    from console import mitigation
    from console.actions.origin import Origin
    from console.audit.chain import AuditError
    from console.session import open_session

    try:
        space = await open_session(config, actor=getattr(args, "actor", None))
    except AuditError as exc:
        print(f"mlconsole {args.command}: nothing was run: {inert(exc)}", file=sys.stderr)
        return ExitCode.AUDIT
    try:
        # ``runbook run`` passes the origin of its walk: the alert it triages.
        origin = getattr(args, "origin", None) or Origin(incident=args.incident)
        try:
            for settled in await mitigation.settle(space):
                print(
                    f"mlconsole: an earlier action was in doubt: {inert(settled.line())}",
                    file=sys.stderr,
                )
            proposal = await mitigation.propose(
                space, name, params, origin, verify=not getattr(args, "no_verify", False)
            )
            applied = await _confirm_and_apply(args, space, proposal)
        except mitigation.MitigationStopped as exc:
            print(f"mlconsole {args.command}: {inert(exc)}", file=sys.stderr)
            return STOP_CODES[exc.stop.value]
        if isinstance(applied, int):
            return applied
        return await _after(args, space, applied)
    finally:
        await space.close()


async def _confirm_and_apply(args: argparse.Namespace, space: Any, proposal: Any) -> Any:
    """Say the plan, ask (or take ``--yes``), and apply it: the applied mitigation, or
    the exit code when it stops here."""
    from console import mitigation

    plan = proposal.plan
    _say(args, f"Plan ({proposal.action.title}, as {inert(space.ctx.actor)}):")
    for line in plan.lines():
        _say(args, f"  {inert(line)}")
    _say(args, proposal.filing.line())
    if proposal.watches:
        _say(args, f"Verification will watch {proposal.target.describe()}.")
    if args.dry_run:
        applied = await mitigation.apply(space, proposal, dry_run=True)
        _finish(args, {**applied.report.as_dict(), **_filed(proposal)}, applied.report.message)
        return ExitCode.OK
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"mlconsole {args.command}: not confirmed: pass --yes to apply without a "
                "terminal (or --dry-run to only see the plan)",
                file=sys.stderr,
            )
            return ExitCode.USAGE
        answer = input("Apply this plan? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Not applied.")
            return ExitCode.REFUSED
    return await mitigation.apply(
        space,
        proposal,
        on_wait=lambda text: _say(args, text),
        unattended=bool(args.yes),  # --yes, and runbook run's --answer STEP=confirm
    )


def _filed(proposal: Proposal) -> dict[str, Any]:
    filed = {"incident": proposal.filing.incident, "filed": proposal.filing.line()}
    if proposal.watches:
        filed["watch"] = proposal.target.describe()
    return filed


async def _after(args: argparse.Namespace, space: Session, applied: Applied) -> int:
    """What an applied mitigation came to: its result, and the SLI's verdict."""
    from console import mitigation

    report, proposal = applied.report, applied.proposal
    out = {**report.as_dict(), **_filed(proposal)}
    if report.audit_warning:
        print(f"mlconsole {args.command}: WARNING: {inert(report.audit_warning)}", file=sys.stderr)
    code = RESULT_CODES.get(applied.result.value)
    if code is not None:
        unconfirmed = applied.result is mitigation.Result.UNCONFIRMED
        if unconfirmed:
            _say(args, report.message)
        _finish(
            args, out, mitigation.UNCONFIRMED if unconfirmed else report.message, stream=sys.stderr
        )
        return code
    _say(args, report.message)
    if not applied.watches:
        _finish(args, out, None)
        return ExitCode.OK
    window = space.ctx.config.actions.verify.window
    if proposal.target.problem is None:
        _say(
            args, f"Watching {proposal.target.sli} of {proposal.plan.model} for up to {window:g}s…"
        )

    def progress(value: float | None, elapsed: float, total: float) -> None:
        shown = "no data" if value is None else f"{value:.4g}"
        _say(args, f"  {elapsed:5.0f}s / {total:g}s  {shown}")

    verdict = await mitigation.watch(space, applied, on_read=progress)
    if verdict.warning:
        print(f"mlconsole {args.command}: WARNING: {inert(verdict.warning)}", file=sys.stderr)
    out["recovery"] = verdict.recovery.as_dict()
    if verdict.recovery.recovered:
        _finish(args, out, verdict.recovery.line())
        return ExitCode.OK
    lines = [verdict.recovery.line()]
    if verdict.undo is not None:
        undo_plan = verdict.undo[1]
        out["undo_plan"] = undo_plan.as_dict()
        lines.append(f"Undo plan: {undo_plan.summary()}")
        lines.append(f"  run: {undo_command(undo_plan)}")
    _finish(args, out, "\n".join(lines))
    return ExitCode.NOT_RECOVERED


def undo_command(plan: Any) -> str:
    """The CLI line that applies an undo plan."""
    p = plan.params
    if plan.action == "rollback":
        return f"mlconsole rollback {p['model']} --to {p['to']}"
    if plan.action == "fallback":
        return f"mlconsole fallback {p['model']} {'on' if p['on'] else 'off'}"
    if plan.action == "pipeline":
        return f"mlconsole pipeline {'pause' if p['paused'] else 'resume'} {p['model']}"
    if plan.action == "silence-expire":
        return f"mlconsole silence --expire {p['silence_id']}"
    return f"mlconsole {plan.action}"


def _finish(
    args: argparse.Namespace, out: Mapping[str, Any], text: str | None, stream: Any = None
) -> None:
    sink = getattr(args, "outcome_sink", None)
    if sink is not None:
        sink.update(out)
        if text:
            print(text, file=sys.stderr if args.json else stream or sys.stdout)
    elif args.json:
        print(json.dumps(out, indent=2, default=str))
    elif text:
        print(inert(text, multiline=True), file=stream or sys.stdout)
