"""The declared banks over a capture's frames, for `decode --format jsonl` (issue 20, issue 18).

`decode` prints every frame as it decoded it: a capture is evidence, and an installer wants to
see each frame, forged or not. A bank is different: it is a verdict ("ok", "alarm"), and a
verdict must not come from a frame a stranger could have sent. So each bank member's frames go
through the same device table the live paths use (`sources/devices.py`: nonce sequence,
plausibility, and the confirmation rule of `sources/confirm.py`) before the bank sees them: an
unconfirmed change, a partial, implausible, replayed or forged frame never replaces the
member's last trusted values (`banks.member_reading`), exactly as on `scan --json`, `serve` and
the dashboard. The cost is the confirmation delay: a genuine change reaches the bank line with
the frame that confirms it (about one advertising interval later), not with the frame that
first carried it.

Only the members' frames are judged (the table holds at most one entry per member), so a
capture with thousands of other devices costs no more than before.
"""

from __future__ import annotations

from collections.abc import Mapping

from victron_ble_bms.banks import BankSpec, BankTracker
from victron_ble_bms.protocol.crypto import KeyLike
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import DevicesState


class CaptureBanks:
    """`lines(adv)`: the `{"type": "bank"}` JSON lines (with their newline) that one frame of a
    capture causes, judged through the device table."""

    def __init__(self, banks: Mapping[str, BankSpec], keys: Mapping[str, KeyLike]) -> None:
        self.tracker = BankTracker(banks)
        self.members = frozenset(a for spec in banks.values() for a in spec.addresses)
        self.judge = DevicesState(
            {a: k for a, k in keys.items() if a in self.members},
            max_devices=max(1, len(self.members)),
        )

    def lines(self, adv: Advertisement) -> list[str]:
        if adv.address not in self.members:
            return []
        reading = self.judge.update(adv).reading
        if reading is None:  # a repeat of the member's last frame: nothing new
            return []
        return self.tracker.lines(reading)
