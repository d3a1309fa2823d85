"""The declared banks as the dashboard sees them (issue 20): the latest reading of each member
and each bank's state, judged by `victron_ble_bms.banks` on the dashboard's clock. No textual
here, like `state.py` (which holds one `Banks` in its `Fleet`).

A bank is judged when a screen asks (`state`): after a frame in which a member's reading
arrived, and at every tick — a member that falls silent turns the bank degraded after the
stale time even though no reading says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from victron_ble_bms.banks import BankSpec, BankState, bank_state, member_reading
from victron_ble_bms.sources.readings import KeyStatus, Reading

# The prefix of a bank card's id in the device list: device ids are addresses ("AA:BB:…"),
# which never start with it.
BANK_ID = "bank:"


class Banks:
    """The banks declared in the keys file, and the latest reading of each of their members."""

    def __init__(self, specs: Mapping[str, BankSpec] | None = None, stale_after_s: float = 10.0):
        self.stale_after_s = stale_after_s
        self.latest: dict[str, Reading] = {}  # member address → its latest reading (any status)
        self.dirty: dict[str, None] = {}  # banks with a new member reading since the last frame
        self.shown_at: dict[str, float] = {}  # monotonic time a frame last took each bank
        self.set_specs(specs or {})

    def set_specs(self, specs: Mapping[str, BankSpec]) -> None:
        # Shown in name order; a device in two banks (a mistake the bank's problems name) is
        # placed under the first.
        self.specs = dict(sorted(specs.items(), key=lambda kv: (kv[0].casefold(), kv[0])))
        self._index = {name: i for i, name in enumerate(self.specs)}
        self._of: dict[str, list[str]] = {}
        self._place: dict[str, tuple[int, int]] = {}
        for b, spec in enumerate(self.specs.values()):
            for m, address in enumerate(spec.addresses):
                self._of.setdefault(address, []).append(spec.name)
                self._place.setdefault(address, (b, m))
        self.dirty = {name: None for name in self.specs}

    def __bool__(self) -> bool:
        return bool(self.specs)

    def update(self, reading: Reading) -> None:
        """Keep a member's reading (a keyless one too: the bank says so; a suspect one only
        while the member has no trusted reading — banks.member_reading)."""
        address = reading.advertisement.address
        names = self._of.get(address)
        if names is None or reading.status is KeyStatus.NOT_VICTRON:
            return
        self.latest[address] = member_reading(self.latest.get(address), reading)
        for name in names:
            self.dirty[name] = None

    def state(self, name: str, now: float) -> BankState:
        return bank_state(self.specs[name], self.latest, now, self.stale_after_s)

    def place(self, address: str) -> tuple[int, int] | None:
        """(bank's index, member's index) of a member device, for its card's place under its
        bank's card; None when the device is in no bank."""
        return self._place.get(address)

    def index(self, name: str) -> int:
        return self._index[name]

    def reading(self, address: str | None) -> Reading | None:
        return None if address is None else self.latest.get(address)
