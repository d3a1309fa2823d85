"""Ask for a device's Instant Readout key and hand it back to the app to store."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from victron_ble_bms.protocol import InvalidKey, mask_key, normalize_key

from ..format import outside


class SecretKey:
    """A validated key on its way to the keys file. Its repr shows only the first and last byte,
    so that it can't appear in a traceback's locals (DEVELOPERS.md: keys are secrets)."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"SecretKey({mask_key(self.value)})"


def key_check_problem(key: bytes, key_check: int | None) -> str | None:
    """Every encrypted frame carries the key's first byte in clear (docs/protocol.md §1): a key that
    starts differently can't be this device's."""
    if key_check is None or key[0] == key_check:
        return None
    return (
        f"This key starts with {key[0]:02x}, but this device's frames need a key starting "
        f"with {key_check:02x}: it is probably another device's key (or the key changed)."
    )


class KeyDialog(ModalScreen[SecretKey | None]):
    """Returns the key (validated, checked against the frame's key-check byte) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, address: str, name: str, problem: str, key_check: int | None = None) -> None:
        super().__init__()
        self.address = address
        self.device_name = name
        self.problem = problem
        self.key_check = key_check

    def compose(self) -> ComposeResult:
        title = Text("Key for ", style="bold")
        title.append_text(outside(self.device_name, style="bold"))
        title.append("  (")
        title.append_text(outside(self.address))
        title.append(")")
        hint = (
            "" if self.key_check is None else f" Its frames say: starts with {self.key_check:02x}."
        )
        with Vertical(id="dialog"):
            yield Label(title)
            yield Static(
                Text(
                    f"{self.problem}\nIn VictronConnect: open the device → ⚙ → ⋮ → Product info → "
                    f"Instant readout details → Show encryption data. 32 hex digits.{hint}"
                )
            )
            yield Input(placeholder="0123456789abcdef0123456789abcdef", password=True, id="key")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _submit(self) -> None:
        error = self.query_one("#error", Static)
        try:
            # normalize_key's message names the length/characters, not the key itself.
            secret = SecretKey(normalize_key(self.query_one(Input).value))
        except InvalidKey as exc:
            error.update(Text(str(exc), style="red"))
            return
        problem = key_check_problem(secret.value, self.key_check)
        if problem is not None:
            error.update(Text(problem, style="red"))
            return
        self.dismiss(secret)

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
