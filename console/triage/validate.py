"""Check runbook files: schema, step graph (:mod:`console.triage.graph`), templates and
regexes, every error located."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from console.config.loader import parse_yaml, read_regular_file, validate, yaml_children
from console.config.located import ConfigError, Issue, Loc, Located
from console.triage.graph import GraphChecker, suggest
from console.triage.runbook import (
    ActionStep,
    AskStep,
    CheckStep,
    Choice,
    ConcludeStep,
    LinkStep,
    NoteStep,
    Runbook,
)

RUNBOOK_SUFFIXES = (".yaml", ".yml")

_STEP_CLASSES: dict[str, type[BaseModel]] = {
    "check": CheckStep,
    "ask": AskStep,
    "action": ActionStep,
    "note": NoteStep,
    "link": LinkStep,
    "conclude": ConcludeStep,
}
_KINDS = ", ".join(_STEP_CLASSES)
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)")


def validate_runbook_file(path: Path | str) -> tuple[Runbook | None, list[Issue]]:
    """Check one runbook file. Returns ``(runbook, [])`` or ``(None, issues)``.

    Issues are sorted by position. Nothing is raised, whatever the file holds.
    """
    runbook, issues, _ = _check_file(Path(path))
    return runbook, issues


def validate_runbook_text(text: str, file: str) -> tuple[Runbook | None, list[Issue]]:
    """Like :func:`validate_runbook_file`, for YAML ``text``; ``file`` names it in issues."""
    runbook, issues, _ = _check_text(text, file)
    return runbook, issues


def load_runbook(path: Path | str) -> Runbook:
    """Load a runbook that passes every check; raise :class:`ConfigError` listing the issues."""
    runbook, issues = validate_runbook_file(path)
    if runbook is None:
        raise ConfigError(issues)
    return runbook


def find_runbook_files(path: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files in a directory, sorted, as the runbook catalog
    reads them (not its subdirectories); a path that is not a directory is itself."""
    if not path.is_dir():
        return [path]
    try:
        entries = list(path.iterdir())
    except OSError:
        return [path]  # reading it reports why
    return sorted(p for p in entries if p.name.endswith(RUNBOOK_SUFFIXES) and p.is_file())


def validate_runbook_files(
    paths: Sequence[Path],
) -> list[tuple[Path, Runbook | None, list[Issue]]]:
    """Check runbook files and directories; ``(path, runbook, issues)`` per file.

    Two runbooks of one directory may not share an id (the catalog would load only the
    first); across directories they may, as a team's runbook replaces a shipped one.
    A directory with no runbook files in it is an issue of its own.
    """
    results: list[tuple[Path, Runbook | None, list[Issue]]] = []
    checked: set[str] = set()
    first_seen: dict[tuple[str, str], tuple[Path, int]] = {}
    for given in paths:
        files = find_runbook_files(given)
        if not files:
            issue = Issue(str(given), 0, 0, "", "no runbook files (*.yaml, *.yml) in directory")
            results.append((given, None, [issue]))
            continue
        for file in files:
            if os.path.abspath(file) in checked:
                continue
            checked.add(os.path.abspath(file))
            runbook, issues, id_pos = _check_file(file)
            if runbook is not None and id_pos is not None:
                key = (os.path.abspath(file.parent), runbook.id)
                seen = first_seen.setdefault(key, (file, id_pos[0]))
                if seen[0] != file:
                    issue = Issue(
                        str(file),
                        *id_pos,
                        "id",
                        f"runbook id {runbook.id!r} is also used by {seen[0]}:{seen[1]}",
                        "runbooks of one directory need their own ids; only the first loads",
                    )
                    runbook, issues = None, [issue]
            results.append((file, runbook, issues))
    return results


# --- loading ---------------------------------------------------------------------------


def _check_file(path: Path) -> tuple[Runbook | None, list[Issue], tuple[int, int] | None]:
    try:
        text = read_regular_file(path, "runbook")
    except ConfigError as exc:
        return None, exc.issues, None
    return _check_text(text, str(path))


def _check_text(text: str, file: str) -> tuple[Runbook | None, list[Issue], tuple[int, int] | None]:
    data, located = parse_yaml(text, file)
    if not located.issues and not isinstance(data, dict):
        empty = data is None
        located.issue(
            (1, 1),
            (),
            "the runbook file is empty" if empty else "a runbook must be a mapping of keys",
            "start with `id:`, `title:` and `steps:`",
        )
    if not isinstance(data, dict):
        return None, _sorted(located.issues), None
    if located.root is not None:
        _reject_env_references(located.root, located)
    runbook = validate(Runbook, data, _RunbookLocated(located, data))
    if runbook is not None:
        GraphChecker(runbook, located).run()
    if located.issues:
        return None, _sorted(located.issues), None
    return runbook, [], located.position(("id",))


