"""What every command shares: its exit codes, its config, and how it prints text from
outside.

Importing this module stays cheap (``--version`` and ``--help`` pass through the
modules that import it): the config models, pydantic and YAML are imported when a
command asks for its config.
"""

from __future__ import annotations

import argparse
import enum
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from console.config.models import Config


class ExitCode(enum.IntEnum):
    """How a command ended: one table for every command.

    A value means one thing across commands; where a command says it in its own
    words, the value has another name for it (an alias: ``ExitCode.WAITING is
    ExitCode.FIRING``)."""

    OK = 0
    """Success, healthy; an action applied (and recovered); a runbook concluded."""
    FIRING = 1
    """``status``: alerts are firing."""
    NOT_RECOVERED = 1
    """An action applied, but the SLI that paged did not recover (or could not be
    watched)."""
    WAITING = 1
    """``runbook run``: the walk stopped at a question or an action step."""
    DEGRADED = 1
    """``lab status``: a component of the lab is down."""
    USAGE = 2
    """A usage or config error, or nothing to do."""
    UNREACHABLE = 3
    """A source (or the store) could not be reached, or failed."""
    CHECK_FAILED = 3
    """``runbook run``: a check could not be run."""
    NOT_RUNNING = 3
    """``lab``: the lab is not running."""
    REFUSED = 4
    """An action was refused (the state changed since its plan, its target stayed
    locked, read-only mode, not confirmed), or in conflict with another writer."""
    AUDIT = 5
    """The audit log cannot be written, or is not whole: nothing was run."""
    INTERRUPTED = 130
    """Ctrl-C."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 alerts firing (status) or not recovered (actions), 2 usage or "
    "config error, 3 source unreachable, 4 action refused, 5 audit log unwritable."
)
"""The one line of ``--help`` that lists the exit codes."""


class CommandExit(Exception):
    """A command ends here with ``code``; what it had to say is already printed."""

    def __init__(self, code: ExitCode) -> None:
        super().__init__(code)
        self.code = code


def config_for(args: argparse.Namespace, explicit: str | None = None) -> Config:
    """The config a command runs with: ``explicit``, else ``--config``, else the lookup
    (``$MLCONSOLE_CONFIG``, then XDG). Missing or in error, it is said on stderr (every
    error with its file, line and key) and the command ends with :attr:`ExitCode.USAGE`."""
    from console.config.paths import find_config

    path, why = find_config(explicit or args.config)
    if path is None:
        print(
            f"mlconsole: no config found ({why}).\n"
            "  Start the demo lab with `mlconsole lab up` and export the MLCONSOLE_CONFIG it "
            "prints,\n  or copy config.example.yaml to ~/.config/mlconsole/config.yaml.",
            file=sys.stderr,
        )
        raise CommandExit(ExitCode.USAGE)
    from console.config.loader import load_config
    from console.config.located import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print_inert(issue, file=sys.stderr)
        print(f"mlconsole: {len(exc.issues)} error(s) in {path} (from {why})", file=sys.stderr)
        raise CommandExit(ExitCode.USAGE) from None


def print_inert(text: object, file: TextIO | None = None) -> None:
    """Print ``text`` (a line of a command's output that may quote a file or a server)
    made inert, on any terminal encoding: what it cannot encode is escaped."""
    from console.text import inert  # not on the way to `--version`

    stream = sys.stdout if file is None else file
    encoding = getattr(stream, "encoding", None) or "utf-8"
    shown = inert(text).encode(encoding, "backslashreplace").decode(encoding, "replace")
    print(shown, file=stream)


PACKAGES = ("adapters", "screens", "lab", "runbooks")
"""mlconsole's top-level import names besides ``console``: generic, so another
distribution may have one. (Another ``console`` first on the path stops the
``mlconsole`` script itself, before any of this runs.)"""

MARK = 'DISTRIBUTION = "mlconsole"'
"""The line every mlconsole package's ``__init__.py`` holds."""

INSTALL_HINT = (
    "install mlconsole in an environment of its own, with `uv tool install` or "
    "`pipx install` (see the README's Install), or take the other package off PYTHONPATH"
)


def foreign_packages() -> list[str]:
    """The top-level packages this process would import that are not mlconsole's, each
    said with where it was found: a package of another distribution (``adapters`` is
    also a widely used ML library's) earlier on the path, or installed over ours.
    Found without importing them: another library's ``__init__`` may take seconds, or
    fail, and is never run for this."""
    import importlib.util
    import sys

    found = []
    for name in PACKAGES:
        loaded = sys.modules.get(name)
        if loaded is not None:
            ours = getattr(loaded, "DISTRIBUTION", None) == "mlconsole"
            where: object = getattr(loaded, "__file__", None) or name
        else:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError) as exc:
                found.append(f"`{name}` cannot be found ({exc})")
                continue
            if spec is None:
                found.append(f"`{name}` cannot be found")
                continue
            where = spec.origin or list(spec.submodule_search_locations or ())
            ours = _marked(spec.origin)
        if not ours:
            found.append(f"`{name}` is not mlconsole's package here: {where}")
    return found


def _marked(path: str | None) -> bool:
    """Whether the file at ``path`` (a package's ``__init__.py``) carries :data:`MARK`."""
    if not path or not path.endswith(".py"):
        return False
    try:
        with open(path, encoding="utf-8") as source:
            return MARK in source.read()
    except (OSError, UnicodeDecodeError):
        return False
