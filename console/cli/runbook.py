"""The ``runbook`` subcommand of the mlconsole command line: validate, schema (and run).

Importing this module is cheap: the models and the validator are imported by the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from console.cli.common import ExitCode, print_inert

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "mlconsole runbook"


def add_runbook_parser(subparsers: Any) -> Any:
    """Add the ``runbook`` subcommand (validate, schema) to ``subparsers``.

    Returns the ``runbook`` sub-subparsers, so more commands can be added to it.
    Every leaf parser sets ``func``, which takes the parsed namespace and returns
    the process exit code.
    """
    runbook = subparsers.add_parser(
        "runbook",
        help="check runbooks, print their schema",
        description="Runbooks are YAML triage procedures: a graph of check, ask, action, "
        "note and link steps, each path ending at a conclude step.",
    )
    commands = runbook.add_subparsers(dest="runbook_command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check runbook files and print every error with its location",
        description="Check runbook files: schema, step graph (branches, unreachable "
        "steps, loops with no ask step, paths that never conclude), templates and match "
        "regexes. A directory means every *.yaml and *.yml file under it. Prints "
        "`PATH: OK (N steps)` per good file, or every error as "
        "file:line:col: key: message (hint: ...). Exit codes: 0 all good, 2 any error.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="runbook file or directory")
    validate.set_defaults(func=cmd_validate)

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a runbook (for editor completion)",
        description="Print the JSON Schema of a runbook file, for editors that complete "
        "and check YAML against a schema.",
    )
    schema.set_defaults(func=cmd_schema)

    from console.cli.runbook_run import add_run_parser

    add_run_parser(commands)

    return commands


def cmd_validate(args: argparse.Namespace) -> int:
    from console.triage.validate import validate_runbook_files

    results = validate_runbook_files([Path(p) for p in args.paths])
    results, syntax = _check_promql(results, args)
    errors = 0
    bad_files = 0
    for path, runbook, issues in results:
        if runbook is not None and not issues:
            print_inert(f"{path}: OK ({len(runbook.steps)} steps)")
            continue
        bad_files += 1
        errors += len(issues)
        for issue in sorted(issues, key=lambda i: (i.line, i.col, i.key, i.message)):
            print_inert(str(issue))
    if syntax:
        print_inert(syntax)
    if errors:
        print_inert(f"{errors} error(s) in {bad_files} of {len(results)} file(s)")
        return ExitCode.USAGE
    return ExitCode.OK


Results = list[tuple[Path, Any, list[Any]]]


def _check_promql(results: Results, args: argparse.Namespace) -> tuple[Results, str]:
    """Parse the check queries of the runbooks that passed, in one go; a query that
    does not parse becomes its file's issue. The line that says how syntax was checked."""
    import asyncio

    from console.config.loader import load_config, parse_yaml, read_regular_file
    from console.config.located import ConfigError
    from console.config.paths import find_config
    from console.triage.promql_check import check_syntax, runbook_expressions

    expressions = []
    for path, runbook, issues in results:
        if runbook is None or issues:
            continue
        try:
            _, located = parse_yaml(read_regular_file(path, "runbook"), str(path))
        except ConfigError:
            continue
        expressions.extend(runbook_expressions(runbook, located))
    if not expressions:
        return results, ""
    config = None
    config_path, _ = find_config(getattr(args, "config", None))
    if config_path is not None:
        try:
            config = load_config(config_path)
        except ConfigError:
            config = None
    report = asyncio.run(check_syntax(expressions, config=config))
    by_file: dict[str, list[Any]] = {}
    for issue in report.issues:
        by_file.setdefault(issue.file, []).append(issue)
    checked = [
        (path, None if by_file.get(str(path)) else runbook, issues + by_file.get(str(path), []))
        for path, runbook, issues in results
    ]
    return checked, report.line(len(expressions))


def cmd_schema(args: argparse.Namespace) -> int:
    from console.triage.runbook import Runbook

    schema = Runbook.model_json_schema()
    schema.pop("title", None)
    definitions = schema.pop("$defs", {})
    document = {"$schema": SCHEMA_DIALECT, "title": SCHEMA_TITLE, **schema, "$defs": definitions}
    print(json.dumps(document, indent=2))
    return ExitCode.OK
