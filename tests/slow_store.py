"""A store call that waits until the test lets it answer: on the event loop's thread
nothing could let it, so there it gives up after a while and says so."""

from __future__ import annotations

import threading
from typing import Any

import pytest


def slow(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> tuple[threading.Event, list[bool]]:
    """Make ``owner.name`` wait for the returned event before it runs. The list gets,
    for each call, whether the event was set in time: False means the call waited on
    the event loop (which then could not run the test to set it)."""
    original = getattr(owner, name)
    answer = threading.Event()
    waited: list[bool] = []

    def slowed(self: Any, *args: Any, **kwargs: Any) -> Any:
        on_loop = threading.current_thread() is threading.main_thread()
        waited.append(answer.wait(timeout=5 if on_loop else 60))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, slowed)
    return answer, waited
