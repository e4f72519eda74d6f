"""Rich text for snapshot values, shared by the screens."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from adapters.records import AlertRecord
from console.render.format import (
    HEALTH_STYLE,
    format_age,
)
from console.render.serving import serving_cell as serving_cell
from console.sources.snapshot import Health, SourceHealth
from console.text import inert

if TYPE_CHECKING:  # the store behind incidents is opened after the first paint
    from console.incidents.model import Incident

SEVERITY_STYLE = {
    "page": "bold red",
    "critical": "bold red",
    "ticket": "yellow",
    "warning": "yellow",
}


def source_badge(health: SourceHealth, now: float) -> Text:
    state = health.state(now)
    style = HEALTH_STYLE[state]
    age = health.age(now)
    text = Text.assemble(
        ("● ", style), (inert(health.name), "bold"), " ", (state.value.upper(), style)
    )
    if state is Health.OK:
        text.append(f" {format_age(age)}", style="dim")
    elif age is not None:
        text.append(f" data {format_age(age)} old", style=style)
    if health.warnings and state is Health.OK:
        text.append(f" ({len(health.warnings)} warning(s))", style="yellow")
    return text


def alert_age(alert: AlertRecord, now: float) -> str:
    return format_age(now - alert.starts_at.timestamp())


def alert_state(alert: AlertRecord) -> Text:
    if alert.state == "active":
        return Text("firing", style="bold red")
    if alert.silenced_by:
        return Text("silenced", style="dim")
    if alert.inhibited_by:
        return Text("inhibited", style="dim")
    return Text(inert(alert.state), style="dim")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


#: How each incident state looks wherever incidents are listed.
INCIDENT_STYLE = {
    "triggered": "bold red",
    "acknowledged": "bold yellow",
    "mitigated": "bold green",
    "resolved": "dim",
}


def incident_cell(incident: Incident | None) -> Text:
    """``INC-3 ACK alice``: the incident, its state, and who acknowledged it."""
    if incident is None:
        return Text("—", style="dim")
    text = Text(incident.id + " ", style="bold")
    if incident.ack_active and incident.acked_by:
        text.append(f"ack {inert(incident.acked_by)}", style=INCIDENT_STYLE["acknowledged"])
        if incident.state == "mitigated":
            text.append(" mitigated", style=INCIDENT_STYLE["mitigated"])
        return text
    text.append(inert(incident.state), style=INCIDENT_STYLE.get(incident.state, ""))
    return text


def same_text(a: Text, b: Text) -> bool:
    """Whether two cells look the same (``Text ==`` ignores the base style)."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class LazyRow:
    """A table row whose cells are built when first drawn or asked for, and built
    again after :meth:`reset`: a table of a thousand rows builds the few in view."""

    __slots__ = ("_build", "_cells", "key")

    def __init__(self, key: str, build: Callable[[], list[Text]]) -> None:
        self.key = key
        self._build = build
        self._cells: list[Text] | None = None

    def cells(self) -> list[Text]:
        if self._cells is None:
            self._cells = self._build()
        return self._cells

    def reset(self) -> list[Text] | None:
        """Forget the cells (their inputs changed); return them if they were built."""
        old, self._cells = self._cells, None
        return old

    def lazy_cells(self, widths: Sequence[int]) -> list[LazyCell]:
        return [LazyCell(self, index, width) for index, width in enumerate(widths)]


class TableCell:
    """A DataTable cell drawn as its :attr:`text`; ``str()`` and ``.style`` read as a
    Text cell's do."""

    __slots__ = ()

    @property
    def text(self) -> Text:
        raise NotImplementedError

    @property
    def style(self) -> str | Style:
        return self.text.style

    def __str__(self) -> str:
        return str(self.text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield self.text


class LazyCell(TableCell):
    """One cell of a :class:`LazyRow`, as a DataTable holds it: drawn as the row's
    cell, measured as its column's fixed ``width`` (so adding rows builds nothing)."""

    __slots__ = ("index", "row", "width")

    def __init__(self, row: LazyRow, index: int, width: int) -> None:
        self.row = row
        self.index = index
        self.width = width

    @property
    def text(self) -> Text:
        return self.row.cells()[self.index]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


class LiveCell(TableCell):
    """A cell whose text is replaced in place (:meth:`set`), measured as it is: the
    table is told (``update_cell``) only while the cell is in view."""

    __slots__ = ("_text",)

    def __init__(self, text: Text) -> None:
        self._text = text

    @property
    def text(self) -> Text:
        return self._text

    def set(self, text: Text) -> None:
        self._text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return self.text.__rich_measure__(console, options)
