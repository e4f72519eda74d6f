"""Runbooks: YAML triage procedures, as typed models, with substitution-only templates.

A runbook is a graph of steps. ``check`` steps run PromQL and branch on a
condition, ``ask`` steps branch on the responder's answer, ``action`` steps
propose a mitigation, ``note`` and ``link`` steps inform, and every path ends
at a ``conclude`` step that classifies the cause as data, model or infra.

Templates are substitution only: ``{{ labels.model }}``, ``{{ vars.window }}`` and
``{{ metrics.url }}`` (the metrics source's address for a browser).
There are no expressions, filters, code or shell, ever. Values are escaped for
PromQL string literals when substituted into a query.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from console.promql import promql_escape, regex_escape

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
TEMPLATE = re.compile(r"\{\{\s*(labels|vars|metrics)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: ``{{ metrics.url }}``: where people open the metrics source in a browser (its
#: ``external_url``, else its ``url``), so links follow the config, not one lab's port.
METRICS_URL = "url"
ANY_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
CONDITION = re.compile(
    r"^\s*(?:(absent|present)|(==|!=|<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))\s*$"
)

Cause = Literal["data", "model", "infra", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class RegexMatch(_Model):
    """Match a label value by a regular expression (fully anchored)."""

    regex: str


class _Step(_Model):
    id: str = Field(pattern=ID_PATTERN)
    """Unique within the runbook; other steps branch to it by this id."""
    title: str = ""
    """Short heading shown on the runbook screen."""


class CheckStep(_Step):
    """Run PromQL and branch on a condition over its result."""

    kind: Literal["check"]
    query: str = Field(min_length=1)
    """PromQL; may use ``{{ labels.X }}`` and ``{{ vars.Y }}``."""
    condition: str = Field(pattern=CONDITION.pattern)
    """``> 0.25``, ``== 0``, ``absent`` or ``present``. A comparison holds if any
    series of the result satisfies it; an empty result makes it false."""
    on_true: str
    """Step to go to when the condition holds."""
    on_false: str
    """Step to go to when it does not."""


class Choice(_Model):
    label: str = Field(min_length=1)
    """What the responder sees."""
    next: str
    """Step this answer leads to."""


class AskStep(_Step):
    """Ask the responder a question; each choice leads to a step."""

    kind: Literal["ask"]
    question: str = Field(min_length=1)
    choices: list[Choice] = Field(min_length=2, max_length=9)
    """Two to nine choices, picked with the number keys 1-9."""


class ActionStep(_Step):
    """Propose a named mitigation; the responder confirms or skips it."""

    kind: Literal["action"]
    action: str = Field(pattern=ID_PATTERN)
    """Mitigation name, e.g. ``rollback``, ``fallback``, ``silence``, ``pipeline-pause``."""
    params: dict[str, str] = Field(default_factory=dict)
    """Parameters, templated like queries (but not PromQL-escaped)."""
    sli: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    """The SLI this mitigation should bring back (a name from the config's ``slis``),
    watched after it when the alert names none; the alert's ``sli`` label wins."""
    next: str
    """Step after the action is confirmed or skipped."""


class NoteStep(_Step):
    """Markdown for the responder to read."""

    kind: Literal["note"]
    text: str = Field(min_length=1)
    next: str


class LinkStep(_Step):
    """A URL to open, such as a dashboard."""

    kind: Literal["link"]
    url: str = Field(pattern=r"^(https?://|\{\{\s*metrics\.url\s*\}\}/)")
    """A full ``http(s)://`` URL, or one on the metrics source: ``{{ metrics.url }}/graph?...``."""
    next: str


class ConcludeStep(_Step):
    """The end of a path: the cause class and a summary."""

    kind: Literal["conclude"]
    cause: Cause
    summary: str = Field(min_length=1)


Step = Annotated[
    CheckStep | AskStep | ActionStep | NoteStep | LinkStep | ConcludeStep,
    Field(discriminator="kind"),
]


class Runbook(_Model):
    """One triage procedure for one failure mode."""

    id: str = Field(pattern=ID_PATTERN)
    """Unique id; an alert names it in its ``runbook`` label or annotation."""
    title: str = Field(min_length=1)
    description: str = ""
    version: int = Field(default=1, ge=1)
    owner: str = ""
    """Team or person who keeps this runbook true."""
    match: list[dict[str, str | RegexMatch]] = Field(default_factory=list)
    """Alternatives; an alert matches if every label of one alternative matches
    (a string is exact, ``{regex: ...}`` a full-match regular expression)."""
    labels: list[str] = Field(default_factory=list)
    """Alert labels the templates need, beyond those named in ``match``."""
    vars: dict[str, str] = Field(default_factory=dict)
    """Constants for templates, e.g. ``window: 5m``."""
    steps: list[Step] = Field(min_length=1)
    """The first step is where a walk starts."""

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def start(self) -> str:
        return self.steps[0].id

    def known_labels(self) -> set[str]:
        return set(self.labels) | {name for alt in self.match for name in alt}

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with ``labels`` matches one of the ``match`` alternatives."""
        for alternative in self.match:
            if all(_label_matches(labels.get(name), want) for name, want in alternative.items()):
                return True
        return False


def _label_matches(value: str | None, want: str | RegexMatch) -> bool:
    if value is None:
        return False
    if isinstance(want, RegexMatch):
        try:
            return re.fullmatch(want.regex, value) is not None
        except re.error:
            return False
    return value == want


def next_steps(step: Step) -> list[tuple[str, str]]:
    """``(field, target id)`` for every branch out of ``step``."""
    match step:
        case CheckStep():
            return [("on_true", step.on_true), ("on_false", step.on_false)]
        case AskStep():
            return [(f"choices[{i}].next", c.next) for i, c in enumerate(step.choices)]
        case ConcludeStep():
            return []
        case _:
            return [("next", step.next)]


def template_fields(step: Step) -> list[tuple[str, str]]:
    """``(field, text)`` of every templated string of a step."""
    match step:
        case CheckStep():
            return [("query", step.query)]
        case ActionStep():
            return [(f"params.{k}", v) for k, v in step.params.items()]
        case NoteStep():
            return [("text", step.text)]
        case LinkStep():
            return [("url", step.url)]
        case AskStep():
            return [("question", step.question)]
        case ConcludeStep():
            return [("summary", step.summary)]
        case _:
            return []


class TemplateError(ValueError):
    """A template names a variable that has no value, or stands where no value can be
    escaped safely."""


Position = Literal["bare", "double", "single", "backtick", "comment"]
"""Where a template stands in PromQL: outside any string, inside a double-quoted,
single-quoted or backtick (raw) string, or in a ``#`` comment."""


@dataclass(frozen=True, slots=True)
class Placement:
    """One template in a PromQL text: the match, where it stands, and whether its
    string is a regex matcher's value (``=~`` or ``!~``)."""

    match: re.Match[str]
    position: Position
    regex: bool = False

    @property
    def scope(self) -> str:
        return self.match.group(1)

    @property
    def problem(self) -> str | None:
        """Why no value can be substituted here safely, or None.

        A backtick string has no escapes, so a value holding a backtick would end it;
        a label value outside a string (or in a comment, which a newline ends) would
        be PromQL code. ``vars`` are the runbook's own constants and may stand bare
        (``[{{ vars.window }}]``)."""
        if self.position == "backtick":
            return "stands in a backtick string, which has no escapes"
        if self.position in ("bare", "comment") and self.scope == "labels":
            where = "outside any string" if self.position == "bare" else "in a comment"
            return f"stands {where}, where a label value would be PromQL code"
        return None


_REGEX_OPERATOR = re.compile(r"[=!]~\s*$")


def promql_placements(text: str) -> list[Placement]:
    """Every template of a PromQL text, with where it stands (see :class:`Placement`).

    A small scanner of PromQL's lexical states: strings (with their escapes), raw
    strings and comments; templates are found wherever they stand."""
    found: list[Placement] = []
    state: Position = "bare"
    regex = False
    quote = ""
    i = 0
    while i < len(text):
        match = TEMPLATE.match(text, i) if text.startswith("{{", i) else None
        if match is not None:
            found.append(Placement(match, state, regex and state != "bare"))
            i = match.end()
            continue
        char = text[i]
        if state == "bare":
            if char in "\"'`":
                state = {'"': "double", "'": "single", "`": "backtick"}[char]  # type: ignore[assignment]
                quote = char
                regex = _REGEX_OPERATOR.search(text, 0, i) is not None
            elif char == "#":
                state = "comment"
        elif state == "comment":
            if char == "\n":
                state = "bare"
        elif char == "\\" and state != "backtick":
            i += 1  # the escaped character
        elif char == quote:
            state, regex = "bare", False
        i += 1
    return found


def _escape_for(placement: Placement, value: str) -> str:
    problem = placement.problem
    if problem is not None:
        raise TemplateError(f"{placement.match.group(0)} {problem}")
    if placement.position in ("bare", "comment"):
        return value
    if placement.regex:
        value = regex_escape(value)
    return promql_escape(value, '"' if placement.position == "double" else "'")


# The scheme and host are over once a path, query or fragment starts, after either a
# written ``scheme://host`` or a template the runbook or the config controls.
_AUTHORITY_END = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*|\{\{\s*(?:vars|metrics)\.\w+\s*\}\})[/?#]"
)


