"""A runbook's procedure as a graph: every step reachable, every path ending in a
conclusion, no loop without a way out, and each step's templates and regexes
checked, every error located."""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Iterable, Mapping

from console.config.located import Loc, Located
from console.triage.runbook import (
    ANY_TEMPLATE,
    METRICS_URL,
    TEMPLATE,
    AskStep,
    ConcludeStep,
    RegexMatch,
    Runbook,
    Step,
    next_steps,
    promql_placements,
    template_fields,
    url_placement_problem,
)

# --- the procedure as a graph ----------------------------------------------------------


_FIELD_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"did you mean `{close[0]}`?" if close else ""


def field_loc(field: str) -> Loc:
    """``choices[1].next`` → ``("choices", 1, "next")``; ``params.a.b`` → ``("params", "a.b")``."""
    if field.startswith("params."):
        return ("params", field.removeprefix("params."))
    return tuple(int(i) if i else name for i, name in _FIELD_PART.findall(field))


class GraphChecker:
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
                hint = suggest(target, self.index) or (
                    f"steps are: {', '.join(list(self.index)[:12])}"
                    + (", ..." if len(self.index) > 12 else "")
                )
                self.issue(
                    ("steps", i, *field_loc(field)),
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
                ("steps", self.index[closing], *field_loc(field)),
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
                loc: Loc = ("steps", i, *field_loc(field))
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
                suggest(name, variables) or f"add `{name}: ...` under `vars:`",
            )
        elif scope == "labels" and name not in known_labels:
            self.issue(
                loc,
                f"template {shown}: label {name!r} is not declared",
                suggest(name, known_labels)
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
