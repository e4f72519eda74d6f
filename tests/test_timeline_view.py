"""The timeline widget driven by keys, on fixed events (and on 100,000 of them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.cells import cell_len
from textual import events
from textual.app import App, ComposeResult
from textual.strip import Strip

from console.incidents.timeline import EVENT_KINDS, Event
from screens.timeline import TimelineView

SIZE = (160, 40)
#: Ten minutes before midnight UTC: the story below crosses into the next day.
START = datetime(2026, 11, 23, 23, 50, 0, tzinfo=UTC).timestamp()

STORY: list[tuple[float, str, str, str]] = [
    (0.0, "sli.first_breach", "prometheus", "error_ratio 0.012 > 0.01 for fraud-detector"),
    (61.5, "alert.firing", "alertmanager", "ModelErrorBudgetBurn fraud-detector (page)"),
    (61.9, "incident.opened", "mlconsole", "INC-7: fraud-detector ModelErrorBudgetBurn"),
    (75.25, "runbook.step", "mlconsole", "error-budget: check recent deploys → true"),
    (78.0, "runbook.step", "mlconsole", "error-budget: check input drift → false"),
    (140.0, "incident.acknowledged", "ann@oncall", "ann is on it"),
    (151.0, "note", "ann@oncall", "v4 went out at 23:41; errors started right after"),
    (160.0, "runbook.concluded", "mlconsole", "cause: model (bad deploy of v4)"),
    (175.0, "action.intent", "ann@oncall", "rollback fraud-detector champion v4 → v3"),
    (176.2, "action.result", "mlconsole", "alias champion now v3"),
    (176.2, "incident.mitigated", "mlconsole", "rollback applied (audit:41)"),
    (176.4, "sli.mitigation", "prometheus", "error_ratio 0.031 at mitigation"),
    (420.0, "action.verify", "mlconsole", "error_ratio 0.004 < 0.01 after 4m: recovered"),
    (425.0, "sli.recovery", "prometheus", "error_ratio 0.004 back within objective"),
    (600.0, "alert.resolved", "alertmanager", "ModelErrorBudgetBurn fraud-detector stopped firing"),
    (610.0, "alert.firing", "alertmanager", "ModelLatencyHigh fraud-detector p99 0.61s > 0.5s"),
    (640.0, "alert.resolved", "alertmanager", "ModelLatencyHigh fraud-detector stopped firing"),
    (700.0, "note", "bob@oncall", "latency blip was the cache warming after the rollback"),
    (760.0, "incident.resolved", "ann@oncall", "resolved: rolled back v4; follow-up INC-7-1"),
    (800.123, "note", "ann@oncall", "postmortem on Thursday"),
]


def story() -> list[Event]:
    return [
        Event(START + offset, kind, actor, summary, {"n": n}, ref=f"event:{n}")
        for n, (offset, kind, actor, summary) in enumerate(STORY)
    ]


def many(count: int) -> list[Event]:
    """``count`` events a second apart, cycling through every kind."""
    kinds = list(EVENT_KINDS)
    return [
        Event(
            START + n,
            kinds[n % len(kinds)],
            "bob@oncall" if n % 3 == 0 else "mlconsole",
            f"event {n:06d}: {kinds[n % len(kinds)]} on model-{n % 7}",
            ref=f"event:{n}",
        )
        for n in range(count)
    ]


class CountingTimeline(TimelineView):
    """Counts the lines drawn, to show that only the screen is ever rendered."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.rendered_rows: set[int] = set()
        self.render_calls = 0
        super().__init__(events, id="timeline")

    def render_line(self, y: int) -> Strip:
        self.render_calls += 1
        self.rendered_rows.add(self.scroll_offset.y + y)
        return super().render_line(y)


class TimelineApp(App[None]):
    """The widget alone, recording the messages it posts."""

    def __init__(self, events: Sequence[Event]) -> None:
        super().__init__()
        self.events = events
        self.selected: list[Event] = []
        self.opened: list[Event] = []

    def compose(self) -> ComposeResult:
        yield CountingTimeline(self.events)

    @property
    def view(self) -> CountingTimeline:
        return self.query_one(CountingTimeline)

    def on_timeline_view_selected(self, message: TimelineView.Selected) -> None:
        self.selected.append(message.event)

    def on_timeline_view_opened(self, message: TimelineView.Opened) -> None:
        self.opened.append(message.event)


def line(view: TimelineView, y: int) -> str:
    """The text of screen line ``y`` of the view, as it is drawn now."""
    return view.render_line(y).text


async def test_starts_on_the_newest_event() -> None:
    app = TimelineApp(many(200))
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        view = app.view
        assert view.has_focus
        assert view.cursor_row == 199
        assert view.selected is not None and view.selected.ref == "event:199"
        assert view.scroll_offset.y == view.max_scroll_y > 0
        assert app.selected[-1].ref == "event:199"  # announced on mount