def url_placement_problem(text: str, match: re.Match[str]) -> str | None:
    """Why a label's value may not stand where ``match`` is in a link's URL, or None:
    a label never supplies the scheme, the host or the port (it could send the
    responder anywhere); in the path and query it is URL-encoded."""
    if match.group(1) != "labels":
        return None
    if _AUTHORITY_END.match(text[: match.start()]) is None:
        return "stands in the URL's scheme or host, which a label value must not choose"
    return None


def render(
    text: str,
    labels: Mapping[str, str],
    variables: Mapping[str, str],
    *,
    promql: bool = False,
    metrics: Mapping[str, str] | None = None,
    url: bool = False,
) -> str:
    """Substitute ``{{ labels.X }}``, ``{{ vars.Y }}`` and ``{{ metrics.url }}`` (from
    ``metrics``); nothing else is evaluated.

    ``promql``: each value is escaped for the position it stands in (a double- or
    single-quoted string, a regex matcher's value); a template where no escape is safe
    (a backtick string, a label outside any string) raises :class:`TemplateError`.
    ``url``: a label's value is URL-encoded, and may not stand in the scheme or host.
    """

    def value_of(match: re.Match[str]) -> str:
        scope, name = match.group(1), match.group(2)
        source = {"labels": labels, "vars": variables}.get(scope, metrics or {})
        if name not in source:
            if scope == "metrics":
                raise TemplateError(f"{{{{ metrics.{name} }}}} has no value: no metrics source")
            raise TemplateError(f"{{{{ {scope}.{name} }}}} has no value")
        return source[name]

    if promql:
        out, last = [], 0
        for placement in promql_placements(text):
            value = _escape_for(placement, value_of(placement.match))
            out += [text[last : placement.match.start()], value]
            last = placement.match.end()
        return "".join([*out, text[last:]])

    def substitute(match: re.Match[str]) -> str:
        value = value_of(match)
        if not url or match.group(1) != "labels":
            return value
        problem = url_placement_problem(text, match)
        if problem is not None:
            raise TemplateError(f"{match.group(0)} {problem}")
        return quote(value, safe="")

    return TEMPLATE.sub(substitute, text)


def parse_condition(condition: str) -> tuple[str, float | None]:
    """``"> 0.25"`` → ``(">", 0.25)``; ``"absent"`` → ``("absent", None)``."""
    match = CONDITION.match(condition)
    if match is None:
        raise ValueError(f"{condition!r} is not a condition")
    if match.group(1):
        return match.group(1), None
    return match.group(2), float(match.group(3))


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(condition: str, values: list[float]) -> bool:
    """Apply a condition to the values of a query result (one per series)."""
    op, threshold = parse_condition(condition)
    if op == "absent":
        return not values
    if op == "present":
        return bool(values)
    assert threshold is not None
    compare = _COMPARE[op]
    return any(compare(v, threshold) for v in values)
