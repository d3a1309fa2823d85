"""Advertise emulated devices through BlueZ: one `org.bluez.LEAdvertisement1` per device.

Works on the real system bus with a real adapter, or on any bus address (the virtual BlueZ in
`virtual_bluez.py` uses exactly this code path). How BlueZ handles advertisements:
docs/ecosystem.md §4 (BlueZ `doc/org.bluez.LEAdvertisement.rst`, `src/advertising.c`).

A real adapter advertises every instance from **its own** address (or a random one the kernel
picks): the emulated device's address cannot be spoofed through this API, so scanners see the
adapter's address, not the `AA:BB:…` the emulator assigned. The emulated address is still encoded
in the advertisement's object path (`/org/victron_ble_bms/advertisement/dev_AA_BB_CC_DD_EE_FF`),
which real BlueZ ignores and the virtual BlueZ uses to give each device its own Device1 address.
"""

# No `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from the
# annotations, and a deferred "None" return annotation is not a signature it understands.
import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature, DBusStr
from dbus_fast.errors import AuthError
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.sources.advertisement import Advertisement, normalize_address

_log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADAPTER_IFACE = "org.bluez.Adapter1"
ADVERTISING_MANAGER_IFACE = "org.bluez.LEAdvertisingManager1"
ADVERTISEMENT_IFACE = "org.bluez.LEAdvertisement1"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"

#: Our advertisement objects live here; the last element carries the emulated address.
ADVERTISEMENT_ROOT = "/org/victron_ble_bms/advertisement"

# Legacy advertising PDU: at most 31 bytes of AD structures, and 31 more in the scan response
# (Core Spec Vol 3 Part C §11). If the data is longer BlueZ silently switches to *extended*
# advertising, which legacy scanners never see (docs/ecosystem.md §4, BlueZ `calc_max_adv_len`).
LEGACY_ADV_MAX = 31
# We always reserve the 3-byte Flags AD (len, 0x01, flags): the kernel adds one to a broadcast
# advertisement whenever BR/EDR is disabled or discoverable flags apply, and real Victron
# advertisements carry Flags 0x06 (docs/ecosystem.md §4, ESPH#37 log) — so the check holds on
# every adapter.
FLAGS_AD_LEN = 3
# Manufacturer Specific Data AD: length byte + type 0xFF + 2-byte company id + data.
MSD_OVERHEAD = 4
# Complete Local Name AD in the scan response: length byte + type 0x09 + name.
NAME_AD_OVERHEAD = 2

# Updates between two round trips to the bus daemon (see BluezAdvertiser._sync).
_SYNC_EVERY = 32

ManufacturerDataT = Annotated[dict[int, Variant], DBusSignature("a{qv}")]


class AdvertisingError(RuntimeError):
    """Advertising is impossible; the message says why and what to do."""


class AdvertisementTooLarge(AdvertisingError):
    """The data would not fit a 31-byte legacy advertisement."""


def advertisement_path(address: str) -> str:
    """`AA:BB:CC:DD:EE:FF` → `/org/victron_ble_bms/advertisement/dev_AA_BB_CC_DD_EE_FF`."""
    return f"{ADVERTISEMENT_ROOT}/dev_{normalize_address(address).replace(':', '_')}"


def address_from_path(path: str) -> str | None:
    """Inverse of `advertisement_path` (None for paths not following the convention)."""
    last = path.rsplit("/", 1)[-1]
    if not last.startswith("dev_"):
        return None
    try:
        return normalize_address(last[4:].replace("_", ":"))
    except ValueError:
        return None


def legacy_adv_length(manufacturer_data: dict[int, bytes]) -> int:
    """Bytes of advertising data BlueZ will send: reserved Flags AD + one MSD AD per company."""
    return FLAGS_AD_LEN + sum(MSD_OVERHEAD + len(d) for d in manufacturer_data.values())


def scan_response_name(name: str | None) -> str | None:
    """The name cut to what fits one scan response (29 UTF-8 bytes), on a character boundary."""
    if not name:
        return None
    limit = LEGACY_ADV_MAX - NAME_AD_OVERHEAD
    raw = name.encode("utf-8")
    if len(raw) <= limit:
        return name
    return raw[:limit].decode("utf-8", errors="ignore")