async def test_keys_move_the_cursor_and_scroll() -> None:
    app = TimelineApp(many(200))
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.view
        page = view.scrollable_content_region.height
        await pilot.press("home")  # first event
        assert (view.cursor_row, view.scroll_offset.y) == (0, 0)
        await pilot.press("down", "down", "down")  # three lines down, no scrolling yet
        assert (view.cursor_row, view.scroll_offset.y) == (3, 0)
        await pilot.press("up")  # one line back up
        assert view.cursor_row == 2
        await pilot.press("pagedown")  # a page down: the cursor keeps its place on screen
        assert (view.cursor_row, view.scroll_offset.y) == (2 + page, page)
        await pilot.press("pageup")  # and back
        assert (view.cursor_row, view.scroll_offset.y) == (2, 0)
        for _ in range(page):
            await pilot.press("down")  # walk off the bottom of the screen
        assert view.cursor_row == 2 + page
        assert view.scroll_offset.y == view.cursor_row - page + 1  # scrolled just enough
        await pilot.press("G")  # last event
        assert view.cursor_row == 199 and view.scroll_offset.y == view.max_scroll_y
        await pilot.press("g")  # first event
        assert (view.cursor_row, view.scroll_offset.y) == (0, 0)
        await pilot.press("up", "pageup")  # nothing above the first event
        assert view.cursor_row == 0
        await pilot.press("end")  # last event
        assert view.selected is not None and view.selected.ref == "event:199"
        await pilot.press("down", "pagedown")  # nothing below the last event
        assert view.cursor_row == 199


async def test_mouse_wheel_scrolls_and_click_selects() -> None:
    app = TimelineApp(many(200))
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.view
        await pilot.press("home")  # first event
        wheel = events.MouseScrollDown(view, 30, 4, 0, 1, 0, False, False, False)
        view.post_message(wheel)  # the wheel scrolls; the cursor stays
        await pilot.pause()
        assert view.scroll_offset.y > 0 and view.cursor_row == 0
        top = view.scroll_offset.y
        await pilot.click(CountingTimeline, offset=(30, 4))  # click the fifth line on screen
        assert view.cursor_row == top + 4
        assert app.selected[-1] is view.selected


