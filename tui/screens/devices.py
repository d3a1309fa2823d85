"""The home screen: one card per device, like the VictronConnect device list."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..widgets.device_card import DeviceCard, card_id
from .base import FleetScreen


class DeviceListScreen(FleetScreen):
    BINDINGS = [
        Binding("down,right,j", "app.focus_next", "Next", show=False),
        Binding("up,left,k", "app.focus_previous", "Previous", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield from self.header_widgets()
        yield Static(
            "Waiting for devices… (Instant Readout devices advertise about once a second)",
            id="empty",
        )
        yield VerticalScroll(id="cards")
        yield self.footer()

    def _card(self, address: str) -> DeviceCard:
        cards = self.query_one("#cards", VerticalScroll)
        found = cards.query(f"#{card_id(address)}")
        if found:
            return found.first(DeviceCard)
        card = DeviceCard(address)
        # Keep cards in name order, as the app's list does.
        order = [d.address for d in self.fleet.sorted_devices()]
        later = [
            c for c in cards.query(DeviceCard) if order.index(c.address) > order.index(address)
        ]
        if later:
            cards.mount(card, before=later[0])
        else:
            cards.mount(card)
        self.query_one("#empty").display = False
        return card

    def device_changed(self, address: str) -> None:
        dev = self.fleet.devices.get(address)
        if dev is not None:
            card = self._card(address)
            card.show(dev, self.fleet.clock())
            if self.focused is None:
                card.focus()

    def refresh_all(self) -> None:
        now = self.fleet.clock()
        for dev in self.fleet.sorted_devices():
            self._card(dev.address).show(dev, now)
