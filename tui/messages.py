"""Messages the dashboard passes around: per-device updates and new alarms."""

from __future__ import annotations

from textual.message import Message

from .state import ActiveCode


class DeviceUpdated(Message):
    """A device has a new reading (already applied to the fleet state).

    A newer update for the same device replaces one still queued, so a burst of readings
    costs one repaint per device, not one per reading.
    """

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DeviceUpdated) and message.address == self.address


class CodesStarted(Message):
    """Codes that became active with the latest reading (never merged: each one alerts)."""

    def __init__(self, started: list[ActiveCode]) -> None:
        super().__init__()
        self.started = started


class OpenDevice(Message):
    """A card was chosen: show its detail, or the key dialog when it has no key."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address
