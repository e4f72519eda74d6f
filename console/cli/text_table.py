"""Plain-text tables for command output: one header per column, aligned, one line
per row, so they read the same on a terminal, in a pipe and through ``grep``."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from console.text import inert

# rich.cells (cell widths) is imported where a table is drawn, not when the command
# line that defines the columns is imported.

GAPS = ("  ", " ")
"""Two spaces between columns; one when that makes the table fit."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its header, alignment, and whether it may be cut to fit."""

    header: str
    right: bool = False
    shrink: int = 0
    """When the table is wider than the terminal, columns with ``shrink`` > 0 are cut
    with ``…`` (down to :attr:`min_width`): those with 1 first, then 2, and so on,
    the widest first. Columns that must always be whole (ids, times) keep 0."""
    min_width: int = 8


def output_width(stream: TextIO | None = None) -> int | None:
    """The terminal's width when ``stream`` is one; None in a pipe (lines stay whole)."""
    stream = stream or sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size().columns if tty else None


def _fit(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1) + "…"


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], *, width: int | None = None
) -> list[str]:
    """The header line and one line per row. With ``width``, shrinkable columns are
    cut (widest first) until the lines fit, or none can shrink further. Cells are
    outside text: each is made inert (one line, controls shown) before it is measured."""
    from rich.cells import cell_len

    rows = [[inert(cell) for cell in row] for row in rows]
    widths = [
        max([cell_len(c.header), *(cell_len(row[i]) for row in rows)])
        for i, c in enumerate(columns)
    ]
    gap = GAPS[0]
    if width is not None:
        for gap in GAPS:
            excess = sum(widths) + len(gap) * (len(columns) - 1) - width
            if excess <= 0:
                break
        for rank in sorted({c.shrink for c in columns if c.shrink > 0}):
            while excess > 0:
                candidates = [
                    i
                    for i, c in enumerate(columns)
                    if c.shrink == rank and widths[i] > max(c.min_width, cell_len(c.header))
                ]
                if not candidates:
                    break
                widest = max(candidates, key=lambda i: widths[i])
                widths[widest] -= 1
                excess -= 1

    def line(cells: Sequence[str]) -> str:
        out = []
        for column, size, cell in zip(columns, widths, cells, strict=True):
            text = _fit(cell, size)
            pad = " " * (size - cell_len(text))
            out.append(pad + text if column.right else text + pad)
        return gap.join(out).rstrip()

    return [line([c.header for c in columns]), *(line(row) for row in rows)]
