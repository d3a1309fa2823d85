"""Every device's latest reading, kept once in `serve` for the sinks that show everything.

MQTT publishes each reading as it comes; a web page or a Signal K server that connects later
needs the whole picture at once: each device's last good values, how old they are, and why a
device has none (no key, key mismatch, a suspect frame). That picture is the `Board`.

Rules (the same as the MQTT state topics, `mqtt/publisher.py`):
- a suspect reading (replayed or forged frame, implausible values) never replaces the last good
  values: the device shows its last good state with `"suspect": "<reason>"`; a change pending
  confirmation does not replace them either, but is not shown as suspect (`shown_suspicion`);
- the keys file's name wins over any name from the air (a neighbour can't rename a device);
  a device without one is shown by the first name heard, as plain text;
- keyed devices are kept while the keys file names them; others in a bounded LRU table, so a
  flood of random addresses can't push a real device out of memory;
- the banks declared with the keys (`banks/`) are judged from their members' readings, on the
  readings' own clock (capture time when replaying) carried forward between readings, so a
  member that falls silent makes its bank degraded even when no other member speaks.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from victron_ble_bms.banks import BankSpec, BankState, BankTracker, bank_object, declared_banks
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.readings import Reading, shown_suspect

MAX_NAME = 64  # characters of an advertised name kept (HA's device names use the same bound)
MAX_UNKEYED = 256  # devices without a key kept for display


@dataclass(slots=True)
class DeviceEntry:
    address: str
    keyed: bool
    latest: Reading  # the last reading, whatever it was
    good: Reading | None  # the last trusted one: a record, not suspect, not implausible
    last_seen: float  # on the board's clock
    heard_name: str | None = None  # the first name heard, as plain text

    @property
    def shown(self) -> Reading:
        """The reading whose values to show: the last good one when there is one."""
        return self.good if self.good is not None else self.latest


def suspicion(reading: Reading) -> str | None:
    """Why a reading with a record must not replace the last good values, or None."""
    record = reading.record
    if record is None:
        return None
    suspect = getattr(reading, "suspect", None)
    if suspect:
        return str(suspect)
    implausible = tuple(getattr(record, "implausible", ()) or ())
    if implausible:
        return "implausible — wrong key or corrupt frame? " + "; ".join(implausible)
    return None


class Board:
    def __init__(
        self,
        keys: Mapping[str, Any],
        *,
        names: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stale_after_s: float = 60.0,
        max_unkeyed: int = MAX_UNKEYED,
        banks: Mapping[str, BankSpec] | None = None,
    ) -> None:
        self.keys = keys
        self.names = names or (lambda _address: None)
        self.clock = clock
        self.stale_after_s = stale_after_s
        self.max_unkeyed = max_unkeyed
        self.keyed: dict[str, DeviceEntry] = {}
        self.unkeyed: OrderedDict[str, DeviceEntry] = OrderedDict()
        self.version = 0  # goes up with every reading taken: a viewer's cheap "anything new?"
        self.banks_version = 0  # goes up when a bank's state changes (not its clock alone)
        self.banks = BankTracker(
            declared_banks(keys) if banks is None else banks, stale_after_s=stale_after_s
        )
        self._ts_ahead = 0.0  # the readings' clock minus ours, as of the latest reading

    def reading(self, reading: Reading) -> DeviceEntry:
        now = self.clock()
        address = reading.advertisement.address
        keyed = address in self.keys
        table = self.keyed if keyed else self.unkeyed
        entry = table.get(address)
        if entry is None:
            (self.unkeyed if keyed else self.keyed).pop(address, None)
            entry = table[address] = DeviceEntry(address, keyed, reading, None, now)
            if not keyed:
                while len(self.unkeyed) > self.max_unkeyed:
                    self.unkeyed.popitem(last=False)
        elif not keyed:
            self.unkeyed.move_to_end(address)
        entry.latest = reading
        entry.last_seen = now
        if reading.record is not None and suspicion(reading) is None:
            entry.good = reading
        if entry.heard_name is None and reading.advertisement.name:
            entry.heard_name = plain(reading.advertisement.name, MAX_NAME)
        if self.banks:
            self._ts_ahead = reading.advertisement.ts - now
            if self.banks.update(reading):
                self.banks_version += 1
        self.version += 1
        return entry

    def tick(self) -> None:
        """About once a second: banks whose members fell silent become degraded."""
        if self.banks and self.banks.tick(self.clock() + self._ts_ahead):
            self.banks_version += 1

    def bank_states(self) -> list[BankState]:
        """Every declared bank, judged now (by name)."""
        return [self.banks.state(name) for name in sorted(self.banks.banks)]

    def bank_objects(self) -> list[dict[str, Any]]:
        """`bank_states` as the JSON every output shares (`banks.bank_object`)."""
        return [bank_object(state) for state in self.bank_states()]

    def keys_changed(self) -> None:
        """Devices that lost their key move to the unkeyed table (and may age out of it); the
        banks are declared anew."""
        self.banks.set_banks(declared_banks(self.keys))
        self.banks_version += 1
        for address in [a for a in self.keyed if a not in self.keys]:
            entry = self.keyed.pop(address)
            entry.keyed = False
            entry.good = None
            self.unkeyed[address] = entry
        self.version += 1

    def shown_suspicion(self, entry: DeviceEntry) -> str | None:
        """What every viewer of the board shows as the device's `suspect` (the web page, Signal
        K's `bms.suspect`): why its latest frame was not taken, unless that frame is a change
        still pending confirmation while the last good values stand (sources/devices.py); a
        good frame's note (a change never confirmed) too."""
        latest = entry.latest
        shown = shown_suspect(latest, entry.good is not None)
        if shown is not None or latest.pending or latest.record is None:
            return shown
        return suspicion(latest)  # implausible values from a feed that did not judge them

    def name(self, entry: DeviceEntry) -> str | None:
        """The keys file's name, else the first name heard (plain text either way)."""
        configured = self.names(entry.address)
        return plain(configured, MAX_NAME) if configured else entry.heard_name

    def age_s(self, entry: DeviceEntry, now: float | None = None) -> float:
        return max(0.0, (self.clock() if now is None else now) - entry.last_seen)

    def stale(self, entry: DeviceEntry, now: float | None = None) -> bool:
        return self.age_s(entry, now) > self.stale_after_s

    def __iter__(self) -> Iterator[DeviceEntry]:
        """Keyed devices first (by address), then the others, most recently heard first."""
        yield from (self.keyed[a] for a in sorted(self.keyed))
        yield from reversed(list(self.unkeyed.values()))

    def __len__(self) -> int:
        return len(self.keyed) + len(self.unkeyed)

    def get(self, address: str) -> DeviceEntry | None:
        return self.keyed.get(address) or self.unkeyed.get(address)

    def readings(self) -> dict[str, Reading]:
        """Each device's reading to show (last good, else latest), by address: what a bank is
        computed from."""
        return {entry.address: entry.shown for entry in self}