def _reject_env_references(root: yaml.Node, located: Located) -> None:
    """Runbooks are shared, so they must not pull values out of the environment (a
    query or a link could carry a secret away). The loader expands ``${NAME}``; a
    runbook that has one is refused, so the expanded text is never used."""
    located.issues[:] = [
        i for i in located.issues if not i.message.startswith("environment variable $")
    ]
    seen: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(yaml_children(node))
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            for match in _ENV_REF.finditer(node.value):
                if match.group(1) is None:
                    continue  # `$$`, a literal `$`
                located.issue(
                    (node.start_mark.line + 1, node.start_mark.column + 1),
                    (),
                    f"environment reference ${{{match.group(1)}}} in a runbook",
                    "runbooks take values only from {{ vars.NAME }} and {{ labels.NAME }}; "
                    "write $${ for a literal ${",
                )


def _sorted(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.line, i.col, i.key, i.message))


class _RunbookLocated(Located):
    """Maps pydantic's error locations for runbooks back onto the file.

    Pydantic puts the tag of a tagged union in error locations (``steps.0.check.query``)
    and tries each member of ``str | RegexMatch`` in ``match``; this drops those parts,
    keeps the error of the member the value was meant for, and says what to write.
    """

    def __init__(self, base: Located, data: Any) -> None:
        super().__init__(base.file)
        self.values = base.values
        self.keys = base.keys
        self.issues = base.issues
        self.data = data

    def issue(self, pos: tuple[int, int], loc: Loc, message: str, hint: str = "") -> None:
        loc = tuple(loc)
        kind: str | None = None
        if len(loc) >= 3 and loc[0] == "steps" and loc[2] in _STEP_CLASSES:
            kind = str(loc[2])
            loc = loc[:2] + loc[3:]
        branch: str | None = None
        if len(loc) >= 4 and loc[0] == "match" and loc[3] in ("str", "RegexMatch"):
            branch = str(loc[3])
            meant_regex = isinstance(_at(self.data, loc[:3]), dict)
            if (branch == "str") == meant_regex:
                return  # the error of the member the value was not meant for
            loc = loc[:3] + loc[4:]
            if branch == "str":
                message, hint = "must be a string, or {regex: ...}", "write `name: value`"
        raw = _at(self.data, loc)
        if message.startswith("Unable to extract tag") and isinstance(raw, dict):
            message, hint = "step has no `kind`", f"add `kind:`, one of {_KINDS}"
        elif message.startswith("Input tag") and isinstance(raw, dict):
            loc = (*loc, "kind")
            message = f"unknown step kind {raw.get('kind')!r}"
            hint = suggest(str(raw.get("kind")), _STEP_CLASSES) or f"one of {_KINDS}"
        elif message.startswith("String should match pattern") and loc:
            message, hint = _pattern_message(loc[-1])
        elif message == "Input should be a valid string" and not hint:
            if isinstance(raw, bool | int | float):
                hint = "put the value in quotes"
        elif message == "unknown key" and not hint and kind is not None:
            model = Choice if len(loc) >= 4 and loc[2] == "choices" else _STEP_CLASSES[kind]
            allowed = list(model.model_fields)
            hint = suggest(str(loc[-1]), allowed) or f"allowed keys here: {', '.join(allowed)}"
        super().issue(self.position(loc, key=message == "unknown key"), loc, message, hint)


def _pattern_message(field: str | int) -> tuple[str, str]:
    if field == "condition":
        return "not a condition", "write a comparison such as `> 0.25` or `== 0`, or `absent`"
    if field == "url":
        return "not an http(s) URL", (
            "write a full URL starting with http:// or https://, or {{ metrics.url }}/... "
            "for a page of the metrics source"
        )
    return (
        "not a valid name",
        "use lowercase letters, digits, '_' and '-', not starting with '_' or '-'",
    )


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return None
        data = data[part]
    return data


__all__ = [
    "RUNBOOK_SUFFIXES",
    "find_runbook_files",
    "load_runbook",
    "validate_runbook_file",
    "validate_runbook_files",
    "validate_runbook_text",
]