async def test_selected_and_opened_carry_the_event() -> None:
    events = story()
    app = TimelineApp(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home")  # first event
        await pilot.press("down", "down")  # the third event
        await pilot.pause()
        assert app.selected[-1] is events[2]
        assert app.selected[-1].data == {"n": 2}
        await pilot.press("enter")  # open it
        assert app.opened == [events[2]]


async def test_line_layout_dates_and_iso_time() -> None:
    app = TimelineApp(story())
    async with app.run_test(size=SIZE) as pilot:
        view = app.view
        await pilot.press("home")  # first event
        first = line(view, 0)
        assert first.startswith("2026-11-23T23:50:00.000Z sli.first_breach")  # selected: ISO
        assert "prometheus" in first and "error_ratio 0.012" in first
        second = line(view, 1)
        assert second.startswith("           23:51:01.500Z alert.firing ")  # same day: no date
        assert line(view, 3)[11:23] == "23:51:15.250"
        midnight = next(y for y in range(20) if line(view, y)[11:13] == "00")
        assert line(view, midnight).startswith("2026-11-24 00:")  # the date, where it changes
        await pilot.press("down")  # select the second event: its full time shows
        assert line(view, 1).startswith("2026-11-23T23:51:01.500Z")
        assert line(view, 0).startswith("2026-11-23 23:50:00.000Z")  # top line keeps its date
        assert all(len(line(view, y)) == view.scrollable_content_region.width for y in range(25))


async def test_long_summaries_are_cut_to_the_width() -> None:
    event = Event(START, "note", "a-very-long-actor-name@example.com", "word " * 60 + "\nsecond")
    app = TimelineApp([event])
    async with app.run_test(size=(80, 10)):
        text = line(app.view, 0)
        assert len(text) == 80 and text.endswith("…")
        assert "a-very-long-a…" in text


async def test_wide_characters_are_cut_to_the_width() -> None:
    event = Event(
        START, "note", "李雷@oncall", "回滚到 v3 之后错误率恢复正常 🚑 " * 8, ref="event:1"
    )
    app = TimelineApp([event])
    async with app.run_test(size=(81, 10)):
        strip = app.view.render_line(0)
        width = app.view.scrollable_content_region.width
        assert sum(cell_len(segment.text) for segment in strip) == width
        assert strip.text.rstrip().endswith("…")


async def test_filter_narrows_and_clearing_restores() -> None:
    events = story()
    app = TimelineApp(events)
    async with app.run_test(size=SIZE) as pilot:
        view = app.view
        await pilot.press("home")  # first event
        await pilot.press("down", "down")  # incident.opened (event:2)
        view.set_filter("FRAUD-detector")  # summary, any case
        assert view.visible_count == 7 and view.event_count == 20
        assert view.selected is events[2]  # kept: it matches
        await pilot.pause()
        assert "INC-7: fraud-detector" in line(view, view.cursor_row or 0)
        assert line(view, 7).strip() == ""
        view.set_filter("ann@")  # an actor
        assert view.visible_count == 5
        assert view.selected is events[5]  # event:2 is hidden: the next one kept
        view.set_filter("alert.")  # a kind
        assert [view.selected] == [events[14]]  # the next kept after event:5
        assert view.visible_count == 4
        view.set_filter("")  # cleared: everything again, cursor where it was
        assert view.visible_count == 20 and view.selected is events[14]


async def test_filter_that_hides_everything_keeps_the_place() -> None:
    events = story()
    app = TimelineApp(events)
    async with app.run_test(size=SIZE) as pilot:
        view = app.view
        await pilot.press("home", "down")  # event:1
        view.set_filter("no such thing")
        await pilot.pause()
        assert view.visible_count == 0 and view.selected is None and view.cursor_row is None
        assert "no events match 'no such thing' (20 hidden)" in line(view, 0)
        await pilot.press("enter")  # nothing to open
        assert app.opened == []
        view.set_filter("")
        assert view.selected is events[1]


async def test_empty_view() -> None:
    app = TimelineApp([])
    async with app.run_test(size=SIZE) as pilot:
        view = app.view
        await pilot.press("down", "end", "enter")  # keys on nothing do nothing
        assert line(view, 0).strip() == "no events yet"
        assert view.selected is None and view.event_count == view.visible_count == 0
        assert app.selected == [] and app.opened == []


async def test_append_follows_on_the_last_line() -> None:
    events = many(100)
    app = TimelineApp(events[:60])
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.view
        await pilot.press("end")  # the last line: following
        view.append(events[60:80])
        await pilot.pause()
        assert view.cursor_row == 79 and view.selected is events[79]
        assert view.scroll_offset.y == view.max_scroll_y
        assert app.selected[-1] is events[79]
        await pilot.press("up")  # off the last line: not following
        view.append(events[80:])
        assert view.cursor_row == 78 and view.event_count == 100


async def test_append_under_a_filter_follows_matches_only() -> None:
    events = many(100)
    app = TimelineApp(events[:50])
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.view
        view.set_filter("bob@")  # every third event
        await pilot.press("end")  # the last one kept: following
        view.append(events[50:])
        assert view.visible_count == 34
        assert view.selected is events[99]


async def test_set_events_keeps_the_selected_ref() -> None:
    events = story()
    app = TimelineApp(events)
    async with app.run_test(size=SIZE) as pilot:
        view = app.view
        await pilot.press("home", "down", "down", "down")  # event:3
        # The timeline is rebuilt when read: new objects, one more event before it.
        early = Event(START - 30, "note", "bob@oncall", "heads-up from upstream", ref="event:99")
        rebuilt = [early, *(Event(e.at, e.kind, e.actor, e.summary, ref=e.ref) for e in events)]
        view.set_events(rebuilt)
        assert view.selected is not None and view.selected.ref == "event:3"
        assert view.cursor_row == 4
        view.set_events(rebuilt[:2])  # event:3 is gone: clamped
        assert view.cursor_row == 1


async def test_set_events_follows_from_the_last_line() -> None:
    events = story()
    app = TimelineApp(events[:10])
    async with app.run_test(size=SIZE):
        view = app.view
        view.set_events(events)  # the cursor was on the last line: it stays there
        assert view.selected is events[-1]


async def test_select_ref() -> None:
    events = story()
    app = TimelineApp(events)
    async with app.run_test(size=SIZE):
        view = app.view
        assert view.select_ref("event:10")
        assert view.selected is events[10]
        assert not view.select_ref("audit:404")
        assert view.selected is events[10]


async def test_hundred_thousand_events_render_only_the_screen() -> None:
    events = many(100_000)
    app = TimelineApp(events)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        view = app.view
        height = view.scrollable_content_region.height
        assert view.event_count == 100_000
        await pilot.press("home")  # first event
        await pilot.press("pagedown", "pagedown")  # two pages down
        await pilot.pause()
        assert view.cursor_row == 2 * height and view.scroll_offset.y == 2 * height
        assert line(view, 0).startswith("2026-11-23T")  # the selected line, at the top
        await pilot.press("end")  # last event
        await pilot.pause()
        assert view.selected is events[-1] and view.scroll_offset.y == 100_000 - height
        assert "event 099999" in line(view, height - 1)
        await pilot.press("home")  # back to the first
        await pilot.pause()
        assert view.selected is events[0]
        # Four different screens were shown (the end, the first three pages): only
        # their lines were ever drawn, out of 100,000.
        assert len(view.rendered_rows) <= 4 * height
        assert view.render_calls <= 20 * height
        view.set_filter("bob@")  # a filter over all of them
        assert view.visible_count == 33_334
        view.set_filter("")


def test_timeline_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    # home: the first event; down, down: select incident.opened
    assert snap_compare(TimelineApp(story()), press=["home", "down", "down"], terminal_size=SIZE)
