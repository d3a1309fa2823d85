"""What the dashboard knows about each device: last reading, age, rate, RSSI, history, codes.

Deliberately small and free of textual, so that it can be tested (and benchmarked) alone.
The scanner's richer per-device state (issue 5) can replace it later; the screens only read
the attributes below.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
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
from victron_ble_bms.sources.readings import KeyStatus, Reading

# Instant Readout devices advertise about once a second (ecosystem-notes §3.3); ten missed
# readings in a row means the device is out of range, switched off, or its Bluetooth stopped
# (the Lithium Battery Smart manual: Bluetooth stops below 8 V or any cell below 2 V).
STALE_AFTER_S = 10.0

# Points kept per history series: at ~1 Hz this is the last ten minutes of the session.
HISTORY_POINTS = 600

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ActiveCode:
    """A code that is showing on a device, and since when (the app's clock)."""

    address: str
    device: str
    code: Code
    started: float


@dataclass(slots=True)
class DeviceState:
    address: str
    name: str
    first_seen: float
    last_seen: float
    status: KeyStatus = KeyStatus.NO_KEY
    product: str | None = None
    model_id: int | None = None
    record: Record | None = None  # last decoded record (kept when a later frame fails)
    error: str | None = None  # why the last frame gave no record
    rssi: int | None = None
    count: int = 0
    rate_hz: float | None = None
    history: dict[str, deque[float]] = field(default_factory=dict)
    codes: dict[str, ActiveCode] = field(default_factory=dict)
    codes_unknown: bool = False  # the last record's codes were not received (partial frame)

    def age(self, now: float) -> float:
        return max(0.0, now - self.last_seen)

    def stale(self, now: float) -> bool:
        return self.age(now) > STALE_AFTER_S

    @property
    def worst(self) -> Severity | None:
        return max((c.code.severity for c in self.codes.values()), default=None)

    def series(self, name: str) -> list[float]:
        return list(self.history.get(name, ()))

    def _push(self, name: str, value: float | None) -> None:
        if value is None:
            return
        points = self.history.get(name)
        if points is None:
            points = self.history[name] = deque(maxlen=HISTORY_POINTS)
        points.append(float(value))


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


class Fleet:
    """Every device seen this session, updated one reading at a time."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.devices: dict[str, DeviceState] = {}
        self.names: dict[str, str] = {}  # address → name from the key file

    def update(self, reading: Reading) -> list[ActiveCode]:
        """Apply one reading; return the codes that became active with it."""
        now = self.clock()
        adv = reading.advertisement
        dev = self.devices.get(adv.address)
        if dev is None:
            dev = DeviceState(adv.address, adv.address, now, now)
            self.devices[adv.address] = dev
        elif now > dev.last_seen:
            # Exponential moving average of the update rate; 0.2 follows changes within ~5 readings.
            inst = 1.0 / (now - dev.last_seen)
            dev.rate_hz = inst if dev.rate_hz is None else dev.rate_hz * 0.8 + inst * 0.2
        dev.last_seen = now
        dev.count += 1
        dev.status = reading.status
        dev.error = reading.error
        if adv.rssi is not None:
            dev.rssi = adv.rssi
        if reading.frame is not None:
            dev.model_id = reading.frame.model_id
            dev.product = product_name(reading.frame.model_id)
        dev.name = self.names.get(adv.address) or adv.name or dev.product or adv.address
        if reading.record is None:
            return []
        dev.record = reading.record
        for name, value in history_values(reading.record).items():
            dev._push(name, value)
        codes = reading.record.codes
        dev.codes_unknown = codes is None
        if codes is None:  # unknown: keep the codes last known, never clear them on a guess
            return []
        return self._update_codes(dev, codes, now)

    def _update_codes(
        self, dev: DeviceState, codes: Iterable[Code], now: float
    ) -> list[ActiveCode]:
        current = {c.id: c for c in codes}
        for gone in [cid for cid in dev.codes if cid not in current]:
            del dev.codes[gone]
        started: list[ActiveCode] = []
        for cid, code in current.items():
            if cid not in dev.codes:
                active = ActiveCode(dev.address, dev.name, code, now)
                dev.codes[cid] = active
                started.append(active)
        return started

    def alerts(self) -> list[ActiveCode]:
        """Every active code across all devices, newest first (worst first on a tie)."""
        every = [a for dev in self.devices.values() for a in dev.codes.values()]
        return sorted(every, key=lambda a: (-a.started, -a.code.severity, a.device, a.code.id))

    def sorted_devices(self) -> list[DeviceState]:
        return sorted(self.devices.values(), key=lambda d: (d.name.lower(), d.address))
