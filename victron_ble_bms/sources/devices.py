"""Per-device state for a live scan: what each device is, whether we can read it, how fresh.

Everything here works from the clear header (protocol.md §1.1), so a device without a key is
still listed with its product and record type. The nonce is a 16-bit counter that goes up by
one per new reading (protocol.md §1.1 "Nonce behaviour", §8.3):

* same nonce, same bytes → a **repeat** (bleak reports every PropertiesChanged, RSSI-only ones
  too, ecosystem-notes §3.1) — not a new reading;
* same nonce, different bytes, or a nonce a little *behind* the last one (within
  `REPLAY_WINDOW`, the window Victron's own reader uses, DBS `seqnr_window = 60`) → a new
  reading flagged as a possible replay/spoof;
* a larger backwards jump is a restarted counter (device reboot), accepted silently.

The table is an LRU bounded by `max_devices`, so a flood of random addresses cannot grow memory.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from victron_ble_bms.protocol import LAYOUTS, DecodeError, NotInstantReadout, parse_frame
from victron_ble_bms.protocol.products import product_name

from .advertisement import Advertisement
from .readings import KeyStatus, Reading, decode_advertisement

NONCE_MODULO = 1 << 16  # 2-byte counter (protocol.md §1.1 bytes 5-6)
REPLAY_WINDOW = 60  # DBS src/ble-dbus.c seqnr_window (protocol.md §1.1)
DEFAULT_MAX_DEVICES = 512
# Devices update about once a second (protocol.md §1.1: consecutive nonces ~1 s apart); a mean
# interval between new readings this long means most updates are being lost (ecosystem-notes
# §3.3, controller duplicate filtering).
DEFAULT_SLOW_INTERVAL_S = 5.0
SLOW_MIN_READINGS = 3  # intervals needed before calling a device slow
_EWMA = 0.3  # weight of the newest interval in the update-interval average


class Outcome(enum.Enum):
    NEW = "new"  # a new reading (decoded or not)
    REPEAT = "repeat"  # same nonce and bytes: bleak re-reported it
    SUSPECT = "suspect"  # new, but looks replayed or spoofed (see module docstring)
    IGNORED = "ignored"  # not a Victron Instant Readout advertisement


@dataclass(slots=True)
class DeviceState:
    """What we know about one address. Mutable: the table updates it in place."""

    address: str
    first_seen: float
    last_seen: float = 0.0  # time of the last advertisement, repeats included
    name: str | None = None
    model_id: int | None = None
    record_type: int | None = None
    key_status: KeyStatus = KeyStatus.NO_KEY
    error: str | None = None  # why there is no record (no key, mismatch …)
    last_reading: Reading | None = None  # the last *new* reading
    last_decoded: Reading | None = None  # the last reading with a record
    rssi: int | None = None
    readings: int = 0  # new readings
    repeats: int = 0
    suspicious: int = 0
    suspicion: str | None = None  # the last replay/spoof explanation
    nonce: int | None = None
    _data: bytes = b""
    _last_new: float | None = None
    interval_s: float | None = None  # EWMA of the time between new readings
    nonce_step: float | None = None  # EWMA of the nonce increase between new readings

    @property
    def product(self) -> str | None:
        if self.model_id is None:
            return None
        return product_name(self.model_id) or f"unknown product 0x{self.model_id:04X}"

    @property
    def record_name(self) -> str | None:
        if self.record_type is None:
            return None
        layout = LAYOUTS.get(self.record_type)
        return layout.name if layout is not None else f"0x{self.record_type:02X}"

    @property
    def rate_hz(self) -> float | None:
        """New readings per second as received."""
        return None if not self.interval_s else 1.0 / self.interval_s

    def age(self, now: float) -> float | None:
        """Seconds since the last new reading."""
        return None if self._last_new is None else max(0.0, now - self._last_new)

    def slow(self, threshold_s: float = DEFAULT_SLOW_INTERVAL_S) -> bool:
        """Updates arrive far below the device's ~1 Hz (needs a few readings to say)."""
        return (
            self.readings > SLOW_MIN_READINGS
            and self.interval_s is not None
            and self.interval_s >= threshold_s
        )


@dataclass(frozen=True, slots=True)
class Update:
    """What one advertisement did to the table."""

    outcome: Outcome
    device: DeviceState | None
    reading: Reading | None = None
    status_changed: bool = False  # key status differs from the previous new reading
    suspicion: str | None = None


