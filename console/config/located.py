"""Errors located at file:line:col: where each key and value of a YAML file is, and
how a validation error is said there, with a hint ("did you mean")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]

ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MAX_DEPTH = 64
"""Deepest nesting a file may have."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a file, with where it is and what to do."""

    file: str
    line: int
    col: int
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.col}:{key} {self.message}{hint}"


class ConfigError(Exception):
    """A file could not be loaded. ``issues`` lists every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Located:
    """Python data built from YAML nodes, plus the position of every key and value."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[Loc, tuple[int, int]] = {}
        self.keys: dict[Loc, tuple[int, int]] = {}
        self.issues: list[Issue] = []
        self.root: yaml.Node | None = None
        """The composed YAML, once parsed."""
        self._constructor = yaml.constructor.SafeConstructor()
        self._aborted = False
        self._on_path: set[int] = set()

    def issue(self, pos: tuple[int, int], loc: Loc, message: str, hint: str = "") -> None:
        self.issues.append(Issue(self.file, pos[0], pos[1], dotted(loc), message, hint))

    def build(self, node: yaml.Node, loc: Loc = (), depth: int = 0) -> Any:
        pos = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.values[loc] = pos
        if self._aborted:
            return None
        if depth > MAX_DEPTH or id(node) in self._on_path:
            # parse_yaml refuses aliases into themselves first; this keeps build safe alone.
            self._aborted = True
            self.issue(
                pos,
                loc,
                f"the file nests deeper than {MAX_DEPTH} levels",
                "flatten it; an *alias inside the value it names nests for ever",
            )
            return None
        self._on_path.add(id(node))
        try:
            return self._build(node, loc, depth)
        finally:
            self._on_path.discard(id(node))

    def _build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        pos = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key_pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.issue(
                        key_pos, loc, "YAML merge keys (<<) are not supported", "write the keys out"
                    )
                    continue
                key = self.build(key_node, (*loc, "<key>"), depth + 1)
                if self._aborted:
                    break
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.issue(key_pos, loc, "a key must be a plain scalar")
                    continue
                if key in out:
                    self.issue(
                        key_pos,
                        (*loc, str(key)),
                        "duplicate key",
                        "YAML keeps only the last one; remove the other",
                    )
                self.keys[(*loc, str(key))] = key_pos
                out[str(key) if isinstance(key, str) else key] = self.build(
                    value_node, (*loc, str(key)), depth + 1
                )
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.issue(pos, loc, f"bad value: {getattr(exc, 'problem', exc)}")
            return None
        if isinstance(value, str):
            return self._expand_env(value, pos, loc)
        return value

    def _expand_env(self, text: str, pos: tuple[int, int], loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None:
                if default is not None:
                    return default
                self.issue(
                    pos,
                    loc,
                    f"environment variable ${{{name}}} is not set",
                    f"export {name}=... or write ${{{name}:-default}}",
                )
                return ""
            return value

        return ENV_REF.sub(replace, text) if "$" in text else text

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """Where ``loc`` is written, or failing that its nearest written parent."""
        probe = tuple(loc)
        if key and probe in self.keys:
            return self.keys[probe]
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


def validation_hint(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return unknown_key_hint(str(loc[-1]), allowed_keys(model, loc[:-1]))
    if kind == "missing":
        return f"add `{loc[-1]}:`" if loc else ""
    if kind == "string_pattern_mismatch":
        if loc and loc[-1] == "url":
            return "write a full URL such as http://127.0.0.1:9090"
        return "use letters, digits, '_', '.' and '-', starting with a letter"
    if kind.startswith(("float", "int")):
        return "write a number"
    return ""


def unknown_key_hint(key: str | None, allowed: list[str]) -> str:
    """For an unknown ``key``: the allowed key it is closest to, else the allowed keys
    ("" when none is)."""
    import difflib  # only for a config in error

    close = difflib.get_close_matches(key, allowed, n=1) if key is not None else []
    if close:
        return f"did you mean `{close[0]}`?"
    return f"allowed keys here: {', '.join(sorted(allowed))}" if allowed else ""


def allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the pydantic model that sits at ``loc`` inside ``model``, walking
    the annotations (optional fields, ``dict`` values and ``list`` items); [] where no
    model is."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` → X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
