"""Keys before background work: the poller's state thread steps aside between pieces
of its work while a key is being answered, and never for longer than a key's hold."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from textual import events

from console.keys_first import HOLD_LIMIT, PIECE, KeysFirst, in_pieces
from console.render import fitting
from console.sources.poller import Poller
from console.sources.snapshot import Health, Snapshot, SourceHealth
from screens.app import create_app
from tests.builders import CONFIG, snapshot
from tests.test_poller import ScriptedAlerts, ScriptedMetrics
from tests.waits import until


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_work_goes_on_at_once_when_no_key_is_being_answered() -> None:
    keys = KeysFirst()
    keys.give_way()  # returns: nothing to wait for
    keys.key_in()
    keys.key_shown()
    keys.give_way()  # the key was shown: nothing to wait for


def test_work_waits_while_a_key_is_answered_and_goes_on_once_it_is_shown() -> None:
    keys = KeysFirst()
    keys.key_in()
    went_on = threading.Event()
    worker = threading.Thread(target=lambda: (keys.give_way(), went_on.set()))
    worker.start()
    assert not went_on.wait(HOLD_LIMIT / 5)  # still stepping aside
    keys.key_shown()  # the key's frame is painted
    assert went_on.wait(30)
    worker.join()


def test_a_key_holds_work_back_no_longer_than_its_limit_from_when_it_came() -> None:
    """A key whose frame is never reported (or keys held down) cannot stop the data:
    once the limit has passed since the key came in, every piece goes on at once."""
    clock = Clock()
    keys = KeysFirst(clock)
    keys.key_in()
    clock.now += HOLD_LIMIT  # the key came in that long ago, and is not shown yet
    for _ in range(100):
        keys.give_way()  # each returns at once: nothing would end a wait here


def test_pieces_hold_every_item_in_order_with_a_way_given_before_each() -> None:
    given: list[int] = []
    seen: list[int] = []
    items = range(2 * PIECE + 5)
    for piece in in_pieces(items, lambda: given.append(len(seen))):
        assert len(piece) <= PIECE
        seen.extend(piece)
    assert seen == list(items)
    assert given == [0, PIECE, 2 * PIECE]  # before each piece, none after the last
    assert list(in_pieces((), lambda: given.append(-1))) == [] and given[-1] != -1


async def test_the_state_thread_gives_way_between_pieces_of_a_big_refresh() -> None:
    """A refresh of more than a piece's worth of models gives way in every loop that
    walks them: the readings, their widths and the survey."""
    models = 2 * PIECE + 10
    values = {f"m-{i:04d}": {"e": 0.001, "l": 0.2, "d": 0.05} for i in range(models)}
    poller = Poller(
        CONFIG, {"prometheus": ScriptedMetrics(values), "alertmanager": ScriptedAlerts(())}
    )
    book = fitting.WidthBook()
    where: list[str] = []

    def give_way() -> None:
        where.append(threading.current_thread().name)

    poller.give_way = book.give_way = give_way
    poller.on_built = book.measure
    snap = await poller.refresh_once()
    assert len(snap.models) == models
    readings = len(snap.readings)
    # Per SLI read (3 of them), the readings measured, the models surveyed, the widths
    # surveyed: each in pieces, from the state thread alone.
    assert len(where) >= 3 * 3 + readings // PIECE + models // PIECE + readings // PIECE
    assert {name.split("_")[0] for name in where} == {"poller-state"}
    await poller.stop()


class RecordingKeys(KeysFirst):
    """What the UI tells of its keys."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[str] = []

    def key_in(self) -> None:
        self.told.append("in")
        super().key_in()

    def key_shown(self) -> None:
        self.told.append("shown")
        super().key_shown()


async def test_the_app_tells_its_poller_when_a_key_comes_and_when_it_is_shown() -> None:
    app = create_app(CONFIG, poll=False)
    app.snapshot = snapshot()
    keys = app.keys_first = RecordingKeys()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("down")  # a cursor key, posted to the app as a Pilot does
        await until(pilot, lambda: keys.idle and "shown" in keys.told, "the key's frame")
        # Told once as it came in, and shown after (Textual hands the app a key twice:
        # as it comes in, and as it bubbles up from the focused widget).
        assert keys.told == ["in", "shown"]

        # A key the terminal's driver reads is told as the driver sends it, before
        # the app's loop has run at all: it may be queued behind a frame.
        keys.told.clear()
        driver = app._driver
        assert driver is not None
        key = events.Key("up", None)
        key.set_sender(app)
        driver.send_message(key)
        assert keys.told == ["in"] and not keys.idle
        await until(pilot, lambda: keys.idle, "the driver's key's frame")
        assert keys.told == ["in", "shown"]
        poller = Poller(CONFIG, {"alertmanager": ScriptedAlerts(())})
        app._start_poller(poller)
        assert poller.give_way == keys.give_way == app.widths.give_way
        assert all(a.give_way == keys.give_way for a in poller.adapters.values())
        await poller.stop()


async def test_widths_asked_while_the_state_thread_gives_way_do_not_break_its_survey() -> None:
    """While the state thread gives way, the UI draws, and asks the book for widths it
    has not measured (adding them to it): the survey goes on over what it measured."""
    models = 2 * PIECE + 10
    values = {f"m-{i:04d}": {"e": 0.001, "l": 0.2, "d": 0.05} for i in range(models)}
    poller = Poller(
        CONFIG, {"prometheus": ScriptedMetrics(values), "alertmanager": ScriptedAlerts(())}
    )
    first = await poller.refresh_once()
    book = fitting.WidthBook()
    sli = first.slis[0]
    asked: list[int] = []

    def ui_draws() -> None:  # what the UI thread does while the state thread waits
        reading = replace(first.readings[("m-0000", sli.name)], value=0.5 + len(asked))
        asked.append(len(book.widths(sli, reading)))

    book.give_way = ui_draws
    book.measure(first)
    assert asked and all(asked)
    survey = book.survey_of(first)
    assert survey is not None and len(survey.order) == models
    await poller.stop()


async def test_a_refresh_that_fails_past_its_adapter_shows_the_source_down_and_polls_on() -> None:
    """An error after the adapter answered (applying its answer, measuring it) does
    not end the source's polling: the source is shown down with the error, and the
    next refresh that works brings it back."""
    poller = Poller(CONFIG, {"alertmanager": ScriptedAlerts(())})
    failures = [RuntimeError("dictionary changed size during iteration")]

    def on_built(snap: Snapshot) -> None:
        if failures:
            raise failures.pop()

    def health(snap: Snapshot) -> SourceHealth:
        return snap.sources["alertmanager"]

    shown_down, back = asyncio.Event(), asyncio.Event()

    def on_snapshot(snap: Snapshot) -> None:
        if health(snap).state(snap.taken_at) is Health.DOWN:
            shown_down.set()
        elif shown_down.is_set() and health(snap).state(snap.taken_at) is Health.OK:
            back.set()

    poller.on_built = on_built
    poller.on_snapshot = on_snapshot
    poller.start()
    try:
        await asyncio.wait_for(shown_down.wait(), 30)
        error = health(poller.snapshot).last_error or ""
        assert "unexpected RuntimeError: dictionary changed size" in error
        poller.refresh_now()  # the loop is still there to ask again
        await asyncio.wait_for(back.wait(), 30)
    finally:
        await poller.stop()