class LEAdvertisement(ServiceInterface):
    """One broadcast advertisement (BlueZ `doc/org.bluez.LEAdvertisement.rst`)."""

    def __init__(self, manufacturer_data: dict[int, bytes], local_name: str | None) -> None:
        super().__init__(ADVERTISEMENT_IFACE)
        self._manufacturer_data = dict(manufacturer_data)
        self._local_name = local_name
        self.released = asyncio.Event()

    @property
    def manufacturer_data(self) -> dict[int, bytes]:
        return dict(self._manufacturer_data)

    def set_data(self, manufacturer_data: dict[int, bytes]) -> None:
        """New data without telling anyone (before (re-)registering)."""
        self._manufacturer_data = dict(manufacturer_data)

    def update(self, manufacturer_data: dict[int, bytes]) -> None:
        """New frame: BlueZ refreshes the advertisement on PropertiesChanged, no re-register."""
        self._manufacturer_data = dict(manufacturer_data)
        self.emit_properties_changed({"ManufacturerData": self.ManufacturerData})

    @dbus_method()
    def Release(self) -> None:  # noqa: N802 — D-Bus member name
        # BlueZ calls this when it drops the advertisement itself (adapter gone, bluetoothd
        # exiting); the advertiser re-registers on the next publish.
        self.released.set()

    # "broadcast": neither connectable nor discoverable, like a beacon (BlueZ get_adv_flags).
    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:  # noqa: N802
        return "broadcast"

    @dbus_property(PropertyAccess.READ)
    def ManufacturerData(self) -> ManufacturerDataT:  # noqa: N802
        return {cid: Variant("ay", data) for cid, data in self._manufacturer_data.items()}

    # A LocalName makes BlueZ put the name in the scan response (`generate_scan_rsp`), keeping
    # the 31 advertising bytes for Flags + manufacturer data. Disabled when there is no name.
    @dbus_property(PropertyAccess.READ)
    def LocalName(self) -> DBusStr:  # noqa: N802
        return self._local_name or ""


class _NamelessAdvertisement(LEAdvertisement):
    """Same, without a LocalName property (an empty name would still occupy the scan response)."""

    @dbus_property(PropertyAccess.READ, disabled=True)
    def LocalName(self) -> DBusStr:  # noqa: N802
        return ""


@dataclass(slots=True)
class _Registered:
    path: str
    obj: LEAdvertisement
    registered: bool = False
    lost: bool = False  # was registered once; BlueZ dropped it


# D-Bus error names → what the user should do. Real BlueZ replies (src/advertising.c,
# src/error.c) and the bus daemon's own errors.
_NO_BLUETOOTHD = (
    "bluetoothd is not running (no owner of org.bluez on the system bus): "
    "start it with 'sudo systemctl start bluetooth'"
)


def _permission_hint(detail: str) -> str:
    return (
        f"permission denied by the D-Bus policy ({detail}): run as a user allowed to talk to "
        "org.bluez (e.g. in group 'bluetooth') or with sudo"
    )


