"""``mlconsole audit verify|list``: check and read the audit log.

Exit codes: 0 the chain holds, 1 it does not (the first bad entry is named),
2 usage error or an unreadable log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli.common import config_for
from console.text import inert

if TYPE_CHECKING:
    from console.audit.chain import AuditEntry


def default_audit_path(args: argparse.Namespace) -> Path:
    """Beside the store the config names (``audit.db``), else in the XDG state dir."""
    from console.config.loader import load_config
    from console.config.located import ConfigError
    from console.config.paths import audit_path, default_store_path, find_config

    path, _ = find_config(getattr(args, "config", None))
    if path is not None:
        with contextlib.suppress(ConfigError):
            return audit_path(load_config(path))
    return default_store_path().with_name("audit.db")


def add_audit_parser(subparsers: Any) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="verify or list the tamper-evident audit log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser("verify", help="check the hash chain; name the first bad entry")
    verify.add_argument("--db", metavar="PATH", help="audit log (default: beside the store)")
    verify.set_defaults(func=cmd_verify)
    listing = commands.add_parser("list", help="list the entries")
    listing.add_argument("--db", metavar="PATH", help="audit log (default: beside the store)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    settle = commands.add_parser(
        "reconcile",
        help="settle actions left in doubt (an intent with no result) by reading the real state",
    )
    settle.set_defaults(func=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Read the real state behind every in-doubt intent and audit the verdict."""
    import asyncio

    from console.actions.reconcile import reconcile_in_doubt
    from console.audit.chain import AuditError
    from console.session import open_session

    config = config_for(args)

    async def run() -> int:
        try:
            space = await open_session(config, actor=getattr(args, "actor", None))
        except AuditError as exc:
            print(f"mlconsole audit: {inert(exc)}", file=sys.stderr)
            return 2
        try:
            settled = await reconcile_in_doubt(space.ctx, space.audit_log())
        finally:
            await space.close()
        if not settled:
            print("nothing in doubt")
        for item in settled:
            print(inert(item.line()))
        return 1 if any(item.error for item in settled) else 0

    return asyncio.run(run())


def _open(args: argparse.Namespace) -> Any:
    from console.audit.chain import AuditError
    from console.audit.log import AuditLog

    path = Path(args.db) if args.db else default_audit_path(args)
    if not path.exists():
        print(f"mlconsole audit: no audit log at {path}", file=sys.stderr)
        return None
    try:
        # Read-only: checking a log never changes it, and a read-only copy can be checked.
        return AuditLog(path, read_only=True)
    except AuditError as exc:
        print(f"mlconsole audit: {inert(exc)}", file=sys.stderr)
        return None


def cmd_verify(args: argparse.Namespace) -> int:
    from console.audit.chain import AuditError

    log = _open(args)
    if log is None:
        return 2
    try:
        result = log.verify()
    except AuditError as exc:
        print(f"mlconsole audit: {inert(exc)}", file=sys.stderr)
        return 2
    if result.ok:
        print(f"{log.path}: OK ({result.entries} entries, chain intact)")
        return 0
    where = f"entry {result.bad_seq}" if result.bad_seq is not None else "the log"
    print(f"{log.path}: TAMPERED at {where}: {inert(result.reason)}")
    return 1


def entry_line(entry: AuditEntry, *, in_doubt: bool = False) -> str:
    """One entry as a line: when, what kind, the plan's summary, the outcome, who."""
    body = entry.body
    flag = "  IN DOUBT" if in_doubt else ""
    at, kind = inert(body.get("at", "")), inert(body.get("kind", ""))
    return f"{entry.seq:>5} {at} {kind:<9} {inert(entry.summary())}{flag}"


def cmd_list(args: argparse.Namespace) -> int:
    log = _open(args)
    if log is None:
        return 2
    from console.audit.chain import AuditError

    write = sys.stdout.write
    try:
        if args.json:  # as json.dumps(list, indent=2) prints the whole list
            first = True
            for entry, doubt in log.listing():
                item = json.dumps({**entry.as_dict(), "in_doubt": doubt}, indent=2)
                write(("[\n  " if first else ",\n  ") + item.replace("\n", "\n  "))
                first = False
            write("[]\n" if first else "\n]\n")
            return 0
        for entry, doubt in log.listing():
            write(entry_line(entry, in_doubt=doubt) + "\n")
    except AuditError as exc:  # after what was listed so far: say where it stopped
        sys.stdout.flush()
        print(f"mlconsole: {exc}", file=sys.stderr)
        return 2
    return 0
