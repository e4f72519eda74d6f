"""One line of an incident's timeline, as :class:`screens.timeline.TimelineView` draws
it: ``date HH:MM:SS.mmmZ kind actor summary``, each column padded or cut to its width."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from console.incidents.timeline import EVENT_KINDS, Event, utc
from console.text import inert

#: The kind column fits every known kind; an unknown longer one is cut with "…".
KIND_WIDTH = max(len(kind) for kind in EVENT_KINDS)
ACTOR_WIDTH = 14
#: ``2026-11-24T03:12:09.412Z``: the date, a separator, the time and the zone.
TIME_WIDTH = 24
#: Everything left of the summary, with a space after each column.
FIXED_WIDTH = TIME_WIDTH + 1 + KIND_WIDTH + 1 + ACTOR_WIDTH + 1

#: Kind colours by family, so a page, a mitigation and a recovery stand apart.
KIND_STYLE: dict[str, Style] = {
    "alert.firing": Style.parse("bold red"),
    "alert.resolved": Style.parse("bold green"),
    "alert": Style.parse("bold red"),
    "incident": Style.parse("bold cyan"),
    "runbook": Style.parse("bold yellow"),
    "action": Style.parse("bold magenta"),
    "sli": Style.parse("bold blue"),
    # The theme's foreground (white on dark themes) stays readable on light ones.
    "note": Style.parse("bold"),
}
DATE_STYLE = Style.parse("bold")
DIM = Style.parse("dim")


def kind_style(kind: str) -> Style | None:
    """The colour of ``kind``'s badge: its own, else its family's (``alert.*``)."""
    style = KIND_STYLE.get(kind)
    if style is None:
        style = KIND_STYLE.get(kind.partition(".")[0])
    return style


def fit(text: str, width: int) -> str:
    """``text`` padded or cut to exactly ``width`` cells, cut text ending in "…"."""
    if width <= 0:
        return ""
    if text.isascii():  # the common case, a cell per character, without measuring
        return text[: width - 1] + "…" if len(text) > width else text.ljust(width)
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def day(at: float) -> int:
    """The UTC day number of the second :func:`console.incidents.timeline.utc` shows for ``at``
    (which rounds to the millisecond, so 23:59:59.9996 is already the next day)."""
    whole = int(at // 1)
    if round((at - whole) * 1000) == 1000:
        whole += 1
    return whole // 86400


def haystack(event: Event) -> str:
    # The newlines keep a match from spanning two fields.
    return f"{event.kind}\n{event.actor}\n{event.summary}".lower()


def format_line(
    event: Event, width: int, show_date: bool, base: Style, cursor: Style | None = None
) -> Strip:
    """``event``'s line, ``width`` cells wide, on ``base``; the selected line is drawn
    in ``cursor`` with its full ISO time."""
    # Styles are combined here rather than by Segment.apply_style, and every
    # column is padded to its width, so the strip needs no measuring: this is
    # what a line costs the first time it scrolls into view.
    selected = cursor is not None
    if cursor is not None:
        plain = base + cursor
        date = dim = kind = plain
    else:
        plain, date, dim = base, base + DATE_STYLE, base + DIM
        kind_colour = kind_style(event.kind)
        kind = base + kind_colour if kind_colour is not None else base
    iso = utc(event.at)
    if selected:
        segments = [Segment(iso, plain)]
    else:
        segments = [
            Segment(iso[:10], date) if show_date else Segment(" " * 10, plain),
            Segment(" ", plain),
            Segment(iso[11:23], plain),
            Segment("Z", dim),
        ]
    segments += [
        Segment(" ", plain),
        Segment(fit(inert(event.kind), KIND_WIDTH), kind),
        Segment(" ", plain),
        Segment(fit(inert(event.actor), ACTOR_WIDTH), plain),
        Segment(" ", plain),
    ]
    room = width - FIXED_WIDTH
    if room > 0:
        segments.append(Segment(fit(inert(event.summary), room), plain))
        return Strip(segments, width)
    return Strip(segments).crop_extend(0, width, plain)
