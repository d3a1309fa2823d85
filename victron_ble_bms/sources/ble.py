"""The live source: bleak's `BleakScanner`, turned into `Advertisement` values.

Active scanning is the default. `passive=True` (Linux only) registers a BlueZ
AdvertisementMonitor with one or_pattern on the Victron Instant Readout prefix — manufacturer
data `e1 02 10` (company 0x02E1, then 0x10 "product advertisement") — the only way bleak can
scan passively (docs/ecosystem.md §3.2). On macOS CoreBluetooth hides addresses behind per-host
UUIDs; `use_bdaddr` asks bleak for the real address where the OS allows it (§3.4), and UUIDs
work as device ids in the keys file either way.

bleak is imported when a scanner is built, so the rest of the package works without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from victron_ble_bms.protocol import COMPANY_ID

from .advertisement import AddressError, Advertisement, normalize_address
from .loop_errors import connection_gone, one_line_loop_errors

if TYPE_CHECKING:
    from bleak import BleakScanner
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

log = logging.getLogger(__name__)
T = TypeVar("T")

# Manufacturer Specific Data AD structure content: company id 0x02E1 little-endian, then the
# record prefix 0x10 "product advertisement" (docs/protocol.md §1.1; docs/ecosystem.md §3.2 [E1]).
VICTRON_PREFIX = COMPANY_ID.to_bytes(2, "little") + b"\x10"
# bleak waits this long for StopDiscovery; a vanished bluetoothd never answers (§3.5).
STOP_TIMEOUT_S = 3.0
# Every start-up call to D-Bus gets an answer within this, or the scan says who is stuck: a
# frozen bluetoothd (or dbus-daemon) still owns its name and never replies (issue 9 item 6).
CALL_TIMEOUT_S = 5.0
# bleak's start is several calls (GetManagedObjects, SetDiscoveryFilter, StartDiscovery …).
START_TIMEOUT_S = 3 * CALL_TIMEOUT_S
NO_ANSWER = (
    "bluetoothd does not answer on D-Bus (no reply within {s:g} s): restart it with "
    "'sudo systemctl restart bluetooth'"
)
BUS_GONE = (
    "cannot reach the D-Bus system bus (is D-Bus running? on Linux: 'sudo systemctl start dbus')"
)


class ScanError(Exception):
    """Scanning could not start or broke; the message says why and what to do."""

    def __init__(self, message: str, *, unavailable: bool = False, bus_gone: bool = False) -> None:
        super().__init__(message)
        # True when Bluetooth itself is missing (no bus, no bluetoothd, no adapter, powered
        # off): waiting may help, retrying at once will not.
        self.unavailable = unavailable or bus_gone
        # True when the D-Bus system bus itself cannot be reached (dbus-daemon not running).
        self.bus_gone = bus_gone


async def answered(call: Awaitable[T], timeout: float, message: str) -> T:
    """`await call`, or `ScanError(message)` when nobody answers within `timeout` seconds."""
    try:
        return await asyncio.wait_for(call, timeout)
    except TimeoutError:
        raise ScanError(message, unavailable=True) from None


@dataclass(frozen=True, slots=True)
class ScanOptions:
    passive: bool = False
    adapter: str | None = None  # 'hci1'; None = bleak's default (first powered central)
    use_bdaddr: bool = True  # macOS: real addresses instead of CoreBluetooth UUIDs if possible


def to_advertisement(
    address: str,
    manufacturer_data: dict[int, bytes],
    rssi: int | None,
    name: str | None,
    ts: float,
) -> Advertisement:
    """bleak's view of one advertisement → our `Advertisement` (origin 'bluez' / 'bleak')."""
    try:
        norm = normalize_address(address)
    except AddressError:
        norm = address  # keep whatever the OS calls it; it still identifies the device
    return Advertisement(
        ts=ts,
        address=norm,
        manufacturer_data={int(k): bytes(v) for k, v in manufacturer_data.items()},
        rssi=None if rssi is None or rssi == -127 else int(rssi),  # -127: bleak's "unknown"
        name=name or None,
        origin="bluez" if sys.platform.startswith("linux") else "bleak",
    )


_bus_gone = connection_gone


