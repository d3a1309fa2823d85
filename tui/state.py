"""What the dashboard knows about each device: last reading, age, rate, RSSI, history, codes.

Deliberately small and free of textual, so that it can be tested (and benchmarked) alone.
Every per-device structure is bounded (issue 9 item 10): at most `MAX_DEVICES` devices (the
least recently heard is forgotten first), a fixed number of history points per series kept in
flat arrays, and one last advertisement per device.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from victron_ble_bms.protocol import (
    Code,
    LynxSmartBmsRecord,
    Record,
    SmartBmsRecord,
    SmartLithiumRecord,
)
from victron_ble_bms.protocol.codes import Severity
from victron_ble_bms.protocol.products import product_name
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import UNCONFIRMED_CHANGE
from victron_ble_bms.sources.readings import KeyStatus, Reading, shown_suspect

from .bank_state import Banks

# Instant Readout devices advertise about once a second (docs/ecosystem.md §3.3); ten missed
# readings in a row means the device is out of range, switched off, or its Bluetooth stopped
# (the Lithium Battery Smart manual: Bluetooth stops below 8 V or any cell below 2 V).
STALE_AFTER_S = 10.0

# Points kept per history series, one per second of the device's own timestamps (a device
# advertising at 10 Hz keeps its last value of each second): the last ten minutes.
HISTORY_POINTS = 600

# Devices remembered at once. More than a marina's worth of cards on one screen; beyond it the
# device heard least recently is forgotten (and its card removed), so memory stays bounded.
MAX_DEVICES = 2048

# A suspect frame (replayed, forged, implausible) stays marked on the card this long.
SUSPECT_SHOWN_S = 60.0

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ActiveCode:
    """A code that is showing on a device, and since when (the app's clock)."""

    address: str
    device: str
    code: Code
    started: float


class Series:
    """One value's history: at most HISTORY_POINTS floats in a flat array, one per second."""

    __slots__ = ("values", "_second")

    def __init__(self) -> None:
        self.values = array("d")
        self._second: int | None = None

    def push(self, ts: float, value: float) -> None:
        second = int(ts)
        if second == self._second and self.values:
            self.values[-1] = value
            return
        self._second = second
        self.values.append(value)
        if len(self.values) > HISTORY_POINTS:
            del self.values[0]


@dataclass(slots=True)
class DeviceState:
    address: str
    first_seen: float
    last_seen: float
    advertised_name: str | None = None  # from the air: shown as plain text only
    label: str | None = None  # from the keys file
    status: KeyStatus = KeyStatus.NO_KEY
    product: str | None = None
    model_id: int | None = None
    key_check: int | None = None  # the first key byte every encrypted frame carries in clear
    record: Record | None = None  # last good record (kept when a later frame fails or is suspect)
    error: str | None = None  # why the last frame gave no record
    codes_unknown: bool = False  # the last good record lacked the fields codes come from
    suspect: str | None = None  # why the last suspect frame was ignored
    suspect_at: float | None = None
    suspect_count: int = 0
    rssi: int | None = None
    count: int = 0
    rate_hz: float | None = None
    last_advertisement: Advertisement | None = None
    shown_at: float = 0.0  # monotonic time the screen last took this device (app's frames)
    history: dict[str, Series] = field(default_factory=dict)
    codes: dict[str, ActiveCode] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The keys-file label first: anyone in range can advertise any name with this
        device's address (issue 18). Then the advertised name, the product, the address."""
        return plain(self.label or self.advertised_name or self.product or self.address)

    @property
    def title(self) -> str:
        """The card title: the name alone (an advertised name beside a label would let a
        neighbour's text stand on our card)."""
        return self.name

    def age(self, now: float) -> float:
        return max(0.0, now - self.last_seen)

    def stale(self, now: float) -> bool:
        return self.age(now) > STALE_AFTER_S

    def suspect_recent(self, now: float) -> bool:
        return self.suspect_at is not None and now - self.suspect_at <= SUSPECT_SHOWN_S

    @property
    def worst(self) -> Severity | None:
        return max((c.code.severity for c in self.codes.values()), default=None)

    def series(self, name: str) -> list[float]:
        points = self.history.get(name)
        return [] if points is None else points.values.tolist()

    def _push(self, ts: float, name: str, value: float | None) -> None:
        if value is None:
            return
        points = self.history.get(name)
        if points is None:
            points = self.history[name] = Series()
        points.push(ts, float(value))


def history_values(record: Record) -> dict[str, float | None]:
    """The values whose history the detail screens draw, by series name."""
    if isinstance(record, SmartLithiumRecord):
        spread = record.cell_spread_mv
        return {
            "voltage": record.battery_voltage_v,
            "spread": None if spread is None else float(spread),
            "temperature": record.battery_temperature_c,
        }
    if isinstance(record, LynxSmartBmsRecord):
        return {
            "voltage": record.battery_voltage_v,
            "current": record.battery_current_a,
            "soc": record.soc_pct,
        }
    if isinstance(record, SmartBmsRecord):
        return {"voltage": record.battery_voltage_v, "alternator": record.alternator_voltage_v}
    return {}


def format_age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


def suspect_reason(reading: Reading) -> str | None:
    """Why a reading must not replace the device's last good values (replayed, forged or
    implausible: `Reading.suspect`, set by the device table), or None."""
    return plain(reading.suspect) if reading.suspect else None


class Fleet:
    """Every device seen this session (at most `max_devices`), updated one reading at a time."""

    def __init__(self, clock: Clock = time.time, max_devices: int = MAX_DEVICES) -> None:
        self.clock = clock
        self.max_devices = max_devices
        self.devices: dict[str, DeviceState] = {}
        self.names: dict[str, str] = {}  # address → label from the keys file
        self.forgotten: list[str] = []  # addresses dropped to stay bounded (the screen drains it)
        # The keys file's banks (issue 20); their members stale as a device card does.
        self.banks = Banks(stale_after_s=STALE_AFTER_S)
        # The status line's code counts, kept until a device's codes change (issue 26: counted
        # over every device on every frame, ~20 times a second, they cost 500 devices' loop).
        self._totals: tuple[dict[Severity, int], int] | None = None

    def update(self, reading: Reading) -> list[ActiveCode]:
        """Apply one reading; return the codes that became active with it."""
        now = self.clock()
        adv = reading.advertisement
        if self.banks:
            self.banks.update(reading)
        dev = self.devices.get(adv.address)
        if dev is None:
            if len(self.devices) >= self.max_devices:
                self._forget()
            dev = DeviceState(adv.address, now, now, label=self.names.get(adv.address))
            self.devices[adv.address] = dev
        elif now > dev.last_seen:
            # Exponential moving average of the update rate; 0.2 follows changes within ~5 readings.
            inst = 1.0 / (now - dev.last_seen)
            dev.rate_hz = inst if dev.rate_hz is None else dev.rate_hz * 0.8 + inst * 0.2
        dev.last_seen = now
        dev.count += 1
        dev.last_advertisement = adv
        if adv.rssi is not None:
            dev.rssi = adv.rssi
        if adv.name:
            dev.advertised_name = adv.name
        reason = suspect_reason(reading)
        if reason is not None:
            # Shown on the card, but the last good values stay (issue 9 item 5); a change
            # pending confirmation is not shown while they do (sources/devices.py).
            if shown_suspect(reading, dev.record is not None) is not None:
                dev.suspect, dev.suspect_at = reason, now
                dev.suspect_count += 1
            return []
        dev.status = reading.status
        dev.error = reading.error
        frame = reading.frame
        if frame is not None:
            dev.model_id = frame.model_id
            dev.product = product_name(frame.model_id)
            dev.key_check = frame.key_check
        record = reading.record
        if record is None:
            return []
        if dev.suspect_at is not None and (dev.suspect or "").startswith(UNCONFIRMED_CHANGE):
            if record != dev.record:  # the change held back is confirmed: the device's own
                dev.suspect_at = None
        dev.record = record
        if reading.note:  # a good frame saying a change of codes was never confirmed
            dev.suspect, dev.suspect_at = plain(reading.note), now
            dev.suspect_count += 1
        ts = adv.ts
        for name, value in history_values(record).items():
            dev._push(ts, name, value)
        codes: tuple[Code, ...] | None = record.codes
        if codes is None:  # fields the codes come from were not received: unknown, not clear
            if not dev.codes_unknown:
                dev.codes_unknown, self._totals = True, None
            return []
        if dev.codes_unknown:
            dev.codes_unknown, self._totals = False, None
        return self._update_codes(dev, codes, now)

    def _forget(self) -> None:
        # Forget the least recently heard eighth at once: one O(n log n) pass per n/8 new devices.
        oldest = sorted(self.devices.values(), key=lambda d: d.last_seen)
        for dev in oldest[: max(1, self.max_devices // 8)]:
            del self.devices[dev.address]
            self.forgotten.append(dev.address)
        self._totals = None

    def _update_codes(
        self, dev: DeviceState, codes: tuple[Code, ...], now: float
    ) -> list[ActiveCode]:
        current = {c.id: c for c in codes}
        if not current and not dev.codes:
            return []
        for gone in [cid for cid in dev.codes if cid not in current]:
            del dev.codes[gone]
            self._totals = None
        started: list[ActiveCode] = []
        for cid, code in current.items():
            if cid not in dev.codes:
                active = ActiveCode(dev.address, dev.name, code, now)
                dev.codes[cid] = active
                started.append(active)
                self._totals = None
        return started

    def code_totals(self) -> tuple[dict[Severity, int], int]:
        """Active codes across all devices by severity, and how many devices' codes are
        unknown (their last good record lacked the fields codes come from)."""
        if self._totals is None:
            counts: dict[Severity, int] = {}
            unknown = 0
            for dev in self.devices.values():
                unknown += dev.codes_unknown
                for active in dev.codes.values():
                    counts[active.code.severity] = counts.get(active.code.severity, 0) + 1
            self._totals = (counts, unknown)
        return self._totals

    def alerts(self) -> list[ActiveCode]:
        """Every active code across all devices, newest first (worst first on a tie)."""
        every = [a for dev in self.devices.values() for a in dev.codes.values()]
        return sorted(every, key=lambda a: (-a.started, -a.code.severity, a.device, a.code.id))

    def sorted_devices(self) -> list[DeviceState]:
        return sorted(self.devices.values(), key=sort_key)


def sort_key(dev: DeviceState) -> tuple[str, str]:
    """Cards in name order, as the VictronConnect device list."""
    return (dev.name.lower(), dev.address)
