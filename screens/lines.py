"""One-line widgets shared by screens: a Static that lays the screen out only when
its height changes, and the source bar (each source's health and the age of its
data) that the dashboard and the alert detail show at the top."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.sources.snapshot import Health, Snapshot
from console.text import inert
from screens.render import same_text, source_badge


class Line(Static):
    """A Static told of new text only when it changed, and that asks for a layout of
    the screen only when its height changes: the source bar changes every second,
    and a layout of the whole screen for it costs more than everything else on it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._shown: Text | None = None

    def show_text(self, text: Text) -> None:
        old = self._shown
        if old is not None and same_text(text, old):
            return
        width = self.content_size.width
        console = self.app.console
        layout = (
            not width
            or old is None
            or (len(text.wrap(console, width)) != len(old.wrap(console, width)))
        )
        self.update(text, layout=layout)
        self._shown = text


class SourceBar(Line):
    """Each source's health: ok, stale or down, with the age of its data."""

    DEFAULT_CSS = """
    SourceBar {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    def show(self, snapshot: Snapshot, now: float) -> None:
        if not snapshot.sources:
            self.show_text(Text("no sources configured", style="bold red"))
            return
        parts = Text("  ·  ").join(source_badge(h, now) for h in snapshot.sources.values())
        down = [h for h in snapshot.sources.values() if h.state(now) is Health.DOWN]
        if down and down[0].last_error:
            parts.append("\n")
            parts.append(inert(down[0].last_error), style="red")
        self.show_text(parts)
