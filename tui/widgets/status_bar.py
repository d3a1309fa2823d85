"""The line under the header: demo banner or source, recording, active codes."""

from __future__ import annotations

from textual.widgets import Static


class StatusBar(Static):
    """Text comes from the app (`DashboardApp.status_text`); it flashes on a new alarm."""

    def on_mount(self) -> None:
        self.refresh_status()

    def refresh_status(self) -> None:
        status = getattr(self.app, "status_text", None)
        self.update(status() if callable(status) else "")
        self.set_class(bool(getattr(self.app, "demo", False)), "-demo")
