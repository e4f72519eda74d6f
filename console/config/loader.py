"""Load YAML into pydantic models, with every error located at file:line:col.

YAML is composed into nodes first, so each value's position is known; the
nodes are then turned into plain Python (resolving ``${ENV_VAR}`` references)
and validated. Validation errors are mapped back to the position of the key
or value they concern (:mod:`console.config.located`). Nothing here raises anything
but :class:`ConfigError`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from console.config.located import ConfigError, Issue, Loc, Located, dotted, validation_hint
from console.config.models import Config
from console.file_kind import not_regular

M = TypeVar("M", bound=BaseModel)

MAX_ALIAS_VALUES = 100_000
"""Most values YAML aliases (``*name``) may add to a file by repeating what they
refer to; without a limit a small file can expand without end. Values written out
are not counted: a big file is limited by :data:`MAX_FILE_BYTES` alone."""
MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest config or runbook file read (4 MiB)."""


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
            located.issue(pos, loc, message, validation_hint(error, model, loc))
        return None


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
    from console.config.source_check import source_option_problems

    issues = []
    problems = [*config.problems(), *source_option_problems(config, only_with_options=True)]
    for loc, message, hint in problems:
        line, col = located.position(loc, key=message == "unknown key")
        issues.append(Issue(str(path), line, col, dotted(loc), message, hint))
    if issues:
        raise ConfigError(issues)
    return config, located
