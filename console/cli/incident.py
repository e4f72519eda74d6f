"""Incidents: list, show, open, acknowledge, annotate and resolve them; export one.

An incident is opened for each firing alert group (model + alert name) and moves
triggered -> acknowledged -> mitigated -> resolved. Incidents live in the store, so
every console and command pointed at the same store sees the same ones.

Exit codes: 0 ok, 2 usage error (a bad config, an unknown incident), 3 the alerts
could not be read (list and open still show what the store holds), 4 the incident
cannot move that way (acknowledging a resolved incident, resolving twice).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from console.cli.common import CommandExit, ExitCode, config_for
from console.cli.text_table import Column, output_width, render_table
from console.durations import format_duration
from console.text import inert

if TYPE_CHECKING:
    from console.config.models import Config
    from console.incidents.model import Incident
    from console.session import Session


def guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A store or audit log that fails mid-command (locked, corrupt, unreadable) is
    one line and exit 3, never a traceback."""
    import functools

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        import sqlite3

        from console.audit.chain import AuditError
        from console.incidents.model import IncidentError
        from console.triage.store import StoreError

        try:
            return command(args)
        except (IncidentError, StoreError, AuditError, sqlite3.Error) as exc:
            print(f"mlconsole {args.command}: {inert(exc)}", file=sys.stderr)
            return ExitCode.UNREACHABLE

    return run


def add_incident_parsers(subparsers: Any) -> None:
    incident = subparsers.add_parser(
        "incident",
        help="list, show, acknowledge, annotate and resolve incidents",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = incident.add_subparsers(dest="incident_command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list",
        help="open incidents, newest first (reads the alerts first and opens new ones)",
        description="Read the alerts once (opening incidents for new alert groups and "
        "recording alerts that stopped firing), then list the incidents.",
    )
    listing.add_argument("--all", action="store_true", help="resolved incidents too")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument(
        "--no-sync", action="store_true", help="do not read the alerts; show the store as it is"
    )
    listing.set_defaults(func=guarded(cmd_list))

    show = commands.add_parser("show", help="one incident: its state, metrics and timeline")
    show.add_argument("incident", metavar="INCIDENT", help="incident id, e.g. INC-7 or 7")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=guarded(cmd_show))

    opening = commands.add_parser(
        "open",
        help="open an incident for a firing alert group (when auto_open is off)",
    )
    opening.add_argument("model", metavar="MODEL")
    opening.add_argument("alertname", metavar="ALERTNAME")
    opening.set_defaults(func=guarded(cmd_open))

    ack = commands.add_parser(
        "ack",
        help="acknowledge: tell every responder you are on it (not a silence)",
        description="Acknowledge an incident. The acknowledgement is shown to everyone "
        "who shares the store and ends when every alert of the incident stops firing. "
        "It does not silence anything.",
    )
    ack.add_argument("incident", metavar="INCIDENT")
    ack.set_defaults(func=guarded(cmd_ack))

    note = commands.add_parser("note", help="add a note to the incident's timeline")
    note.add_argument("incident", metavar="INCIDENT")
    note.add_argument(
        "text",
        nargs="+",
        metavar="TEXT",
        help="the note (start it with 'action:' to make it an action item of the export)",
    )
    note.set_defaults(func=guarded(cmd_note))

    resolve = commands.add_parser("resolve", help="resolve the incident")
    resolve.add_argument("incident", metavar="INCIDENT")
    resolve.add_argument("--comment", default="", help="why it is resolved")
    resolve.set_defaults(func=guarded(cmd_resolve))


@contextmanager
def _records(args: argparse.Namespace) -> Iterator[Session]:
    from console.incidents.model import IncidentError
    from console.session import open_reading
    from console.triage.store import StoreError

    config = config_for(args)
    try:
        records = open_reading(config, actor=getattr(args, "actor", None))
    except (IncidentError, StoreError) as exc:
        print(f"mlconsole incident: {inert(exc)}", file=sys.stderr)
        raise CommandExit(ExitCode.USAGE) from None
    if records.audit_problem:
        print(f"mlconsole: {inert(records.audit_problem)}", file=sys.stderr)
    try:
        yield records
    finally:
        records.close_stores()


