"""The ``mlconsole`` command line.

Exit codes (every command):
  0  success / healthy
  1  alerts firing (``status``); applied but not recovered (actions)
  2  usage or config error
  3  a source is unreachable or failed
  4  an action was refused (the state changed since its plan, its target stayed
     locked, or read-only mode), or in conflict (another writer before the read-back)
  5  the audit log cannot be written, or is not whole (nothing was run)
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from console import __version__
from console.cli.common import (
    EXIT_CODES_HELP,
    INSTALL_HINT,
    CommandExit,
    ExitCode,
    config_for,
    foreign_packages,
    print_inert,
)

# Importing this module, and building the parser, must stay cheap: `--version` and
# `--help` answer from here. Each command imports what it needs when it runs (the
# config models, pydantic and YAML alone cost several times a bare interpreter).


GC_YOUNG_THRESHOLD = 10_000
"""The collector's first threshold while a command runs (Python's is 700). A command
starts by importing its libraries and loading its config: hundreds of thousands of
objects that live until the process ends, which the young collections walk again and
again to free nothing (about 4% of a bare interpreter's start for `status --json`).
Raised, not turned off: a cycle of garbage is still freed, a little later."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with our code 2 and a hint to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


class _NotThisCommand(Exception):
    """The words do not parse with one command's parser alone: read them with all."""


class _OneCommandParser(_Parser):
    """A parser holding one command group: a usage error is the full parser's to say."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _NotThisCommand(message)


COMMAND_GROUPS: dict[tuple[str, ...], str] = {
    ("rollback", "fallback", "silence", "pipeline"): "console.cli.action:add_action_parsers",
    ("audit",): "console.cli.audit:add_audit_parser",
    ("incident",): "console.cli.incident:add_incident_parsers",
    ("export",): "console.cli.export:add_export_parser",
    ("lab",): "console.cli.lab:add_lab_parser",
    ("runbook",): "console.cli.runbook:add_runbook_parser",
}
"""The commands whose parsers other modules add, and the function that adds them, in
the order `--help` lists them (after this module's own: dashboard, status,
check-config). A command that runs imports only its own group's module: the five
modules and their forty parsers cost about a tenth of a bare interpreter's start."""

_VALUE_OPTIONS = ("--config", "--actor")
"""The top-level options that take a value, as words to skip before the command."""


def command_word(words: Sequence[str]) -> str | None:
    """The command ``words`` run, when it is plain to see: the first word that is not a
    top-level option or its value. None when help is asked for before it, or anything
    is unclear (an unknown option, ``--``): the full parser then reads the words."""
    options = (*_VALUE_OPTIONS, "--read-only")
    value_next = False
    for word in words:
        if value_next:
            value_next = False
        elif word == "-c":
            value_next = True
        elif word.startswith("-c") and not word.startswith("--"):
            continue  # -cPATH
        elif word.startswith("--") and len(word) > 2:
            name, equals, _ = word.partition("=")
            matches = [option for option in options if option.startswith(name)]  # abbrev.
            if len(matches) != 1:  # --help, --version, unknown or ambiguous
                return None
            value_next = matches[0] in _VALUE_OPTIONS and not equals
        elif word.startswith("-"):
            return None
        else:
            return word
    return None


def parse_args(words: Sequence[str]) -> argparse.Namespace:
    """``words`` parsed as the full parser parses them, building only the parser of the
    command they name when that is enough (see :data:`COMMAND_GROUPS`). A word the
    one-command parser does not read as it expects (a value taken for the command, a
    usage error) sends them to the full parser, which reads (or refuses) them itself."""
    command = command_word(words)
    if command is None and command_word([*words, "dashboard"]) == "dashboard":
        command = "dashboard"  # top-level options alone: the dashboard, no group needed
    if command is not None:
        try:
            return build_parser(command, _parser_class=_OneCommandParser).parse_args(words)
        except _NotThisCommand:
            pass
    return build_parser().parse_args(words)


def build_parser(
    command: str | None = None, *, _parser_class: type[_Parser] = _Parser
) -> argparse.ArgumentParser:
    """The ``mlconsole`` parser; with ``command``, holding only the commands of its group
    (and this module's own), every command otherwise."""
    parser = _parser_class(
        prog="mlconsole",
        description=(
            "Terminal incident console for ML models in production: SLIs, alerts, "
            "runbooks and mitigations. With no command, opens the dashboard."
        ),
        epilog=(
            "Config lookup: --config, then $MLCONSOLE_CONFIG, then "
            "$XDG_CONFIG_HOME/mlconsole/config.yaml. "
            f"{EXIT_CODES_HELP}"
        ),
    )
    parser.add_argument("--version", action="version", version=f"mlconsole {__version__}")
    parser.add_argument("-c", "--config", metavar="PATH", help="config file to use")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="no mutations: mitigation keys are hidden and action commands refuse",
    )
    parser.add_argument(
        "--actor",
        metavar="NAME",
        help="who the audit log names (default: actions.actor, $MLCONSOLE_ACTOR, user@host)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_parser_class)

    dash = sub.add_parser("dashboard", help="open the dashboard (the default)")
    dash.set_defaults(func=cmd_dashboard)

    status = sub.add_parser(
        "status",
        help="print SLIs, alerts and source health once, non-interactively",
        description="Refresh every source once and print the snapshot. Exit codes: "
        "0 healthy, 1 alerts firing, 2 usage or config error, 3 a source unreachable "
        "(3 wins over 1: the picture is incomplete).",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on slow sources after this long (default: each source's timeout "
        "times its attempts)",
    )
    status.set_defaults(func=cmd_status)

    check = sub.add_parser(
        "check-config",
        help="validate a config file and print every error with its location",
        description="Validate a config file. Prints OK, or every error as "
        "file:line:col: key: message, and exits 2.",
    )
    check.add_argument("path", nargs="?", help="file to check (default: the config lookup)")
    check.set_defaults(func=cmd_check_config)

    for names, where in COMMAND_GROUPS.items():
        if command is None or command in names:
            module, function = where.split(":")
            getattr(importlib.import_module(module), function)(sub)
    for name, command_parser in sub.choices.items():
        if name != "lab":  # the lab's commands read their state dir, not a config
            _config_option_everywhere(command_parser)
    return parser


def _config_option_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-c/--config`` after the command too (``mlconsole status --config FILE``), on
    ``parser`` and every command under it; given before the command, it stands unless
    given again after it."""
    if "--config" not in parser._option_string_actions:
        parser.add_argument(
            "-c", "--config", metavar="PATH", default=argparse.SUPPRESS, help="config file to use"
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _config_option_everywhere(nested)


def cmd_check_config(args: argparse.Namespace) -> int:
    from console.config.paths import find_config

    path, why = find_config(args.path or args.config)
    if path is None:
        print(f"mlconsole: no config to check ({why})", file=sys.stderr)
        return ExitCode.USAGE
    from console.config.loader import load_config_located
    from console.config.located import ConfigError
    from console.triage.promql_check import check_syntax, config_expressions

    try:
        config, located = load_config_located(path)
    except ConfigError as exc:
        for issue in sorted(exc.issues, key=lambda i: (i.line, i.col)):
            print_inert(issue)
        print(f"{len(exc.issues)} error(s) in {path}")
        return ExitCode.USAGE
    expressions = config_expressions(config, located)
    import asyncio

    report = asyncio.run(check_syntax(expressions, config=config))
    if report.issues:
        for issue in sorted(report.issues, key=lambda i: (i.line, i.col)):
            print_inert(issue)
        print(f"{len(report.issues)} error(s) in {path} ({report.line(len(expressions))})")
        return ExitCode.USAGE
    print(f"{path}: OK ({len(config.sources)} sources, {len(config.slis)} SLIs)")
    print(report.line(len(expressions)))
    return ExitCode.OK


def cmd_status(args: argparse.Namespace) -> int:
    config = config_for(args)
    import asyncio
    import contextlib
    import time

    from console.cli.status import exit_code
    from console.sources.build import build_adapters
    from console.sources.poller import Poller
    from console.sources.snapshot import Snapshot

    async def collect() -> tuple[Snapshot, float]:
        # Every source is judged as of when it was asked, not when the slowest one
        # answered: a source that answered during this run is fresh, however long
        # another one took.
        asked = time.time()
        adapters, failures = build_adapters(config)
        poller = Poller(config, adapters, load_errors=failures)
        try:
            # Long enough for every attempt of the slowest source, then give up on it.
            budget = max((s.retry_budget for s in config.sources.values()), default=5.0)
            with contextlib.suppress(TimeoutError):  # what did not answer stays down/pending
                await asyncio.wait_for(poller.refresh_once(), timeout=args.wait or budget + 2)
            return poller.snapshot, asked
        finally:
            await poller.stop()

    snapshot, now = asyncio.run(collect())
    if args.json:
        import json

        print(json.dumps(snapshot.as_dict(now), indent=2, sort_keys=False))
    else:
        from console.cli.status import render_status

        render_status(snapshot, config, now)
    return exit_code(snapshot, now)


def cmd_dashboard(args: argparse.Namespace) -> int:
    config = config_for(args)
    from console.memory import DASHBOARD_ARENAS, cap_arenas
    from screens.app import create_app

    cap_arenas(DASHBOARD_ARENAS)  # before the app starts any thread
    app = create_app(config, read_only=args.read_only, actor=args.actor)
    app.run()
    leave_the_heap()
    return app.return_code or ExitCode.OK


def leave_the_heap() -> None:
    """After the dashboard has quit, before the process ends.

    The app has restored the terminal and closed its sources, store and audit log
    (``MLConsoleApp.on_unmount``). What it leaves is its heap: at a thousand models,
    hundreds of thousands of objects in reference cycles (widgets and their parents,
    snapshots), which the interpreter's last collections at exit walk and free one
    by one, 1-1.5 s after ``q`` for memory the system takes back at once anyway.
    Frozen, the collector leaves them alone. The exit is otherwise the ordinary one:
    output flushed, atexit handlers run, the exit code kept.
    """
    import gc

    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["--version"]:  # what argparse would print, without building every parser
        print(f"mlconsole {__version__}")
        return ExitCode.OK
    foreign = foreign_packages()
    if foreign:
        for line in foreign:
            print_inert(f"mlconsole: {line}", file=sys.stderr)
        print(f"mlconsole: refusing to start: {INSTALL_HINT}", file=sys.stderr)
        return ExitCode.USAGE
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
    try:
        args = parse_args(words)
        func = getattr(args, "func", cmd_dashboard)
        code = func(args)
    except CommandExit as exit_:
        return exit_.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `mlconsole status | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    finally:
        gc.set_threshold(*thresholds)
    if argv is None and func is cmd_status:
        # The process ends now, and status holds nothing open (its sources are
        # closed): its heap is left to the system, as the dashboard's is (about 13%
        # of a bare interpreter's start, in the collections at exit).
        leave_the_heap()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
