"""``mlconsole export``: an incident as a postmortem draft (Markdown) or as JSON in a
versioned schema; ``--schema`` prints that schema.

Exit codes: 0 ok, 2 usage error (no incident named, an unknown one, or a target
that is refused), 3 the store could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from console.cli.common import ExitCode
from console.cli.incident import guarded, named_incident
from console.export.build import export_text
from console.text import inert


def add_export_parser(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="export an incident's timeline as a postmortem draft (Markdown) or JSON",
        description="Export an incident: Markdown (a postmortem draft) or JSON following "
        "a versioned schema. --schema prints that schema.",
    )
    export.add_argument("incident", nargs="?", metavar="INCIDENT", help="incident id")
    export.add_argument(
        "--format",
        choices=("md", "json"),
        default=None,
        help="md or json (default: from -o's extension, else md)",
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--schema", action="store_true", help="print the JSON schema and exit")
    export.set_defaults(func=guarded(cmd_export))


def cmd_export(args: argparse.Namespace) -> int:
    if args.schema:
        from console.export.document import export_schema

        print(json.dumps(export_schema(), indent=2))
        return ExitCode.OK
    if not args.incident:
        print("mlconsole export: name an incident (e.g. INC-7), or --schema", file=sys.stderr)
        return ExitCode.USAGE
    fmt = args.format
    output = Path(args.output) if args.output else None
    if fmt is None:
        fmt = "json" if output is not None and output.suffix.lower() == ".json" else "md"
    with named_incident(args) as (records, incident):
        from console.export.files import ExportTargetError

        try:
            text = export_text(records, incident, fmt, output)
        except ExportTargetError as exc:
            print(f"mlconsole export: refused: {inert(exc)}", file=sys.stderr)
            return ExitCode.USAGE
        except OSError as exc:
            print(f"mlconsole export: cannot write {output}: {inert(exc)}", file=sys.stderr)
            return ExitCode.USAGE
        if output is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        else:
            print(f"{incident.id} exported to {output} ({fmt})", file=sys.stderr)
        return ExitCode.OK
