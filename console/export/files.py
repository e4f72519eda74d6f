"""Writing an export: to standard output, or to a file that is checked first."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from console.export.document import ExportDocument, to_json
from console.export.markdown import to_markdown
from console.export.schema import Format
from console.file_kind import not_regular

# -- writing ------------------------------------------------------------------------------


def render(doc: ExportDocument, fmt: Format | str) -> str:
    """The document in ``fmt``: ``md`` or ``json`` (else ValueError)."""
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return to_markdown(doc)
    raise ValueError(f"export format must be 'md' or 'json', not {fmt!r}")


class ExportTargetError(OSError):
    """An export path names something other than a regular file or a new path."""


def check_export_target(path: Path) -> None:
    """Raise :class:`ExportTargetError` unless ``path`` is a regular file or does not
    exist. A symbolic link is refused even when it points at a regular file: the
    export replaces what is at ``path``, and must never replace a link, a device
    (``/dev/null`` as root) or a FIFO."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    kind = not_regular(mode)
    if kind is not None:
        raise ExportTargetError(
            f"{path} is {kind}; an export writes only to a regular file or a new path, so name one"
        )


def write_export(doc: ExportDocument, fmt: Format | str, path: Path | None = None) -> str:
    """The document in ``fmt``; with ``path``, also written there atomically (a
    temporary file beside it, then renamed over it), creating its directories.
    ``path`` must be a regular file or a new path (see :func:`check_export_target`)."""
    text = render(doc, fmt)
    if path is None:
        return text
    check_export_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        check_export_target(path)  # again, as close to the rename as it gets
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return text