class DevicesState:
    """The device table: `update(adv)` for every advertisement; bounded LRU by address."""

    def __init__(
        self,
        keys: Mapping[str, bytes | str],
        *,
        max_devices: int = DEFAULT_MAX_DEVICES,
        replay_window: int = REPLAY_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_devices < 1:
            raise ValueError("max_devices must be at least 1")
        self.keys = keys
        self.max_devices = max_devices
        self.replay_window = replay_window
        self.clock = clock
        self._devices: OrderedDict[str, DeviceState] = OrderedDict()
        self.evicted = 0  # devices dropped to stay within max_devices

    def __len__(self) -> int:
        return len(self._devices)

    def __iter__(self) -> Iterator[DeviceState]:
        return iter(list(self._devices.values()))

    def __contains__(self, address: object) -> bool:
        return address in self._devices

    def get(self, address: str) -> DeviceState | None:
        return self._devices.get(address)

    def update(self, adv: Advertisement) -> Update:
        data = adv.victron_data
        if data is None:
            return Update(Outcome.IGNORED, None)
        try:
            frame = parse_frame(data)
        except NotInstantReadout:
            return Update(Outcome.IGNORED, None)
        except DecodeError:
            frame = None  # Victron data but cut short: still a device, "undecodable"
        dev = self._device(adv)
        dev.last_seen = adv.ts
        if adv.rssi is not None:
            dev.rssi = adv.rssi
        if adv.name:
            dev.name = adv.name
        suspicion: str | None = None
        if frame is not None:
            dev.model_id = frame.model_id
            dev.record_type = frame.record_type
            if dev.nonce is not None:
                back = (dev.nonce - frame.nonce) % NONCE_MODULO
                if back == 0:
                    if data == dev._data:
                        dev.repeats += 1
                        return Update(Outcome.REPEAT, dev)
                    suspicion = (
                        f"nonce {frame.nonce} reused with different data: "
                        "possible replayed or spoofed frame"
                    )
                elif back <= self.replay_window:
                    suspicion = (
                        f"nonce went back from {dev.nonce} to {frame.nonce}: "
                        "possible replayed frame"
                    )
                else:
                    self._timing(dev, adv.ts, (frame.nonce - dev.nonce) % NONCE_MODULO)
            else:
                self._timing(dev, adv.ts, None)
            if suspicion is None:
                dev.nonce = frame.nonce
        elif data == dev._data:
            dev.repeats += 1
            return Update(Outcome.REPEAT, dev)
        dev._data = data
        reading = decode_advertisement(adv, self.keys)
        changed = dev.readings == 0 or reading.status is not dev.key_status
        dev.key_status = reading.status
        dev.error = reading.error
        dev.readings += 1
        dev.last_reading = reading
        if reading.record is not None:
            dev.last_decoded = reading
        if suspicion is not None:
            dev.suspicious += 1
            dev.suspicion = suspicion
            return Update(Outcome.SUSPECT, dev, reading, changed, suspicion)
        return Update(Outcome.NEW, dev, reading, changed)

    def _device(self, adv: Advertisement) -> DeviceState:
        dev = self._devices.get(adv.address)
        if dev is not None:
            self._devices.move_to_end(adv.address)
            return dev
        dev = DeviceState(adv.address, first_seen=adv.ts)
        self._devices[adv.address] = dev
        while len(self._devices) > self.max_devices:
            self._devices.popitem(last=False)
            self.evicted += 1
        return dev

    @staticmethod
    def _timing(dev: DeviceState, ts: float, step: int | None) -> None:
        if dev._last_new is not None and ts > dev._last_new:
            interval = ts - dev._last_new
            dev.interval_s = (
                interval
                if dev.interval_s is None
                else (1 - _EWMA) * dev.interval_s + _EWMA * interval
            )
        if step is not None:
            dev.nonce_step = (
                float(step)
                if dev.nonce_step is None
                else (1 - _EWMA) * dev.nonce_step + _EWMA * step
            )
        dev._last_new = ts

    def slow_devices(self, threshold_s: float = DEFAULT_SLOW_INTERVAL_S) -> list[DeviceState]:
        return [d for d in self._devices.values() if d.slow(threshold_s)]
