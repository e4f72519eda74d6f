"""Load YAML into pydantic models, with every error located at file:line:col.

YAML is composed into nodes first, so each value's position is known; the
nodes are then turned into plain Python (resolving ``${ENV_VAR}`` references)
and validated. Validation errors are mapped back to the position of the key
or value they concern. Nothing here raises anything but :class:`ConfigError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from console.config import Config
from console.file_kind import not_regular

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MAX_DEPTH = 64
"""Deepest nesting a file may have."""
MAX_ALIAS_VALUES = 100_000
"""Most values YAML aliases (``*name``) may add to a file by repeating what they
refer to; without a limit a small file can expand without end. Values written out
are not counted: a big file is limited by :data:`MAX_FILE_BYTES` alone."""
MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest config or runbook file read (4 MiB)."""


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

        return _ENV_REF.sub(replace, text) if "$" in text else text

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


def _hint(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> str:
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


def alias_problem(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """The node and message when YAML aliases make ``root`` refer to itself or add
    more than :data:`MAX_ALIAS_VALUES` values; None for an honest file, however big.

    Each node's expanded size is counted once (children first, without recursion);
    what aliases add is the expanded size less the distinct nodes, which is checked
    as sizes grow, so a bomb stops before it costs anything."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = yaml_children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in children)
            # len(size) counts at least the distinct nodes below this one, so the
            # difference never overstates what aliases add.
            if size[key] - len(size) > MAX_ALIAS_VALUES:
                return node, (
                    f"YAML aliases (*name) expand the file by more than {MAX_ALIAS_VALUES} values"
                )
        elif key in on_path:
            return node, "a YAML alias (*name) refers to a value that contains it"
        elif key not in size:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return None


def yaml_children(node: yaml.Node) -> list[yaml.Node]:
    """A node's keys and values, or items; nothing for a scalar."""
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


# libyaml's parser, when PyYAML has it, composes a big file several times faster
# (a 10,000-step runbook: about 2.5 s instead of 7 s); same nodes, same marks.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, file: str) -> tuple[Any, Located]:
    """YAML text → (data, located). Syntax problems land in ``located.issues``."""
    located = Located(file)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        located.issue(
            (line, col),
            (),
            f"YAML syntax error: {problem}",
            "check indentation, colons and quotes near here",
        )
        return None, located
    except yaml.YAMLError as exc:
        located.issue((1, 1), (), f"YAML error: {exc}")
        return None, located
    except RecursionError:
        located.issue((1, 1), (), "YAML nested too deeply")
        return None, located
    if node is None:
        return None, located
    aliased = alias_problem(node)
    if aliased is not None:
        where, message = aliased
        located.issue(
            (where.start_mark.line + 1, where.start_mark.column + 1),
            (),
            message,
            "write repeated values out instead of using *alias references",
        )
        return None, located
    located.root = node
    return located.build(node), located


def validate(model: type[M], data: Any, located: Located) -> M | None:
    """Validate ``data``; every error is added to ``located.issues`` with its position."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc: Loc = tuple(error["loc"])
            # pydantic adds the type name for tagged/union branches; drop non-data parts
            loc = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] == "value_error":
                message = message.removeprefix("Value error, ")
            pos = located.position(loc, key=error["type"] == "extra_forbidden")
            located.issue(pos, loc, message, _hint(error, model, loc))
        return None


def load_file(path: Path, model: type[M], *, what: str = "config") -> M:
    """Read, parse and validate ``path`` as ``model``; raise ConfigError listing every issue."""
    return _load_file(path, model, what)[0]


def read_regular_file(path: Path, what: str = "config") -> str:
    """The UTF-8 text of ``path``, which must be a regular file (a symlink to one is
    fine) of at most :data:`MAX_FILE_BYTES`. A directory, a FIFO (which would block
    the read), a device (``/dev/zero`` never ends) or a socket is refused before it
    is read. Raises ConfigError with one issue, and nothing else."""
    file = str(path)

    def refuse(message: str, hint: str = "") -> ConfigError:
        return ConfigError([Issue(file, 0, 0, "", message, hint)])

    try:
        kind = not_regular(os.stat(path).st_mode)
        if kind is None:
            # Non-blocking, so a FIFO swapped in since the stat cannot hang the open;
            # fstat then checks what was really opened.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                kind = not_regular(os.fstat(handle.fileno()).st_mode)
                data = b"" if kind else handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise refuse(f"{what} file not found") from None
    except OSError as exc:
        raise refuse(f"cannot read {what} file: {exc.strerror or exc}") from None
    if kind is not None:
        raise refuse(
            f"is {kind}, not a regular file: only regular {what} files are read",
            f"point at a YAML {what} file",
        )
    if len(data) > MAX_FILE_BYTES:
        raise refuse(
            f"the {what} file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
            "split it, or check that this is the right file",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"cannot read {what} file: not UTF-8 text (byte {exc.start})") from None


def _load_file(path: Path, model: type[M], what: str) -> tuple[M, Located]:
    return _load_text(read_regular_file(path, what), str(path), model, what)


def load_text(text: str, file: str, model: type[M], *, what: str = "config") -> M:
    """Parse and validate YAML ``text`` as ``model``; ``file`` names it in messages."""
    return _load_text(text, file, model, what)[0]


def _load_text(text: str, file: str, model: type[M], what: str) -> tuple[M, Located]:
    data, located = parse_yaml(text, file)
    if located.issues:
        raise ConfigError(located.issues)
    if data is None:
        raise ConfigError(
            [Issue(file, 1, 1, "", f"the {what} file is empty", "start from config.example.yaml")]
        )
    if not isinstance(data, dict):
        raise ConfigError(
            [
                Issue(
                    file,
                    1,
                    1,
                    "",
                    f"the {what} must be a mapping of keys",
                    "start from config.example.yaml",
                )
            ]
        )
    result = validate(model, data, located)
    if result is None or located.issues:
        raise ConfigError(located.issues)
    return result, located


def load_config(path: Path) -> Config:
    """Load and check the console config, including that every adapter type is installed."""
    return load_config_located(path)[0]


def load_config_located(path: Path) -> tuple[Config, Located]:
    """:func:`load_config`, and where each value is written."""
    config, located = _load_file(path, Config, "config")
    from console.source_check import source_option_problems

    issues = []
    problems = [*config.problems(), *source_option_problems(config, only_with_options=True)]
    for loc, message, hint in problems:
        line, col = located.position(loc, key=message == "unknown key")
        issues.append(Issue(str(path), line, col, dotted(loc), message, hint))
    if issues:
        raise ConfigError(issues)
    return config, located
