"""Work for a screen that has left the app's stack does nothing.

A key can pop a screen before it has mounted: at a thousand models, ``enter``
then ``escape`` come faster than a screen mounts. Textual still sends the popped
screen ``Mount`` while it removes its widgets, and a snapshot, a timer or a
thread worker's ``call_from_thread`` can call it afterwards. Querying a widget
then raises ``NoMatches`` and takes the console down. So what a screen does on
mount, and every handler that can be called after it is gone, is decorated with
:func:`while_on_stack`; screens with a header use :class:`ScreenHeader`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from textual.dom import NoScreen
from textual.events import Mount
from textual.screen import Screen
from textual.widgets import Header, Static

P = ParamSpec("P")
S = TypeVar("S", bound=Screen[Any])


def on_stack(screen: Screen[Any]) -> bool:
    """Whether ``screen`` is still on its app's stack (covered by another or on top):
    false from the moment it is popped, while its widgets are being removed."""
    return screen.is_attached and screen in screen.app.screen_stack


def while_on_stack(method: Callable[Concatenate[S, P], None]) -> Callable[Concatenate[S, P], None]:
    """The screen method, done only while its screen is on the stack; else nothing."""

    @wraps(method)
    def guarded(screen: S, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if on_stack(screen):
            method(screen, *args, **kwargs)

    return guarded


class ScreenHeader(Header):
    """Textual's header, whose title is set only while its screen is on the stack.

    Textual's own header sets its title in a callback that can run after its
    screen was popped, and then fails to find the title it queries.
    """

    def on_mount(self, event: Mount) -> None:
        event.prevent_default()  # Header's own handler: the same watches, unguarded
        for node, attribute in (
            (self.app, "title"),
            (self.app, "sub_title"),
            (self.screen, "title"),
            (self.screen, "sub_title"),
        ):
            self.watch(node, attribute, self._set_title)

    def _set_title(self) -> None:
        try:
            screen = self.screen
        except NoScreen:  # removed from its screen
            return
        if on_stack(screen):
            self.query_one("HeaderTitle", Static).update(self.format_title())