def _actor(args: argparse.Namespace, config: Config) -> str:
    from console.config.actor import resolve_actor

    return resolve_actor(config, getattr(args, "actor", None))


def _sync(records: Session, actor: str) -> str | None:
    """Read the alerts once and sync; the error if they could not be read."""
    import asyncio

    from adapters.base import AdapterError
    from console.incidents.live import sync_from_source
    from console.sources.build import build_adapters

    async def run() -> str | None:
        adapters, failures = build_adapters(records.config)
        try:
            result = await sync_from_source(records.book, records.config, adapters, actor=actor)
        except AdapterError as exc:
            return "; ".join([str(exc), *failures.values()])
        finally:
            for adapter in adapters.values():
                await adapter.aclose()
        for incident in result.opened:
            print(
                inert(f"opened {incident.id}: {incident.alertname} on {incident.model}"),
                file=sys.stderr,
            )
        quiet = format_duration(records.config.incidents.auto_resolve_after or 0)
        for incident in result.resolved:
            print(f"resolved {incident.id}: quiet for {quiet}", file=sys.stderr)
        return None

    return asyncio.run(run())


def _age(since: float, now: float) -> str:
    return format_duration(max(0.0, now - since))


#: The columns of ``incident list``; ALERTS says whether any alert of the incident
#: fires now, ACK who acknowledged it (``(ended)`` once an alert stopped firing since).
INCIDENT_COLUMNS = (
    Column("ID"),
    Column("STATE"),
    Column("SEV"),
    Column("MODEL", shrink=2),
    Column("ALERT", shrink=2),
    Column("AGE", right=True),
    Column("ALERTS"),
    Column("ACK", shrink=1, min_width=5),
)


def incident_row(incident: Incident, now: float) -> list[str]:
    """One incident as the cells of :data:`INCIDENT_COLUMNS`."""
    ack = "-"
    if incident.acked_by:
        ack = incident.acked_by if incident.ack_active else f"{incident.acked_by} (ended)"
    return [
        incident.id,
        incident.state,
        incident.severity or "-",
        incident.model or "-",
        incident.alertname,
        _age(incident.alert_started_at, now),
        "firing" if incident.firing else "quiet",
        ack,
    ]


def cmd_list(args: argparse.Namespace) -> int:
    with _records(args) as records:
        code = ExitCode.OK
        if not args.no_sync:
            error = _sync(records, _actor(args, records.config))
            if error:
                print(f"mlconsole incident: alerts not read: {inert(error)}", file=sys.stderr)
                code = ExitCode.UNREACHABLE
        incidents = records.book.incidents(open_only=not args.all)
        now = time.time()
        if args.json:
            print(json.dumps([i.as_dict() for i in incidents], indent=2))
            return code
        if not incidents:
            print("no open incidents" if not args.all else "no incidents")
            return code
        rows = [incident_row(incident, now) for incident in incidents]
        for line in render_table(INCIDENT_COLUMNS, rows, width=output_width()):
            print(line)
        return code


@contextmanager
def named_incident(args: argparse.Namespace) -> Iterator[tuple[Session, Incident]]:
    """The records and the incident ``args.incident`` names."""
    from console.incidents.model import IncidentError

    with _records(args) as records:
        try:
            incident = records.book.find(args.incident)
        except IncidentError as exc:
            print(f"mlconsole incident: {inert(exc)}", file=sys.stderr)
            raise CommandExit(ExitCode.USAGE) from None
        yield records, incident


