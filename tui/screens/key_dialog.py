"""Ask for a device's Instant Readout key and hand it back to the app to store."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from victron_ble_bms.protocol import InvalidKey, normalize_key


class KeyDialog(ModalScreen[str | None]):
    """Returns the key as typed (validated), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, address: str, name: str, problem: str) -> None:
        super().__init__()
        self.address = address
        self.device_name = name
        self.problem = problem

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"[b]Key for {self.device_name}[/]  ({self.address})")
            yield Static(
                f"{self.problem}\nIn VictronConnect: open the device → ⚙ → ⋮ → Product info → "
                "Instant readout details → Show encryption data. 32 hex digits."
            )
            yield Input(placeholder="0123456789abcdef0123456789abcdef", password=True, id="key")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _submit(self) -> None:
        text = self.query_one(Input).value
        try:
            normalize_key(text)
        except InvalidKey as exc:
            # normalize_key's message names the length/characters, not the key itself.
            self.query_one("#error", Static).update(f"[red]{exc}[/]")
            return
        self.dismiss(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
