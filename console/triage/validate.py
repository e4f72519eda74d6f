"""Check runbook files: schema, step graph, templates and regexes, every error located.

Schema problems (YAML syntax, unknown keys, wrong types) come from the same
loader as the config, so they carry ``file:line:col``. On top of the schema a
runbook must make sense as a procedure:

* every branch (``on_true``, ``on_false``, ``choices[i].next``, ``next``) names a step;
* step ids are unique;
* every step is reachable from the first one;
* no loop runs by itself: a cycle needs an ``ask`` step, so a person decides to go round;
* every path can end at a ``conclude`` step;
* templates are ``{{ labels.NAME }}`` or ``{{ vars.NAME }}`` and name something defined;
* ``match`` regexes compile and no ``match`` alternative is empty (it would match every alert).

A runbook with no ``match`` at all is fine: alerts can name it by id.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from console.config.loader import parse_yaml, read_regular_file, validate, yaml_children
from console.config.located import ConfigError, Issue, Loc, Located
from console.triage.runbook import (
    ANY_TEMPLATE,
    METRICS_URL,
    TEMPLATE,
    ActionStep,
    AskStep,
    CheckStep,
    Choice,
    ConcludeStep,
    LinkStep,
    NoteStep,
    RegexMatch,
    Runbook,
    Step,
    next_steps,
    promql_placements,
    template_fields,
    url_placement_problem,
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
_FIELD_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
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
        _Checker(runbook, located).run()
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
            hint = _suggest(str(raw.get("kind")), _STEP_CLASSES) or f"one of {_KINDS}"
        elif message.startswith("String should match pattern") and loc:
            message, hint = _pattern_message(loc[-1])
        elif message == "Input should be a valid string" and not hint:
            if isinstance(raw, bool | int | float):
                hint = "put the value in quotes"
        elif message == "unknown key" and not hint and kind is not None:
            model = Choice if len(loc) >= 4 and loc[2] == "choices" else _STEP_CLASSES[kind]
            allowed = list(model.model_fields)
            hint = _suggest(str(loc[-1]), allowed) or f"allowed keys here: {', '.join(allowed)}"
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


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"did you mean `{close[0]}`?" if close else ""


def _field_loc(field: str) -> Loc:
    """``choices[1].next`` → ``("choices", 1, "next")``; ``params.a.b`` → ``("params", "a.b")``."""
    if field.startswith("params."):
        return ("params", field.removeprefix("params."))
    return tuple(int(i) if i else name for i, name in _FIELD_PART.findall(field))


# --- the procedure as a graph ----------------------------------------------------------


class _Checker:
    def __init__(self, runbook: Runbook, located: Located) -> None:
        self.runbook = runbook
        self.located = located
        self.steps = runbook.steps
        self.index: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            self.index.setdefault(step.id, i)

    def issue(self, loc: Loc, message: str, hint: str = "") -> None:
        self.located.issue(self.located.position(loc), loc, message, hint)

    def run(self) -> None:
        self.duplicates()
        edges, dangling = self.branches()
        self.unreachable(edges)
        loops = self.loops_without_ask(edges)
        self.never_concluding(edges, dangling, loops)
        self.templates()
        self.matches()

    def step_of(self, step_id: str) -> Step:
        return self.steps[self.index[step_id]]

    def duplicates(self) -> None:
        for i, step in enumerate(self.steps):
            first = self.index[step.id]
            if first != i:
                line = self.located.position(("steps", first, "id"))[0]
                self.issue(
                    ("steps", i, "id"),
                    f"duplicate step id {step.id!r}",
                    f"first used at line {line}; step ids must be unique",
                )

    def branches(self) -> tuple[dict[str, list[str]], set[str]]:
        """Edges between existing steps; report (and collect) branches to no step."""
        edges: dict[str, list[str]] = {}
        dangling: set[str] = set()
        for step_id, i in self.index.items():
            edges[step_id] = []
            for field, target in next_steps(self.steps[i]):
                if target in self.index:
                    if target not in edges[step_id]:
                        edges[step_id].append(target)
                    continue
                dangling.add(step_id)
                hint = _suggest(target, self.index) or (
                    f"steps are: {', '.join(list(self.index)[:12])}"
                    + (", ..." if len(self.index) > 12 else "")
                )
                self.issue(
                    ("steps", i, *_field_loc(field)),
                    f"step {step_id!r} branches to {target!r}, which is not a step",
                    hint,
                )
        return edges, dangling

    def unreachable(self, edges: Mapping[str, list[str]]) -> None:
        start = self.runbook.start
        seen = _reach({start}, edges)
        for step_id, i in self.index.items():
            if step_id not in seen:
                self.issue(
                    ("steps", i, "id"),
                    f"step {step_id!r} is unreachable from the first step {start!r}",
                    "branch to it from another step, or remove it",
                )

    def loops_without_ask(self, edges: Mapping[str, list[str]]) -> list[set[str]]:
        """Cycles that no person interrupts: each runs by itself, possibly forever."""
        automatic = {
            s: [t for t in targets if not isinstance(self.step_of(t), AskStep)]
            for s, targets in edges.items()
            if not isinstance(self.step_of(s), AskStep)
        }
        loops = []
        for component in _cycles(automatic, self.index):
            cycle = _cycle_through(component[0], automatic, set(component))
            closing = cycle[-2]
            field = next(f for f, t in next_steps(self.step_of(closing)) if t == cycle[0])
            self.issue(
                ("steps", self.index[closing], *_field_loc(field)),
                f"loop with no ask step: {' -> '.join(cycle)}",
                "put an ask step in the loop so the responder decides whether to go round again",
            )
            loops.append(set(component))
        return loops

    def never_concluding(
        self, edges: Mapping[str, list[str]], dangling: set[str], loops: list[set[str]]
    ) -> None:
        """Closed loops with no way out to a conclude step (branches to no step count as
        a way out: they are reported already)."""
        reverse: dict[str, list[str]] = {s: [] for s in edges}
        for source, targets in edges.items():
            for target in targets:
                reverse[target].append(source)
        ends = {s for s in edges if isinstance(self.step_of(s), ConcludeStep)} | dangling
        good = _reach(ends, reverse)
        bad = {s: [t for t in edges[s] if t not in good] for s in edges if s not in good}
        for component in _cycles(bad, self.index):
            members = set(component)
            if any(t not in members for s in component for t in bad[s]):
                continue  # it leads to another closed loop, which is reported instead
            if members in loops:
                continue  # reported as a loop with no ask step
            first = component[0]
            cycle = _cycle_through(first, bad, members)
            self.issue(
                ("steps", self.index[first], "id"),
                f"no path from step {first!r} reaches a conclude step: "
                f"{' -> '.join(cycle)} goes round forever",
                "give the loop a way out to a step that ends at a conclude step",
            )

    def templates(self) -> None:
        known_labels = self.runbook.known_labels()
        variables = self.runbook.vars
        for i, step in enumerate(self.steps):
            for field, text in template_fields(step):
                loc: Loc = ("steps", i, *_field_loc(field))
                for match in ANY_TEMPLATE.finditer(text):
                    self.template(loc, match.group(0), known_labels, variables)
                self.template_positions(loc, field, text)
                if "{{" in ANY_TEMPLATE.sub("", text):
                    self.issue(
                        loc,
                        "`{{` with no matching `}}` on the same line",
                        "write templates as {{ labels.NAME }} or {{ vars.NAME }}",
                    )

    def template_positions(self, loc: Loc, field: str, text: str) -> None:
        """A template where no escape makes its value safe: in a query, a backtick
        string or a label outside any string; in a link, a label in the scheme or host.
        (Values in quoted strings and regex matchers are escaped when rendered.)"""
        if field == "query":
            for placement in promql_placements(text):
                if placement.problem is not None:
                    self.issue(
                        loc,
                        f"template {placement.match.group(0)} {placement.problem}",
                        "put it in a double-quoted matcher value, e.g. "
                        '{model="{{ labels.model }}"}, where it is escaped',
                    )
        elif field == "url":
            for match in TEMPLATE.finditer(text):
                problem = url_placement_problem(text, match)
                if problem is not None:
                    self.issue(
                        loc,
                        f"template {match.group(0)} {problem}",
                        "write the host in the runbook (or in `vars`); a label may fill "
                        "the path or the query, where it is URL-encoded",
                    )

    def template(
        self, loc: Loc, text: str, known_labels: set[str], variables: Mapping[str, str]
    ) -> None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        match = TEMPLATE.fullmatch(text)
        if match is None:
            self.issue(
                loc,
                f"template {shown} is not allowed",
                "templates substitute only: {{ labels.NAME }}, {{ vars.NAME }} or "
                "{{ metrics.url }}, no expressions",
            )
            return
        scope, name = match.group(1), match.group(2)
        if scope == "metrics" and name != METRICS_URL:
            self.issue(
                loc,
                f"template {shown}: the metrics source offers only {{{{ metrics.url }}}}",
                "write {{ metrics.url }} for its address in a browser",
            )
        elif scope == "vars" and name not in variables:
            self.issue(
                loc,
                f"template {shown}: no variable {name!r} in `vars`",
                _suggest(name, variables) or f"add `{name}: ...` under `vars:`",
            )
        elif scope == "labels" and name not in known_labels:
            self.issue(
                loc,
                f"template {shown}: label {name!r} is not declared",
                _suggest(name, known_labels)
                or f"add `{name}` to `labels:` (or match on it) so alerts are known to have it",
            )

    def matches(self) -> None:
        for a, alternative in enumerate(self.runbook.match):
            if not alternative:
                self.issue(
                    ("match", a),
                    "an empty match alternative matches every alert",
                    "name at least one label, e.g. `{alertname: ModelErrorBudgetBurn}`",
                )
            for name, want in alternative.items():
                if not isinstance(want, RegexMatch):
                    continue
                try:
                    re.compile(want.regex)
                except re.error as exc:
                    where = f"at position {exc.pos} of " if exc.pos is not None else "in "
                    self.issue(
                        ("match", a, name, "regex"),
                        f"invalid regex: {exc.msg}",
                        f"{where}{want.regex!r}",
                    )
                except (OverflowError, RecursionError, ValueError) as exc:
                    self.issue(("match", a, name, "regex"), f"invalid regex: {exc}")


def _reach(starts: Iterable[str], edges: Mapping[str, list[str]]) -> set[str]:
    seen = set(starts)
    queue = deque(seen)
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _cycles(edges: Mapping[str, list[str]], order: Mapping[str, int]) -> list[list[str]]:
    """Strongly connected components that contain a cycle, members in file order,
    components ordered by their first member (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, []):
                    found.append(sorted(component, key=order.__getitem__))
    return sorted(found, key=lambda c: order[c[0]])


def _cycle_through(start: str, edges: Mapping[str, list[str]], within: set[str]) -> list[str]:
    """Shortest ``start -> ... -> start`` inside a strongly connected component."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in edges.get(node, []):
            if target not in within:
                continue
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if target not in parent:
                parent[target] = node
                queue.append(target)
    return [start, start]  # not reached for a component with a cycle


__all__ = [
    "RUNBOOK_SUFFIXES",
    "find_runbook_files",
    "load_runbook",
    "validate_runbook_file",
    "validate_runbook_files",
    "validate_runbook_text",
]
