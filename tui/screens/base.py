"""What every dashboard screen shares: header, status bar, footer, and fleet hooks."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, cast

from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header

from ..widgets.footer import QuietFooter
from ..widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from ..app import DashboardApp
    from ..state import Fleet


class FleetScreen(Screen[None]):
    """A screen that shows fleet state. The app calls `devices_changed` once per frame with the
    devices that changed since the last frame, and `refresh_all` once a second (ages) and when
    the screen comes back into view."""

    # Textual's Screen declares `focused` as a repainting reactive: every focus move repainted
    # the whole screen (every card in view, ~10 ms at 160×50, issue 26). The two widgets
    # involved repaint themselves (Widget._on_focus/_on_blur refresh them, and their :focus
    # styles refresh them again), so moving focus needs no screen repaint. Same default and
    # the same watcher (Screen._watch_focused refreshes the bindings); only repaint differs.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    @property
    def dashboard(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    @property
    def fleet(self) -> Fleet:
        return self.dashboard.fleet

    status_bar: StatusBar | None = None

    def header_widgets(self) -> tuple[Header, StatusBar]:
        # Kept, not queried: a query walks every widget of the screen (500 cards) per frame.
        self.status_bar = StatusBar(id="status")
        return Header(), self.status_bar

    def footer(self) -> Footer:
        return QuietFooter()

    def devices_changed(self, addresses: Collection[str]) -> None:
        """These devices have new data."""

    def banks_changed(self, names: Collection[str]) -> None:
        """These banks have a member with a new reading (issue 20)."""

    def refresh_all(self) -> None:
        """Redraw everything (ages change with the clock)."""

    def on_screen_resume(self) -> None:
        self.refresh_status()
        self.refresh_all()

    def refresh_status(self) -> None:
        if self.status_bar is not None and self.status_bar.is_mounted:
            self.status_bar.refresh_status()


def ready(widget: Widget) -> bool:
    """Its children can be queried: composed and mounted (Textual sets `is_mounted` once the
    widgets from `compose` are mounted, theirs too), and not being removed. Keys typed fast open
    a page whose first update comes before its compose has finished, or close one that still
    gets an update while its children go; a `query_one` then raised NoMatches and ended the
    dashboard (issue 18). Such a screen is painted when it is shown (`on_screen_resume`)."""
    return widget.is_mounted and widget.is_attached and widget.display