def cmd_show(args: argparse.Namespace) -> int:
    from console.incidents.timeline import compute_metrics, utc

    with named_incident(args) as (records, incident):
        events = records.timeline(incident)
        metrics = compute_metrics(events)
        if args.json:
            print(
                json.dumps(
                    {
                        "incident": incident.as_dict(),
                        "metrics": {k: m.as_dict() for k, m in metrics.items()},
                        "timeline": [e.as_dict() for e in events],
                    },
                    indent=2,
                    default=str,
                )
            )
            return ExitCode.OK
        print(inert(f"{incident.id}: {incident.title}"))
        print(
            inert(
                f"  {incident.state}, severity {incident.severity or '-'}, model "
                f"{incident.model or '-'}, alert {incident.alertname}, "
                f"owner {incident.owner or '-'}"
            )
        )
        print(
            "  metrics: "
            + ", ".join(
                f"{m.label} {'-' if m.seconds is None else format_duration(m.seconds)}"
                for m in metrics.values()
            )
        )
        print(f"  timeline ({len(events)} events, UTC):")
        for event in events:
            kind, actor = inert(event.kind), inert(event.actor)
            print(f"  {utc(event.at)}  {kind:<22} {actor:<14} {inert(event.summary)}")
        return ExitCode.OK


def cmd_open(args: argparse.Namespace) -> int:
    from adapters.base import AdapterError
    from console.incidents.live import alerts_source, record_first_breach
    from console.incidents.model import IncidentError, group_key
    from console.sources.build import build_adapters

    with _records(args) as records:
        config = records.config
        actor = _actor(args, config)

        async def run() -> int:
            adapters, _ = build_adapters(config)
            try:
                source = alerts_source(config, adapters)
                if source is None:
                    print("mlconsole incident: no alerts source configured", file=sys.stderr)
                    return ExitCode.USAGE
                try:
                    alerts = await source.alerts()
                except AdapterError as exc:
                    print(f"mlconsole incident: alerts not read: {inert(exc)}", file=sys.stderr)
                    return ExitCode.UNREACHABLE
                group = [
                    a
                    for a in alerts
                    if group_key(a, config.model_label) == (args.model, args.alertname)
                ]
                if not group:
                    print(
                        inert(
                            f"mlconsole incident: {args.alertname} is not firing on {args.model}"
                        ),
                        file=sys.stderr,
                    )
                    return ExitCode.REFUSED
                try:
                    incident = records.book.open(group, model_label=config.model_label, actor=actor)
                except IncidentError as exc:
                    print(f"mlconsole incident: {inert(exc)}", file=sys.stderr)
                    return ExitCode.USAGE
                await record_first_breach(records.book, incident, config, adapters)
                print(
                    inert(f"{incident.id}: {incident.alertname} on {incident.model}")
                    + f" ({incident.state})"
                )
                return ExitCode.OK
            finally:
                for adapter in adapters.values():
                    await adapter.aclose()

        import asyncio

        return asyncio.run(run())


def _move(args: argparse.Namespace, verb: str) -> int:
    from console.incidents.model import IncidentError

    with named_incident(args) as (records, incident):
        actor = _actor(args, records.config)
        book = records.book
        try:
            if verb == "ack":
                done = book.acknowledge(incident.number, actor=actor)
                print(inert(f"{done.id} acknowledged by {actor} (owner {done.owner})"))
            elif verb == "note":
                book.note(incident.number, " ".join(args.text), actor=actor)
                print(f"{incident.id}: note added")
            else:
                done = book.resolve(incident.number, actor=actor, comment=args.comment)
                print(inert(f"{done.id} resolved by {actor}"))
        except IncidentError as exc:
            print(f"mlconsole incident: {inert(exc)}", file=sys.stderr)
            return ExitCode.REFUSED
        return ExitCode.OK


def cmd_ack(args: argparse.Namespace) -> int:
    return _move(args, "ack")


def cmd_note(args: argparse.Namespace) -> int:
    return _move(args, "note")


def cmd_resolve(args: argparse.Namespace) -> int:
    return _move(args, "resolve")
