"""Textual's Footer, recomposed only when the keys it shows change.

Textual's Footer rebuilds its keys on every focus change (`bindings_changed` → `recompose`), and
a recompose makes the screen lay out every widget again: with 500 cards that was most of an
arrow key's cost (issue 26). The cards' own bindings are hidden (`show=False`), so moving from
card to card never changes what the footer shows; only a real change rebuilds it.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

# What a footer key shows: key, its display, description, action, enabled, tooltip.
_Shown = tuple[tuple[str, str | None, str, str, bool, str], ...]


def shown_bindings(screen: Screen[object]) -> _Shown:
    """The bindings the footer would show on this screen, as comparable values. The command
    palette's binding is included whether shown or not (a superset: a change there rebuilds)."""
    palette = screen.app.COMMAND_PALETTE_BINDING
    return tuple(
        (key, b.key_display, b.description, b.action, enabled, tooltip)
        for key, (_, b, enabled, tooltip) in screen.active_bindings.items()
        if b.show or key == palette
    )


class QuietFooter(Footer):
    _keys_shown: _Shown | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        # The same conditions as Footer.bindings_changed's recompose: a skipped one (app not
        # focused) must not record what was never shown.
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = shown_bindings(screen)
            if shown == self._keys_shown:
                return
            self._keys_shown = shown
        super().bindings_changed(screen)
