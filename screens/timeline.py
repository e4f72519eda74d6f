"""An incident's timeline as one scrolling list, one line per event.

``TimelineView`` is a Line API widget: it renders only the lines on screen, so a
timeline of 100,000 events scrolls as fast as one of 100. Building it is one pass
over the list (nothing is formatted up front), each visible line is formatted
when it is first drawn and kept in a bounded cache, and the lowercase text the
filter searches is built once, the first time a filter is set.

Each line reads ``date HH:MM:SS.mmmZ kind actor summary``, in UTC. The date
is shown on the top line and wherever it changes from the line above, so a
timeline that crosses midnight says so; the selected line shows its full ISO
time (``2026-11-24T03:12:09.412Z``), the one that exports and reports use.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.incidents.timeline import Event
from screens.timeline_line import (
    day,
    fit,
    format_line,
    haystack,
)


class TimelineView(ScrollView, can_focus=True):
    """Events in time order, one line each, with a cursor and a text filter.

    Keys: up/down, pageup/pagedown, home/end (and ``g``/``G``) move the cursor;
    enter opens the selected event. The mouse wheel scrolls; a click selects.

    When the cursor is on the last line (a new view starts there), new events
    keep it on the last line, so a live timeline follows what happens.
    """

    ALLOW_SELECT = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "cursor_page_up", "Page up", show=False),
        Binding("pagedown", "cursor_page_down", "Page down", show=False),
        Binding("home,g", "cursor_first", "First", show=False),
        Binding("end,G", "cursor_last", "Last", show=False),
        Binding("enter", "open", "Open"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"timeline-view--cursor", "timeline-view--empty"}
    DEFAULT_CSS = """
    TimelineView {
        background: $surface;
        overflow-x: hidden;
        & > .timeline-view--cursor {
            color: $block-cursor-blurred-foreground;
            background: $block-cursor-blurred-background;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .timeline-view--cursor {
            color: $block-cursor-foreground;
            background: $block-cursor-background;
            text-style: $block-cursor-text-style;
        }
        & > .timeline-view--empty {
            color: $text-muted;
            text-style: italic;
        }
    }
    """

    #: Formatted lines kept: a few screens' worth at any width, whatever the event count.
    CACHE_SIZE = 1024

    class Selected(Message):
        """The cursor is on another event: a detail pane can show its data."""

        def __init__(self, timeline: TimelineView, event: Event, row: int) -> None:
            super().__init__()
            self.timeline = timeline
            self.event = event
            """The selected event."""
            self.row = row
            """Its line among the visible (filtered) events."""

        @property
        def control(self) -> TimelineView:
            return self.timeline

        def can_replace(self, message: Message) -> bool:
            # Holding pagedown queues one selection, not one per page.
            return isinstance(message, TimelineView.Selected) and message.timeline is self.timeline

    class Opened(Message):
        """Enter (or a double click) on an event."""

        def __init__(self, timeline: TimelineView, event: Event) -> None:
            super().__init__()
            self.timeline = timeline
            self.event = event
            """The opened event."""

        @property
        def control(self) -> TimelineView:
            return self.timeline

    def __init__(
        self,
        events: Sequence[Event] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._events: list[Event] = []
        self._haystacks: list[str] | None = None
        self._filter = ""
        self._rows: list[int] | None = None
        """Indexes into ``_events`` of the events the filter keeps; None: all of them."""
        self._cursor = 0
        self._anchor: int | None = None
        """The selected event's index, kept while a filter hides every event."""
        self._announced: Event | None = None
        self._base: Style | None = None
        self._strips: LRUCache[tuple[int, int, bool, bool], Strip] = LRUCache(self.CACHE_SIZE)
        self.set_events(events)

    # -- state ---------------------------------------------------------------

    @property
    def event_count(self) -> int:
        """Every event the view holds, filtered out or not."""
        return len(self._events)

    @property
    def visible_count(self) -> int:
        """The events the filter keeps (all of them without a filter)."""
        return len(self._events) if self._rows is None else len(self._rows)

    @property
    def cursor_row(self) -> int | None:
        """The selected line among the visible events, or None when none is visible."""
        return self._cursor if self.visible_count else None

    @property
    def selected(self) -> Event | None:
        """The event under the cursor, or None when no event is visible."""
        if not self.visible_count:
            return None
        return self._events[self._index(self._cursor)]

    def _index(self, row: int) -> int:
        return row if self._rows is None else self._rows[row]

    def _following(self) -> bool:
        return self._cursor >= self.visible_count - 1

    # -- changing the events -------------------------------------------------

    def set_events(self, events: Sequence[Event]) -> None:
        """Replace the events (in time order). The cursor stays on the event with the
        same ``ref`` if there is one, follows the end if it was on the last line, and
        is otherwise kept at the same line, within the new list."""
        selected = self.selected
        following = self._following()
        self._events = list(events)
        self._haystacks = None
        self._strips.clear()
        self._rows = self._match(self._filter) if self._filter else None
        count = self.visible_count
        row = count - 1
        if not following and selected is not None:
            index = self._find(selected)
            if index is not None and (self._rows is None or self._kept(index)):
                row = index if self._rows is None else bisect_left(self._rows, index)
            else:
                row = self._cursor
        self._anchor = None  # an index into the old list means nothing in the new one
        self._resized()
        self._move(row)
        self.refresh()

    def append(self, events: Iterable[Event]) -> None:
        """Add events newer than those held. On the last line, the cursor follows."""
        start = len(self._events)
        following = self._following()
        self._events.extend(events)
        if len(self._events) == start:
            return
        if self._haystacks is not None:
            self._haystacks.extend(haystack(e) for e in self._events[start:])
        if self._rows is not None:
            haystacks = self._ensure_haystacks()
            needle = self._filter
            self._rows.extend(i for i in range(start, len(self._events)) if needle in haystacks[i])
        self._resized()
        if following:
            self._move(self.visible_count - 1)
        self.refresh()

    def set_filter(self, text: str) -> None:
        """Show only the events whose kind, actor or summary contain ``text`` (case
        does not matter); an empty text shows every event. The cursor stays on the
        selected event if the filter keeps it, else on the next one kept."""
        needle = text.lower()
        if needle == self._filter:
            return
        anchor = self._index(self._cursor) if self.visible_count else self._anchor
        previous, rows = self._filter, self._rows
        self._filter = needle
        if not needle:
            self._rows = None
        elif previous and previous in needle and rows is not None:
            # Typing on narrows what is already kept: search only that.
            haystacks = self._ensure_haystacks()
            self._rows = [i for i in rows if needle in haystacks[i]]
        else:
            self._rows = self._match(needle)
        row = 0
        if anchor is not None:
            row = anchor if self._rows is None else bisect_left(self._rows, anchor)
        self._resized()
        self._move(row)
        self.refresh()

    def select_ref(self, ref: str) -> bool:
        """Put the cursor on the visible event kept at ``ref`` (``event:12``,
        ``audit:7``…), as a metric's start or end names it. False if it is not shown."""
        for row in range(self.visible_count):
            if self._events[self._index(row)].ref == ref:
                self._move(row)
                return True
        return False

    def _ensure_haystacks(self) -> list[str]:
        if self._haystacks is None:
            self._haystacks = [haystack(e) for e in self._events]
        return self._haystacks

    def _match(self, needle: str) -> list[int]:
        return [i for i, text in enumerate(self._ensure_haystacks()) if needle in text]

    def _kept(self, index: int) -> bool:
        rows = self._rows
        if rows is None:
            return True
        at = bisect_left(rows, index)
        return at < len(rows) and rows[at] == index

    def _find(self, event: Event) -> int | None:
        if event.ref:
            return next((i for i, e in enumerate(self._events) if e.ref == event.ref), None)
        return next((i for i, e in enumerate(self._events) if e == event), None)

    def _resized(self) -> None:
        # Width 0: lines are cut to the width, never scrolled sideways.
        self.virtual_size = Size(0, self.visible_count)

    # -- the cursor ----------------------------------------------------------

    def _move(self, row: int) -> None:
        count = self.visible_count
        row = max(0, min(row, count - 1))
        if row != self._cursor:
            self.refresh_line(self._cursor)
            self.refresh_line(row)
        self._cursor = row
        if count:
            self._anchor = self._index(row)
        self._scroll_to_cursor()
        self._announce()

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        if height <= 0 or not self.visible_count:
            return
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False, force=True)

    def _announce(self) -> None:
        event = self.selected
        if event is not None and event is not self._announced and self.is_attached:
            self._announced = event
            self.post_message(self.Selected(self, event, self._cursor))

    def on_mount(self) -> None:
        self._announce()

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    def notify_style_update(self) -> None:
        # Focus, blur and theme changes restyle the cursor and every colour.
        self._strips.clear()
        self._base = None
        super().notify_style_update()

    def action_cursor_up(self) -> None:
        self._move(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self._cursor + 1)

    def action_cursor_page_up(self) -> None:
        page = self._page()
        self.scroll_to(y=self.scroll_offset.y - page, animate=False, force=True)
        self._move(self._cursor - page)

    def action_cursor_page_down(self) -> None:
        page = self._page()
        self.scroll_to(y=self.scroll_offset.y + page, animate=False, force=True)
        self._move(self._cursor + page)

    def action_cursor_first(self) -> None:
        self._move(0)

    def action_cursor_last(self) -> None:
        self._move(self.visible_count - 1)

    def action_open(self) -> None:
        event = self.selected
        if event is not None:
            self.post_message(self.Opened(self, event))

    def on_click(self, click: events.Click) -> None:
        offset = click.get_content_offset(self)
        if offset is None:
            return
        row = self.scroll_offset.y + offset.y
        if row >= self.visible_count:
            return
        self._move(row)
        if click.chain == 2:
            self.action_open()

    # -- rendering -----------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = self.scroll_offset.y + y
        count = self.visible_count
        if row >= count:
            if row == 0:
                return self._empty_line(width, self._base_style())
            return Strip.blank(width, self._base_style())
        index = self._index(row)
        at = self._events[index].at
        show_date = y == 0 or row == 0 or day(self._events[self._index(row - 1)].at) != day(at)
        selected = row == self._cursor
        key = (index, width, selected, show_date)
        strip = self._strips.get(key)
        if strip is None:
            base = self._base_style()
            strip = self._format(self._events[index], width, selected, show_date, base)
            self._strips[key] = strip
        return strip

    def _base_style(self) -> Style:
        # The widget's style walks every ancestor: worth keeping between lines.
        if self._base is None:
            self._base = self.rich_style
        return self._base

    def _empty_line(self, width: int, base: Style) -> Strip:
        if self._events:
            hidden = len(self._events)
            message = f"no events match {self._filter!r} ({hidden:,} hidden)"
        else:
            message = "no events yet"
        style = base + self.get_component_rich_style("timeline-view--empty")
        return Strip([Segment(fit(" " + message, width), style)], width)

    def _format(
        self, event: Event, width: int, selected: bool, show_date: bool, base: Style
    ) -> Strip:
        cursor = self.get_component_rich_style("timeline-view--cursor") if selected else None
        return format_line(event, width, show_date, base, cursor)