class BluezAdvertiser:
    """Registers one LEAdvertisement1 per emulated device on a BlueZ adapter.

    `bus_address=None` means the system bus (`DBUS_SYSTEM_BUS_ADDRESS` or the default socket).
    `close()` unregisters every advertisement; call it on exit, also after Ctrl-C/SIGTERM.
    """

    def __init__(self, *, adapter: str = "hci0", bus_address: str | None = None) -> None:
        self.adapter = adapter
        self.adapter_path = f"/org/bluez/{adapter}"
        self.bus_address = bus_address
        self._bus: MessageBus | None = None
        self._ads: dict[str, _Registered] = {}
        self._lock = asyncio.Lock()
        self.supported_instances: int | None = None
        self._warned_lost = False
        self._unsynced = 0

    @property
    def addresses(self) -> tuple[str, ...]:
        """Emulated addresses currently advertised."""
        return tuple(a for a, r in self._ads.items() if r.registered)

    async def start(self) -> None:
        if self._bus is not None:
            return
        where = self.bus_address or "the system bus"
        try:
            if self.bus_address is None:
                bus = MessageBus(bus_type=BusType.SYSTEM)
            else:
                bus = MessageBus(bus_address=self.bus_address)
            self._bus = await bus.connect()
        except PermissionError as exc:
            raise AdvertisingError(_permission_hint(f"cannot open {where}: {exc}")) from None
        except AuthError as exc:
            raise AdvertisingError(_permission_hint(f"authentication refused: {exc}")) from None
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AdvertisingError(
                f"cannot connect to {where} ({exc.strerror or exc}): is D-Bus running?"
            ) from None
        except OSError as exc:
            raise AdvertisingError(f"cannot connect to {where}: {exc}") from None
        try:
            await self._check_adapter()
        except BaseException:
            self._disconnect()
            raise

    async def _check_adapter(self) -> None:
        reply = await self._call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            [BLUEZ],
        )
        if not reply.body[0]:
            raise AdvertisingError(_NO_BLUETOOTHD)
        # A restarted bluetoothd forgets every registration: watch the name so we re-register.
        await self._call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [
                "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
                f"arg0='{BLUEZ}'"
            ],
        )
        if self._bus is not None:
            self._bus.add_message_handler(self._on_signal)
        props = await self._get_all(
            ADAPTER_IFACE,
            missing=f"no Bluetooth adapter {self.adapter} (check 'bluetoothctl list'; "
            "choose another adapter)",
        )
        if not props.get("Powered", Variant("b", False)).value:
            raise AdvertisingError(
                f"Bluetooth adapter {self.adapter} is powered off: "
                "run 'bluetoothctl power on' (or 'rfkill unblock bluetooth')"
            )
        manager = await self._get_all(
            ADVERTISING_MANAGER_IFACE,
            missing=f"adapter {self.adapter} cannot advertise: no "
            "org.bluez.LEAdvertisingManager1 (needs an LE adapter and BlueZ >= 5.43)",
        )
        if "SupportedInstances" in manager:
            self.supported_instances = int(manager["SupportedInstances"].value)

    def _on_signal(self, msg: Message) -> None:
        if msg.message_type != MessageType.SIGNAL or msg.member != "NameOwnerChanged":
            return
        if msg.body[0] != BLUEZ:
            return
        # bluetoothd went away or was replaced: its registrations are gone with it.
        for entry in self._ads.values():
            if entry.registered:
                entry.registered = False
                entry.lost = True

    async def _get_all(self, interface: str, *, missing: str) -> dict[str, Variant]:
        reply = await self._call(
            BLUEZ, self.adapter_path, PROPERTIES_IFACE, "GetAll", "s", [interface], missing=missing
        )
        result: dict[str, Variant] = reply.body[0]
        return result

    async def _call(
        self,
        dest: str,
        path: str,
        interface: str,
        member: str,
        signature: str,
        body: list[Any],
        *,
        missing: str | None = None,
    ) -> Message:
        """One method call; D-Bus errors become `AdvertisingError` with a specific message."""
        if self._bus is None or not self._bus.connected:
            raise AdvertisingError(
                f"lost the D-Bus connection to {self.bus_address or 'the system bus'}"
            )
        reply = await self._bus.call(
            Message(
                destination=dest,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=body,
            )
        )
        if reply is None:  # only for NO_REPLY_EXPECTED calls, which we never make
            raise AdvertisingError(f"no reply to {member}")
        if reply.message_type == MessageType.ERROR:
            raise self._explain(reply.error_name or "", _error_text(reply), member, missing)
        return reply

    def _explain(self, name: str, text: str, member: str, missing: str | None) -> AdvertisingError:
        if name in (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.NameHasNoOwner",
        ):
            return AdvertisingError(_NO_BLUETOOTHD)
        if name == "org.freedesktop.DBus.Error.AccessDenied":
            return AdvertisingError(_permission_hint(text))
        if name in (
            "org.freedesktop.DBus.Error.UnknownObject",
            "org.freedesktop.DBus.Error.UnknownMethod",
            "org.freedesktop.DBus.Error.UnknownInterface",
            # gdbus (real bluetoothd) answers GetAll of a missing interface with InvalidArgs
            "org.freedesktop.DBus.Error.InvalidArgs",
        ):
            return AdvertisingError(
                missing or f"adapter {self.adapter} vanished or cannot advertise ({name}: {text})"
            )
        if name == "org.bluez.Error.NotPermitted" and "aximum" in text:
            limit = self.supported_instances
            return AdvertisingError(
                f"too many advertisements: adapter {self.adapter} supports "
                f"{limit if limit is not None else 'only a few'} at once "
                "(LEAdvertisingManager1.SupportedInstances); emulate fewer devices"
            )
        if name == "org.bluez.Error.NotReady":
            return AdvertisingError(f"adapter {self.adapter} is not ready (powered off?): {text}")
        return AdvertisingError(f"BlueZ refused {member}: {name}: {text}")

    def _check_size(self, adv: Advertisement, data: dict[int, bytes]) -> None:
        length = legacy_adv_length(data)
        if length > LEGACY_ADV_MAX:
            raise AdvertisementTooLarge(
                f"advertisement for {adv.address} would be {length} bytes "
                f"(Flags {FLAGS_AD_LEN} + manufacturer data "
                f"{length - FLAGS_AD_LEN}); a legacy advertisement holds {LEGACY_ADV_MAX} — "
                "BlueZ would silently switch to extended advertising that legacy scanners miss"
            )

    async def publish(self, advertisement: Advertisement) -> None:
        """First call for an address registers it; later calls update ManufacturerData."""
        if self._bus is None:
            raise AdvertisingError("BluezAdvertiser.start() was not called")
        data = {int(cid): bytes(d) for cid, d in advertisement.manufacturer_data.items()}
        if COMPANY_ID not in data:
            raise AdvertisingError(
                f"advertisement for {advertisement.address} has no Victron manufacturer data"
            )
        self._check_size(advertisement, data)
        address = normalize_address(advertisement.address)
        async with self._lock:
            entry = self._ads.get(address)
            if entry is None:
                name = scan_response_name(advertisement.name)
                cls = LEAdvertisement if name else _NamelessAdvertisement
                entry = _Registered(advertisement_path(address), cls(data, name))
                self._bus.export(entry.path, entry.obj)
                self._ads[address] = entry
            elif entry.obj.released.is_set():
                entry.obj.released.clear()
                entry.registered = False
                entry.lost = True
            if entry.registered:
                entry.obj.update(data)
                self._unsynced += 1
                if self._unsynced >= _SYNC_EVERY:
                    await self._sync()
                return
            entry.obj.set_data(data)
            await self._register(address, entry)

    async def _register(self, address: str, entry: _Registered) -> None:
        try:
            await self._call(
                BLUEZ,
                self.adapter_path,
                ADVERTISING_MANAGER_IFACE,
                "RegisterAdvertisement",
                "oa{sv}",
                [entry.path, {}],
                missing=f"no Bluetooth adapter {self.adapter} with LE advertising",
            )
        except AdvertisingError as exc:
            if entry.lost:
                # Lost mid-run (adapter removed, bluetoothd restarted): keep the emulator
                # running and retry with the next frame; say so once.
                if not self._warned_lost:
                    _log.warning("advertising interrupted, will retry: %s", exc)
                    self._warned_lost = True
                return
            self._bus_unexport(entry)
            del self._ads[address]
            raise
        entry.registered = True
        entry.lost = False
        if self._warned_lost and not any(e.lost for e in self._ads.values()):
            _log.warning("advertising resumed on %s", self.adapter)
            self._warned_lost = False

    async def _sync(self) -> None:
        """Flow control: wait until the bus daemon has read everything we sent so far.

        Signals are fire-and-forget; without this a fast publisher fills the socket and
        dbus-fast 5.2 treats the resulting EAGAIN as fatal and drops the connection.
        """
        self._unsynced = 0
        await self._call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.Peer",
            "Ping",
            "",
            [],
        )

    def _bus_unexport(self, entry: _Registered) -> None:
        if self._bus is not None and self._bus.connected:
            self._bus.unexport(entry.path, entry.obj)

    async def remove(self, address: str) -> None:
        address = normalize_address(address)
        async with self._lock:
            entry = self._ads.pop(address, None)
            if entry is not None:
                await self._unregister(entry)

    async def _unregister(self, entry: _Registered) -> None:
        if entry.registered and not entry.obj.released.is_set():
            try:
                await self._call(
                    BLUEZ,
                    self.adapter_path,
                    ADVERTISING_MANAGER_IFACE,
                    "UnregisterAdvertisement",
                    "o",
                    [entry.path],
                )
            except (AdvertisingError, DBusError, OSError) as exc:
                _log.debug("unregister %s: %s", entry.path, exc)
        entry.registered = False
        self._bus_unexport(entry)

    async def close(self) -> None:
        """Unregister every advertisement and disconnect. Safe to call twice."""
        if self._bus is None:
            return
        async with self._lock:
            entries, self._ads = list(self._ads.values()), {}
            if self._bus.connected:
                # One at a time: a burst of hundreds of calls (and the service's replies and
                # InterfacesRemoved) can fill a socket, and dbus-fast drops the connection on
                # EAGAIN (python-dbus-next#153, inherited by dbus-fast 5.2).
                for entry in entries:
                    await self._unregister(entry)
        self._disconnect()

    def _disconnect(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.disconnect()


def _error_text(reply: Message) -> str:
    if reply.body and isinstance(reply.body[0], str):
        return reply.body[0]
    return ""
