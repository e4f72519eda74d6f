"""A footer that builds its keys again only when the keys it shows change."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """Textual's :class:`~textual.widgets.Footer`, but a change of focus that leaves
    the keys it shows as they were does not rebuild it.

    Textual's footer composes all its keys again (new widgets, styled and laid out)
    whenever the screen's bindings may have changed, which is every change of focus:
    `tab` between the models and the alerts, the filter opened and closed, a screen
    come back to. That cost 50-170 ms of the UI thread a time, with a thousand models
    refreshing behind it, for a footer that showed the same keys."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        #: What the last rebuild showed (see :meth:`_shown`); None before the first.
        self._shown_last: tuple[object, ...] | None = None

    def _shown(self, screen: Screen[object]) -> tuple[object, ...]:
        """Everything of the screen's bindings that the footer's keys show."""
        return tuple(
            (
                binding.key,
                binding.action,
                binding.description,
                binding.key_display,
                binding.group,
                binding.tooltip,
                enabled,
                tooltip,
            )
            for (_, binding, enabled, tooltip) in screen.active_bindings.values()
            if binding.show
            or (self.show_command_palette and binding.key == self.app.COMMAND_PALETTE_BINDING)
        )

    def bindings_changed(self, screen: Screen[object]) -> None:
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            super().bindings_changed(screen)  # it rebuilds nothing: nothing to note
            return
        shown = self._shown(screen)
        if shown == self._shown_last:
            return
        self._shown_last = shown
        super().bindings_changed(screen)