def explain(exc: BaseException, options: ScanOptions) -> ScanError:
    """Any failure from bleak/dbus-fast → one sentence a user can act on."""
    if isinstance(exc, ScanError):
        return exc
    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    where = f"adapter {options.adapter}" if options.adapter else "a Bluetooth adapter"
    dbus_error = getattr(exc, "dbus_error", "") or ""
    if _bus_gone(exc):
        return ScanError(BUS_GONE, bus_gone=True)
    if isinstance(exc, PermissionError) or "AccessDenied" in dbus_error:
        return ScanError(
            "permission denied talking to BlueZ: run as a user in group 'bluetooth' or with sudo",
            unavailable=True,
        )
    if "ServiceUnknown" in dbus_error or "ServiceUnknown" in text or "NameHasNoOwner" in text:
        return ScanError(
            "bluetoothd is not running (nobody owns org.bluez on the system bus): "
            "start it with 'sudo systemctl start bluetooth'",
            unavailable=True,
        )
    if name == "BleakBluetoothNotAvailableError":
        reason = str(getattr(getattr(exc, "reason", None), "name", ""))
        if reason == "POWERED_OFF":
            return ScanError(
                "the Bluetooth adapter is powered off: run 'bluetoothctl power on' "
                "(or 'rfkill unblock bluetooth')",
                unavailable=True,
            )
        if reason == "NO_BLE_CENTRAL_ROLE":
            return ScanError("no Bluetooth LE adapter that can scan was found", unavailable=True)
        return ScanError("no Bluetooth adapter found (check 'bluetoothctl list')", unavailable=True)
    if "adapter" in text.lower() and ("not found" in text.lower() or "does not" in text.lower()):
        return ScanError(
            f"{where} is not present (check 'bluetoothctl list' and --adapter)", unavailable=True
        )
    if "UnknownObject" in dbus_error or "UnknownMethod" in dbus_error:
        return ScanError(f"{where} vanished while scanning ({dbus_error})", unavailable=True)
    if "NotReady" in dbus_error:
        return ScanError(f"{where} is not ready (powered off?)", unavailable=True)
    if "requires BlueZ >= 5.56" in text:
        return ScanError(
            "passive scanning needs BlueZ >= 5.56 started with --experimental and Linux >= 5.10; "
            "scan without --passive"
        )
    if name == "BleakDBusError":
        return ScanError(f"BlueZ refused to scan: {text}")
    return ScanError(f"scanning failed: {name}: {text}")


class BleSource:
    """One bleak scanning session; `start()` / `stop()` may be called again after `stop()`.

    `on_advertisement` is called (on the event loop) for every advertisement bleak reports —
    on BlueZ that includes RSSI-only changes, so consumers de-duplicate by nonce (§3.1).
    """

    def __init__(
        self,
        on_advertisement: Callable[[Advertisement], None],
        options: ScanOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or ScanOptions()
        self._on_advertisement = on_advertisement
        self._clock = clock
        self._scanner: BleakScanner | None = None

    @property
    def running(self) -> bool:
        return self._scanner is not None

    def _callback(self, device: BLEDevice, data: AdvertisementData) -> None:
        adv = to_advertisement(
            device.address, data.manufacturer_data, data.rssi, data.local_name, self._clock()
        )
        self._on_advertisement(adv)

    def _build(self) -> BleakScanner:
        try:
            from bleak import BleakScanner
            from bleak.assigned_numbers import AdvertisementDataType
        except ImportError:
            raise ScanError(
                "live scanning needs bleak: pip install 'victron-ble-bms[full]'"
            ) from None
        bluez: dict[str, Any] = {}
        if self.options.adapter:
            bluez["adapter"] = self.options.adapter
        mode = "active"
        if self.options.passive:
            if not sys.platform.startswith("linux"):
                raise ScanError("--passive works on Linux only (BlueZ advertisement monitors)")
            mode = "passive"
            bluez["or_patterns"] = [
                (0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, VICTRON_PREFIX)
            ]
        kwargs: dict[str, Any] = {"scanning_mode": mode, "bluez": bluez}
        if sys.platform == "darwin" and self.options.use_bdaddr:
            kwargs["cb"] = {"use_bdaddr": True}
        try:
            return BleakScanner(self._callback, **kwargs)
        except Exception as exc:  # bleak's constructor errors are configuration errors
            raise explain(exc, self.options) from None

    async def start(self) -> None:
        """Start scanning; any failure is a `ScanError` with a specific message."""
        if self._scanner is not None:
            return
        scanner = self._build()
        try:
            await answered(scanner.start(), START_TIMEOUT_S, NO_ANSWER.format(s=START_TIMEOUT_S))
        except Exception as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(scanner.stop(), STOP_TIMEOUT_S)
            raise explain(exc, self.options) from None
        self._scanner = scanner

    async def stop(self) -> None:
        """Stop; errors are logged, never raised (the service may already be gone, §3.5)."""
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            await asyncio.wait_for(scanner.stop(), STOP_TIMEOUT_S)
        except Exception as exc:
            log.debug("stopping the scanner: %s", explain(exc, self.options))


async def close_bleak_bus() -> None:
    """bleak keeps one D-Bus connection per event loop; close it before the loop ends so
    nothing is left to complain at exit."""
    try:
        from bleak.backends.bluezdbus import manager
    except ImportError:
        return
    instance = manager._global_instances.pop(asyncio.get_running_loop(), None)
    bus = getattr(instance, "_bus", None)
    if bus is None or not bus.connected:
        return
    # bleak's bus watcher logs "connection to BlueZ was lost" — not news when we close it.
    bleak_log = logging.getLogger(manager.__name__)
    level = bleak_log.level
    bleak_log.setLevel(logging.ERROR)
    try:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.wait_for_disconnect(), 2)
        task = getattr(instance, "_bus_watcher_task", None)
        if task is not None:
            await asyncio.wait({task}, timeout=2)
    finally:
        bleak_log.setLevel(level)


def quiet_lost_bus(loop: asyncio.AbstractEventLoop) -> None:
    """When the D-Bus daemon dies, the failed futures it leaves are logged at debug level, not
    printed with a traceback; the watchdog reports the loss in one line (issue 9 item 6)."""
    one_line_loop_errors(loop)
