"""Waiting in Pilot tests on what the test is about, never on time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

#: How many idle turns of the app (each at least 20 ms) a condition may take before the
#: test fails: enough for a store read or a plan in a thread to come back under load.
TRIES = 2000


async def until(pilot: Any, condition: Callable[[], T], what: str, tries: int = TRIES) -> T:
    """Let the app run (one idle turn at a time) until ``condition()`` is true; its
    value. Fails the test, naming ``what``, when it never comes."""
    for _ in range(tries):
        if value := condition():
            return value
        await pilot.pause()
    pytest.fail(f"never happened: {what}")


LIVE_DEADLINE = 150.0
"""Seconds a condition that waits on a live server (a scrape, a rule evaluation, an
alert firing) may take before the test fails: a bound on failure, not on speed."""


async def until_live(
    pilot: Any, condition: Callable[[], T], what: str, deadline: float = LIVE_DEADLINE
) -> T:
    """Let the app run, one idle turn at a time (each at least 20 ms), until
    ``condition()`` is true; its value. For what a real server decides when: fails the
    test, naming ``what``, only when ``deadline`` seconds pass without it."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if value := condition():
            return value
        await pilot.pause()
    pytest.fail(f"never happened within {deadline:g}s: {what}")


def screen_lines(app: Any) -> list[str]:
    """The screen as it is drawn now, one string a line, trailing blanks cut."""
    return [
        "".join(seg.text for seg in strip).rstrip()
        for strip in app.screen._compositor.render_strips()
    ]


async def until_drawn(
    pilot: Any, app: Any, drawn: Callable[[list[str]], object], what: str
) -> list[str]:
    """Wait until the screen's lines satisfy ``drawn``; those lines."""
    seen: list[str] = []

    def check() -> bool:
        seen[:] = screen_lines(app)
        return bool(drawn(seen))

    for _ in range(TRIES):
        if check():
            return seen
        await pilot.pause()
    pytest.fail(f"never drawn: {what}\n" + "\n".join(seen))
