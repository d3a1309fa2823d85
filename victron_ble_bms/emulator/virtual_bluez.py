"""A stand-in `org.bluez` on a private dbus-daemon: emulated devices for any bleak program.

`VirtualBluez` implements the part of bluetoothd's D-Bus API that bleak's BlueZ backend uses
(docs/ecosystem.md §3.6, bleak 3.1 `backends/bluezdbus/manager.py`): ObjectManager at `/`
(GetManagedObjects, InterfacesAdded/Removed — answered by dbus-fast for exported objects),
`org.bluez.Adapter1`, `org.bluez.LEAdvertisingManager1`, `org.bluez.AdvertisementMonitorManager1`
on `/org/bluez/hciN`, and `org.bluez.Device1` objects `/org/bluez/hciN/dev_AA_BB_…`.

Advertisements registered through LEAdvertisingManager1 (i.e. by `BluezAdvertiser`, the code
path used on real hardware) become Device1 objects for scanners on the same adapter:

* **Address.** A real adapter advertises from its own address. Here each advertisement gets the
  address written in its object path's last element, `…/dev_AA_BB_CC_DD_EE_FF` (the convention
  of `bluez.advertisement_path`), as a *public* address. Other paths get a static random address
  derived from the client's name and the path.
* **Visibility.** Devices appear and update only while the adapter is powered and scanning:
  active (a StartDiscovery session) — every advertisement; passive (an AdvertisementMonitor1 with
  or_patterns registered) — only advertisements whose AD structures match a pattern, and the
  monitor's `DeviceFound` / `DeviceLost` are called. A new scan re-announces known devices
  (PropertiesChanged RSSI + ManufacturerData), as BlueZ does on the first advert of a scan.
* **Updates.** The client's `PropertiesChanged(ManufacturerData)` becomes the device's
  `PropertiesChanged(ManufacturerData)` — only when the bytes differ, like BlueZ's memcmp
  (docs/ecosystem.md §3.3).
* **Removal.** A Device1 disappears (InterfacesRemoved) as soon as its advertisement is
  unregistered or its client disconnects — deterministic, unlike BlueZ's 30 s TemporaryTimeout;
  after scanning stops, remaining devices go after `temporary_timeout` seconds (default 30, as
  BlueZ `main.conf`).
* **Name.** Device1 has `Name` (and `Alias`) when the advertisement has a LocalName (BlueZ gets it
  from the scan response); this stand-in does not distinguish active from passive for the name.
* **RSSI.** A fixed value per address between -45 and -84 dBm.

Faults for watchdog tests: `remove_adapter()` / `add_adapter()` (InterfacesRemoved/Added of
Adapter1; advertisements and monitors on it get `Release`), `set_powered(False/True)`, and
`stop()` / `start()` (the `org.bluez` name owner goes away and comes back; every registration is
forgotten, as when bluetoothd dies). To kill a real process instead, run the service alone:
`python -m victron_ble_bms.emulator.virtual_bluez --bus-address ADDR` (or `--start-bus`).

`VirtualBluezAdvertiser` = private dbus-daemon + VirtualBluez + `BluezAdvertiser` on that bus.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from dbus_fast import (
    BusType,
    DBusError,
    Message,
    MessageFlag,
    MessageType,
    NameFlag,
    PropertyAccess,
    RequestNameReply,
    Variant,
)
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusByte,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt32,
)
from dbus_fast.service import ServiceInterface, dbus_property

from victron_ble_bms.emulator.bluez import (
    ADAPTER_IFACE,
    ADVERTISEMENT_IFACE,
    ADVERTISING_MANAGER_IFACE,
    BLUEZ,
    LEGACY_ADV_MAX,
    AdvertisingError,
    BluezAdvertiser,
    address_from_path,
)
from victron_ble_bms.emulator.dbus_daemon import DbusDaemonError, PrivateBus
from victron_ble_bms.sources.advertisement import Advertisement

_log = logging.getLogger(__name__)

DEVICE_IFACE = "org.bluez.Device1"
MONITOR_MANAGER_IFACE = "org.bluez.AdvertisementMonitorManager1"
MONITOR_IFACE = "org.bluez.AdvertisementMonitor1"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"

# Signals sent in one go before waiting for the bus daemon (see VirtualBluez._announce).
_BURST = 64
# AD type of Manufacturer Specific Data (Bluetooth Assigned Numbers §2.3).
AD_MANUFACTURER_DATA = 0xFF
# Filters BlueZ's Adapter1.GetDiscoveryFilters lists (BlueZ doc/org.bluez.Adapter.rst).
DISCOVERY_FILTERS = ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable"]

StrList = Annotated[list[str], DBusSignature("as")]
ManufacturerDataT = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
VariantDict = Annotated[dict[str, Variant], DBusSignature("a{sv}")]


class VirtualBluezError(RuntimeError):
    """The virtual BlueZ could not start (bus unreachable, name taken …)."""


def _err(msg: Message, name: str, text: str) -> Message:
    return Message.new_error(msg, name, text)


def device_path(adapter: str, address: str) -> str:
    return f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"


def _random_static_address(seed: str) -> str:
    digest = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    digest[0] |= 0xC0  # static random: the two most significant bits are 1 (Core Vol 6 B §1.3)
    return ":".join(f"{b:02X}" for b in digest)


def _rssi_for(address: str) -> int:
    return -45 - sum(int(part, 16) for part in address.split(":")) % 40


# --- exported interfaces: properties read from the service's state ---------------------------


class _Adapter(ServiceInterface):
    def __init__(self, state: _AdapterState) -> None:
        super().__init__(ADAPTER_IFACE)
        self._s = state

    @dbus_property(PropertyAccess.READ)
    def Address(self) -> DBusStr:  # noqa: N802 — D-Bus member names
        return self._s.address

    @dbus_property(PropertyAccess.READ)
    def AddressType(self) -> DBusStr:  # noqa: N802
        return "public"

    @dbus_property(PropertyAccess.READ)
    def Name(self) -> DBusStr:  # noqa: N802
        return f"virtual-{self._s.name}"

    @dbus_property(PropertyAccess.READ)
    def Alias(self) -> DBusStr:  # noqa: N802
        return f"virtual-{self._s.name}"

    @dbus_property(PropertyAccess.READ)
    def Class(self) -> DBusUInt32:  # noqa: N802
        return 0

    @dbus_property(PropertyAccess.READ)
    def Powered(self) -> DBusBool:  # noqa: N802
        return self._s.powered

    @dbus_property(PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def Pairable(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def Discovering(self) -> DBusBool:  # noqa: N802
        return bool(self._s.discovery)

    @dbus_property(PropertyAccess.READ)
    def UUIDs(self) -> StrList:  # noqa: N802
        return []

    @dbus_property(PropertyAccess.READ)
    def Modalias(self) -> DBusStr:  # noqa: N802
        return "usb:v1D6Bp0246d0540"  # Linux Foundation / BlueZ, as bluetoothd reports

    # bleak's default adapter is the first with "central" in Roles and Powered (§3.5).
    @dbus_property(PropertyAccess.READ)
    def Roles(self) -> StrList:  # noqa: N802
        return ["central", "peripheral"]


class _AdvertisingManager(ServiceInterface):
    def __init__(self, state: _AdapterState, service: VirtualBluez) -> None:
        super().__init__(ADVERTISING_MANAGER_IFACE)
        self._s = state
        self._v = service

    # Both are bytes in BlueZ ('y'); SupportedInstances is what is still free.
    @dbus_property(PropertyAccess.READ)
    def ActiveInstances(self) -> DBusByte:  # noqa: N802
        return min(255, len(self._s.advertisements))

    @dbus_property(PropertyAccess.READ)
    def SupportedInstances(self) -> DBusByte:  # noqa: N802
        return min(255, self._v.max_advertisements - len(self._s.advertisements))

    @dbus_property(PropertyAccess.READ)
    def SupportedIncludes(self) -> StrList:  # noqa: N802
        return ["tx-power", "appearance", "local-name"]

    @dbus_property(PropertyAccess.READ)
    def SupportedCapabilities(self) -> VariantDict:  # noqa: N802
        return {"MaxAdvLen": Variant("y", LEGACY_ADV_MAX), "MaxScnRspLen": Variant("y", 31)}


class _MonitorManager(ServiceInterface):
    def __init__(self) -> None:
        super().__init__(MONITOR_MANAGER_IFACE)

    @dbus_property(PropertyAccess.READ)
    def SupportedMonitorTypes(self) -> StrList:  # noqa: N802
        return ["or_patterns"]

    @dbus_property(PropertyAccess.READ)
    def SupportedFeatures(self) -> StrList:  # noqa: N802
        return []


class _Device(ServiceInterface):
    def __init__(self, adapter: str, adv: _Adv) -> None:
        super().__init__(DEVICE_IFACE)
        self.adapter_path = f"/org/bluez/{adapter}"
        self.address = adv.address
        self.address_type = adv.address_type
        self.local_name: str | None = adv.local_name  # (`name` is the interface name)
        self.rssi = _rssi_for(adv.address)
        self.manufacturer_data = dict(adv.manufacturer_data)

    @dbus_property(PropertyAccess.READ)
    def Address(self) -> DBusStr:  # noqa: N802
        return self.address

    @dbus_property(PropertyAccess.READ)
    def AddressType(self) -> DBusStr:  # noqa: N802
        return self.address_type

    @dbus_property(PropertyAccess.READ)
    def Alias(self) -> DBusStr:  # noqa: N802
        # BlueZ's alias is the name, else the address with dashes (bleak maps that to None).
        return self.local_name or self.address.replace(":", "-")

    @dbus_property(PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:  # noqa: N802
        return self.adapter_path

    @dbus_property(PropertyAccess.READ)
    def Paired(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def Bonded(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def Trusted(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def Blocked(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def Connected(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:  # noqa: N802
        return False

    @dbus_property(PropertyAccess.READ)
    def UUIDs(self) -> StrList:  # noqa: N802
        return []

    @dbus_property(PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:  # noqa: N802
        return self.rssi

    @dbus_property(PropertyAccess.READ)
    def ManufacturerData(self) -> ManufacturerDataT:  # noqa: N802
        return {cid: Variant("ay", data) for cid, data in self.manufacturer_data.items()}


class _NamedDevice(_Device):
    @dbus_property(PropertyAccess.READ)
    def Name(self) -> DBusStr:  # noqa: N802
        return self.local_name or ""


# --- state -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Adv:
    """One registered LEAdvertisement1, as read back from its client."""

    owner: str  # the client's unique bus name
    path: str
    address: str
    address_type: str
    manufacturer_data: dict[int, bytes]
    local_name: str | None

    def ad_structures(self) -> list[tuple[int, bytes]]:
        """The advertising data's AD structures (type, data) a monitor pattern is matched on."""
        return [
            (AD_MANUFACTURER_DATA, cid.to_bytes(2, "little") + data)
            for cid, data in self.manufacturer_data.items()
        ]


@dataclass(slots=True)
class _Monitor:
    owner: str
    root: str
    match_rule: str
    patterns: dict[str, list[tuple[int, int, bytes]]] = field(default_factory=dict)
    found: set[str] = field(default_factory=set)  # addresses DeviceFound was sent for

    def matching_path(self, adv: _Adv) -> str | None:
        """Object path of the first monitor object whose or_patterns match `adv`."""
        ads = adv.ad_structures()
        for path, patterns in self.patterns.items():
            for start, ad_type, content in patterns:
                for t, data in ads:
                    if t == ad_type and data[start : start + len(content)] == content:
                        return path
        return None


@dataclass(slots=True)
class _AdapterState:
    name: str
    address: str
    powered: bool = True
    discovery: dict[str, dict[str, Any]] = field(default_factory=dict)  # sender → filter
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)
    advertisements: dict[tuple[str, str], _Adv] = field(default_factory=dict)
    monitors: dict[tuple[str, str], _Monitor] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)
    interfaces: list[ServiceInterface] = field(default_factory=list)
    expiry: asyncio.TimerHandle | None = None

    @property
    def path(self) -> str:
        return f"/org/bluez/{self.name}"

    @property
    def scanning(self) -> bool:
        return self.powered and bool(self.discovery or self.monitors)


# --- the service -------------------------------------------------------------------------------


class VirtualBluez:
    """The stand-in bluetoothd. `start()` exports the adapters and takes the name `org.bluez`."""

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        adapters: Sequence[str] = ("hci0",),
        max_advertisements: int = 4096,
        temporary_timeout: float = 30.0,
    ) -> None:
        self.bus_address = bus_address
        self.max_advertisements = max_advertisements
        self.temporary_timeout = temporary_timeout
        self._adapter_names = list(adapters)
        self._adapters: dict[str, _AdapterState] = {}
        self._bus: MessageBus | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.updates = 0  # Device1 ManufacturerData changes emitted (for benchmarks)

    # public view for tests ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._bus is not None and self._bus.connected

    @property
    def adapters(self) -> tuple[str, ...]:
        return tuple(self._adapters)

    def active_instances(self, adapter: str = "hci0") -> int:
        state = self._adapters.get(adapter)
        return len(state.advertisements) if state else 0

    def device_addresses(self, adapter: str = "hci0") -> tuple[str, ...]:
        state = self._adapters.get(adapter)
        return tuple(sorted(state.devices)) if state else ()

    def is_discovering(self, adapter: str = "hci0") -> bool:
        state = self._adapters.get(adapter)
        return bool(state and state.discovery)

    def monitor_count(self, adapter: str = "hci0") -> int:
        state = self._adapters.get(adapter)
        return len(state.monitors) if state else 0

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, export the adapters, then own `org.bluez` (the name appears last)."""
        if self.running:
            return
        try:
            if self.bus_address is None:
                bus = MessageBus(bus_type=BusType.SYSTEM)
            else:
                bus = MessageBus(bus_address=self.bus_address)
            self._bus = await bus.connect()
        except OSError as exc:
            raise VirtualBluezError(
                f"cannot connect to {self.bus_address or 'the system bus'}: {exc}"
            ) from None
        self._bus.add_message_handler(self._on_message)
        for rule in (
            # client advertisements changing (the frame updates)
            f"type='signal',interface='{PROPERTIES_IFACE}',member='PropertiesChanged',"
            f"arg0='{ADVERTISEMENT_IFACE}'",
            # clients going away take their registrations and discovery sessions with them
            f"type='signal',sender='{DBUS}',member='NameOwnerChanged'",
        ):
            await self._add_match(rule)
        for name in self._adapter_names:
            self._export_adapter(name)
        reply = await self._bus.request_name(BLUEZ, NameFlag.DO_NOT_QUEUE)
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            self._bus.disconnect()
            self._bus = None
            raise VirtualBluezError(
                f"{BLUEZ} is already owned on {self.bus_address or 'the system bus'} "
                "(a real bluetoothd or another virtual BlueZ)"
            )
        _log.info("virtual BlueZ owns %s with %s", BLUEZ, ", ".join(self._adapters))

    async def stop(self) -> None:
        """Vanish like a crashed bluetoothd: the name owner goes away, all state is forgotten."""
        for task in list(self._tasks):
            task.cancel()
        for state in self._adapters.values():
            if state.expiry is not None:
                state.expiry.cancel()
        self._adapter_names = list(self._adapters) or self._adapter_names
        self._adapters.clear()
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.disconnect()
            with contextlib.suppress(Exception):
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    # faults ------------------------------------------------------------------------------------

    def remove_adapter(self, name: str = "hci0") -> None:
        """Unplug: devices and the adapter's interfaces are removed; registrations get Release."""
        state = self._adapters.pop(name, None)
        if state is None or self._bus is None:
            return
        if state.expiry is not None:
            state.expiry.cancel()
        for address in list(state.devices):
            self._remove_device(state, address)
        for adv in state.advertisements.values():
            self._notify(adv.owner, adv.path, ADVERTISEMENT_IFACE, "Release")
        for monitor in state.monitors.values():
            for path in monitor.patterns:
                self._notify(monitor.owner, path, MONITOR_IFACE, "Release")
            self._spawn(self._remove_match(monitor.match_rule))
        self._bus.unexport(state.path)
        if name in self._adapter_names:
            self._adapter_names.remove(name)

    def add_adapter(self, name: str = "hci0", *, address: str | None = None) -> None:
        """Plug in (again): InterfacesAdded for the adapter, powered, idle."""
        if name in self._adapters or self._bus is None:
            return
        self._export_adapter(name, address=address)
        if name not in self._adapter_names:
            self._adapter_names.append(name)

    def set_powered(self, name: str, powered: bool) -> None:
        """Power off stops discovery, drops devices; registrations stay (the kernel keeps them)."""
        state = self._adapters[name]
        if state.powered == powered:
            return
        state.powered = powered
        changed: dict[str, Any] = {"Powered": powered}
        if not powered:
            if state.discovery:
                changed["Discovering"] = False
            state.discovery.clear()
            for address in list(state.devices):
                self._remove_device(state, address)
        self._adapter_iface(state).emit_properties_changed(changed)
        if powered:
            self._scan_started(state)

    # internals ---------------------------------------------------------------------------------

    def _export_adapter(self, name: str, *, address: str | None = None) -> None:
        if self._bus is None:
            return
        index = int(name[3:]) if name[3:].isdigit() else 0
        state = _AdapterState(name=name, address=address or f"00:00:5E:00:53:{index:02X}")
        state.interfaces = [_Adapter(state), _AdvertisingManager(state, self), _MonitorManager()]
        self._adapters[name] = state
        for iface in state.interfaces:
            self._bus.export(state.path, iface)

    @staticmethod
    def _adapter_iface(state: _AdapterState) -> ServiceInterface:
        return state.interfaces[0]

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("virtual BlueZ task failed: %r", task.exception())

    async def _add_match(self, rule: str) -> None:
        await self._dbus_call("AddMatch", rule)

    async def _remove_match(self, rule: str) -> None:
        await self._dbus_call("RemoveMatch", rule)

    async def _dbus_call(self, member: str, rule: str) -> None:
        if self._bus is None:
            return
        await self._bus.call(
            Message(
                destination=DBUS,
                path=DBUS_PATH,
                interface=DBUS,
                member=member,
                signature="s",
                body=[rule],
            )
        )

    def _notify(self, dest: str, path: str, interface: str, member: str, *args: str) -> None:
        """Call a client method without waiting (Release, Activate, DeviceFound, DeviceLost)."""
        if self._bus is None or not self._bus.connected:
            return
        self._bus.send(
            Message(
                destination=dest,
                path=path,
                interface=interface,
                member=member,
                signature="o" * len(args),
                body=list(args),
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )

    def _adapter_for(self, path: str | None) -> _AdapterState | None:
        if path is None or not path.startswith("/org/bluez/"):
            return None
        return self._adapters.get(path[len("/org/bluez/") :])

    def _on_message(self, msg: Message) -> Message | bool | None:
        if msg.message_type == MessageType.SIGNAL:
            self._on_signal(msg)
            return None
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        state = self._adapter_for(msg.path)
        if state is None:
            return None
        handler = _HANDLERS.get((msg.interface or "", msg.member or ""))
        if handler is None:
            return None
        result: Message | bool | None = handler(self, state, msg)
        return result

    # Adapter1 ----------------------------------------------------------------------------------

    def _start_discovery(self, state: _AdapterState, msg: Message) -> Message:
        if not state.powered:
            return _err(msg, "org.bluez.Error.NotReady", "Resource Not Ready")
        sender = msg.sender or ""
        if sender in state.discovery:
            return Message.new_method_return(msg)
        was = bool(state.discovery)
        state.discovery[sender] = state.filters.get(sender, {})
        if not was:
            self._adapter_iface(state).emit_properties_changed({"Discovering": True})
        self._scan_started(state)
        return Message.new_method_return(msg)

    def _stop_discovery(self, state: _AdapterState, msg: Message) -> Message:
        if not state.powered:
            return _err(msg, "org.bluez.Error.NotReady", "Resource Not Ready")
        if state.discovery.pop(msg.sender or "", None) is None:
            return _err(msg, "org.bluez.Error.Failed", "No discovery started")
        if not state.discovery:
            self._adapter_iface(state).emit_properties_changed({"Discovering": False})
        self._scan_maybe_stopped(state)
        return Message.new_method_return(msg)

    def _set_discovery_filter(self, state: _AdapterState, msg: Message) -> Message:
        flt = {k: v.value for k, v in msg.body[0].items()}
        transport = flt.get("Transport", "auto")
        if transport not in ("auto", "le", "bredr"):
            return _err(msg, "org.bluez.Error.InvalidArguments", "Invalid arguments in method call")
        if flt:
            state.filters[msg.sender or ""] = flt
        else:
            state.filters.pop(msg.sender or "", None)
        return Message.new_method_return(msg)

    def _get_discovery_filters(self, state: _AdapterState, msg: Message) -> Message:
        return Message.new_method_return(msg, "as", [DISCOVERY_FILTERS])

    def _remove_device_call(self, state: _AdapterState, msg: Message) -> Message:
        path = msg.body[0]
        for address, dev in state.devices.items():
            if device_path(state.name, dev.address) == path:
                self._remove_device(state, address)
                return Message.new_method_return(msg)
        return _err(msg, "org.bluez.Error.DoesNotExist", "Does Not Exist")

    # LEAdvertisingManager1 ---------------------------------------------------------------------

    def _register_advertisement(self, state: _AdapterState, msg: Message) -> bool:
        self._spawn(self._register_advertisement_async(state, msg))
        return True

    async def _register_advertisement_async(self, state: _AdapterState, msg: Message) -> None:
        bus = self._bus
        if bus is None:
            return
        owner, path = msg.sender or "", msg.body[0]
        key = (owner, path)
        if key in state.advertisements:
            bus.send(_err(msg, "org.bluez.Error.AlreadyExists", "Already Exists"))
            return
        if len(state.advertisements) >= self.max_advertisements:
            bus.send(_err(msg, "org.bluez.Error.NotPermitted", "Maximum advertisements reached"))
            return
        # Like bluetoothd, read the advertisement's properties back from the client.
        reply = await bus.call(
            Message(
                destination=owner,
                path=path,
                interface=PROPERTIES_IFACE,
                member="GetAll",
                signature="s",
                body=[ADVERTISEMENT_IFACE],
            )
        )
        if reply is None or reply.message_type == MessageType.ERROR:
            bus.send(_err(msg, "org.bluez.Error.Failed", "Failed to parse advertisement."))
            return
        props = {k: v.value for k, v in reply.body[0].items()}
        if props.get("Type") not in ("broadcast", "peripheral"):
            bus.send(
                _err(msg, "org.bluez.Error.InvalidArguments", "Invalid arguments in method call")
            )
            return
        address = address_from_path(path)
        address_type = "public"
        if address is None:
            address, address_type = _random_static_address(f"{owner}{path}"), "random"
        if any(a.address == address for a in state.advertisements.values()):
            bus.send(
                _err(
                    msg,
                    "org.bluez.Error.AlreadyExists",
                    f"another advertisement already uses address {address}",
                )
            )
            return
        if state.name not in self._adapters or self._adapters[state.name] is not state:
            bus.send(_err(msg, "org.freedesktop.DBus.Error.UnknownObject", "adapter removed"))
            return
        adv = _Adv(
            owner=owner,
            path=path,
            address=address,
            address_type=address_type,
            manufacturer_data=_manufacturer_data(props.get("ManufacturerData", {})),
            local_name=props.get("LocalName") or None,
        )
        state.advertisements[key] = adv
        bus.send(Message.new_method_return(msg))
        self._emit_instances(state)
        self._sync_device(state, adv)

    def _unregister_advertisement(self, state: _AdapterState, msg: Message) -> Message:
        adv = state.advertisements.pop((msg.sender or "", msg.body[0]), None)
        if adv is None:
            return _err(msg, "org.bluez.Error.DoesNotExist", "Does Not Exist")
        self._remove_device(state, adv.address)
        self._emit_instances(state)
        return Message.new_method_return(msg)

    def _emit_instances(self, state: _AdapterState) -> None:
        manager = state.interfaces[1]
        if not isinstance(manager, _AdvertisingManager):  # fixed order: see _export_adapter
            return
        manager.emit_properties_changed(
            {
                "ActiveInstances": manager.ActiveInstances,
                "SupportedInstances": manager.SupportedInstances,
            }
        )

    # AdvertisementMonitorManager1 --------------------------------------------------------------

    def _register_monitor(self, state: _AdapterState, msg: Message) -> bool:
        self._spawn(self._register_monitor_async(state, msg))
        return True

    async def _register_monitor_async(self, state: _AdapterState, msg: Message) -> None:
        bus = self._bus
        if bus is None:
            return
        owner, root = msg.sender or "", msg.body[0]
        if (owner, root) in state.monitors:
            bus.send(_err(msg, "org.bluez.Error.AlreadyExists", "Already Exists"))
            return
        # bleak exports its monitor only after this call returns (manager.py passive_scan), so
        # like bluetoothd we follow the client's InterfacesAdded as well as asking right away.
        rule = (
            f"type='signal',sender='{owner}',interface='{OBJECT_MANAGER_IFACE}',"
            "member='InterfacesAdded'"
        )
        monitor = _Monitor(owner=owner, root=root, match_rule=rule)
        state.monitors[(owner, root)] = monitor
        await self._add_match(rule)
        bus.send(Message.new_method_return(msg))
        for path in (root,):
            reply = await bus.call(
                Message(
                    destination=owner,
                    path=path,
                    interface=PROPERTIES_IFACE,
                    member="GetAll",
                    signature="s",
                    body=[MONITOR_IFACE],
                )
            )
            if reply is not None and reply.message_type == MessageType.METHOD_RETURN:
                self._monitor_object(state, monitor, path, reply.body[0])
        objects = await bus.call(
            Message(
                destination=owner,
                path=root,
                interface=OBJECT_MANAGER_IFACE,
                member="GetManagedObjects",
            )
        )
        if objects is not None and objects.message_type == MessageType.METHOD_RETURN:
            for path, interfaces in objects.body[0].items():
                if MONITOR_IFACE in interfaces:
                    self._monitor_object(state, monitor, path, interfaces[MONITOR_IFACE])

    def _monitor_object(
        self, state: _AdapterState, monitor: _Monitor, path: str, props: dict[str, Variant]
    ) -> None:
        if path in monitor.patterns or (monitor.owner, monitor.root) not in state.monitors:
            return
        if path != monitor.root and not path.startswith(monitor.root.rstrip("/") + "/"):
            return
        kind = props.get("Type")
        if kind is None or kind.value != "or_patterns":
            self._notify(monitor.owner, path, MONITOR_IFACE, "Release")
            return
        raw = props.get("Patterns")
        monitor.patterns[path] = [
            (int(p[0]), int(p[1]), bytes(p[2])) for p in (raw.value if raw else [])
        ]
        self._notify(monitor.owner, path, MONITOR_IFACE, "Activate")
        self._scan_started(state)

    def _unregister_monitor(self, state: _AdapterState, msg: Message) -> Message:
        monitor = state.monitors.pop((msg.sender or "", msg.body[0]), None)
        if monitor is None:
            return _err(msg, "org.bluez.Error.DoesNotExist", "Does Not Exist")
        self._spawn(self._remove_match(monitor.match_rule))
        self._scan_maybe_stopped(state)
        return Message.new_method_return(msg)

    # signals -----------------------------------------------------------------------------------

    def _on_signal(self, msg: Message) -> None:
        if msg.member == "PropertiesChanged" and msg.body and msg.body[0] == ADVERTISEMENT_IFACE:
            self._advertisement_changed(msg)
        elif msg.member == "NameOwnerChanged" and msg.sender == DBUS:
            name, _old, new = msg.body
            if name.startswith(":") and not new:
                self._client_gone(name)
        elif msg.member == "InterfacesAdded" and msg.interface == OBJECT_MANAGER_IFACE:
            path, interfaces = msg.body
            if MONITOR_IFACE in interfaces:
                for state in self._adapters.values():
                    for monitor in list(state.monitors.values()):
                        if monitor.owner == msg.sender:
                            self._monitor_object(state, monitor, path, interfaces[MONITOR_IFACE])

    def _advertisement_changed(self, msg: Message) -> None:
        _iface, changed, _invalidated = msg.body
        key = (msg.sender or "", msg.path or "")
        for state in self._adapters.values():
            adv = state.advertisements.get(key)
            if adv is None:
                continue
            if "ManufacturerData" in changed:
                adv.manufacturer_data = _manufacturer_data(changed["ManufacturerData"].value)
            if "LocalName" in changed:
                adv.local_name = changed["LocalName"].value or None
            self._sync_device(state, adv)

    def _client_gone(self, owner: str) -> None:
        for state in self._adapters.values():
            if state.discovery.pop(owner, None) is not None and not state.discovery:
                self._adapter_iface(state).emit_properties_changed({"Discovering": False})
            state.filters.pop(owner, None)
            gone = [k for k in state.advertisements if k[0] == owner]
            for key in gone:
                adv = state.advertisements.pop(key)
                self._remove_device(state, adv.address)
            if gone:
                self._emit_instances(state)
            for key in [k for k in state.monitors if k[0] == owner]:
                # the client's match rules die with its connection; ours is keyed on its name
                self._spawn(self._remove_match(state.monitors.pop(key).match_rule))
            self._scan_maybe_stopped(state)

    # devices -----------------------------------------------------------------------------------

    def _visible(self, state: _AdapterState, adv: _Adv) -> bool:
        if not state.powered or state.name not in self._adapters:
            return False
        if state.discovery:
            return True
        return any(m.matching_path(adv) for m in state.monitors.values())

    def _sync_device(self, state: _AdapterState, adv: _Adv, *, announce: bool = False) -> None:
        """Make the Device1 for `adv` reflect it, if a scan on this adapter can see it."""
        if self._bus is None or not self._visible(state, adv):
            return
        device = state.devices.get(adv.address)
        if device is None:
            cls = _NamedDevice if adv.local_name else _Device
            device = cls(state.name, adv)
            state.devices[adv.address] = device
            self._bus.export(device_path(state.name, adv.address), device)
            self.updates += 1
        elif device.manufacturer_data != adv.manufacturer_data:
            device.manufacturer_data = dict(adv.manufacturer_data)
            device.emit_properties_changed({"ManufacturerData": device.ManufacturerData})
            self.updates += 1
        elif announce:
            device.emit_properties_changed(
                {"RSSI": device.rssi, "ManufacturerData": device.ManufacturerData}
            )
        for monitor in state.monitors.values():
            monitor_path = monitor.matching_path(adv)
            if monitor_path is not None and adv.address not in monitor.found:
                monitor.found.add(adv.address)
                self._notify(
                    monitor.owner,
                    monitor_path,
                    MONITOR_IFACE,
                    "DeviceFound",
                    device_path(state.name, adv.address),
                )

    def _remove_device(self, state: _AdapterState, address: str) -> None:
        device = state.devices.pop(address, None)
        if device is None:
            return
        path = device_path(state.name, address)
        for monitor in state.monitors.values():
            if address in monitor.found:
                monitor.found.discard(address)
                for mpath in monitor.patterns:
                    self._notify(monitor.owner, mpath, MONITOR_IFACE, "DeviceLost", path)
                    break
        if self._bus is not None and self._bus.connected:
            self._bus.unexport(path)

    def _scan_started(self, state: _AdapterState) -> None:
        if state.expiry is not None:
            state.expiry.cancel()
            state.expiry = None
        advs = list(state.advertisements.values())
        if len(advs) <= _BURST:
            for adv in advs:
                self._sync_device(state, adv, announce=True)
        else:
            self._spawn(self._announce(state, advs))

    async def _announce(self, state: _AdapterState, advs: list[_Adv]) -> None:
        """Announce a fleet in chunks, letting the bus daemon drain in between.

        dbus-fast drops the connection when a burst fills the socket (EAGAIN,
        python-dbus-next#153); a Ping round trip per chunk bounds what is in flight.
        """
        for i in range(0, len(advs), _BURST):
            for adv in advs[i : i + _BURST]:
                if state.advertisements.get((adv.owner, adv.path)) is adv:
                    self._sync_device(state, adv, announce=True)
            if self._bus is None:
                return
            await self._bus.call(
                Message(destination=DBUS, path=DBUS_PATH, interface=f"{DBUS}.Peer", member="Ping")
            )

    def _scan_maybe_stopped(self, state: _AdapterState) -> None:
        if state.scanning or not state.devices:
            return
        if state.expiry is not None:
            state.expiry.cancel()

        def expire() -> None:
            state.expiry = None
            if not state.scanning:
                for address in list(state.devices):
                    self._remove_device(state, address)

        state.expiry = asyncio.get_running_loop().call_later(self.temporary_timeout, expire)


_Handler = Any
_HANDLERS: dict[tuple[str, str], _Handler] = {
    (ADAPTER_IFACE, "StartDiscovery"): VirtualBluez._start_discovery,
    (ADAPTER_IFACE, "StopDiscovery"): VirtualBluez._stop_discovery,
    (ADAPTER_IFACE, "SetDiscoveryFilter"): VirtualBluez._set_discovery_filter,
    (ADAPTER_IFACE, "GetDiscoveryFilters"): VirtualBluez._get_discovery_filters,
    (ADAPTER_IFACE, "RemoveDevice"): VirtualBluez._remove_device_call,
    (ADVERTISING_MANAGER_IFACE, "RegisterAdvertisement"): VirtualBluez._register_advertisement,
    (ADVERTISING_MANAGER_IFACE, "UnregisterAdvertisement"): (
        VirtualBluez._unregister_advertisement
    ),
    (MONITOR_MANAGER_IFACE, "RegisterMonitor"): VirtualBluez._register_monitor,
    (MONITOR_MANAGER_IFACE, "UnregisterMonitor"): VirtualBluez._unregister_monitor,
}


def _manufacturer_data(value: Any) -> dict[int, bytes]:
    result: dict[int, bytes] = {}
    for cid, data in dict(value).items():
        raw = data.value if isinstance(data, Variant) else data
        result[int(cid)] = bytes(raw)
    return result


# --- the advertiser ----------------------------------------------------------------------------


class VirtualBluezAdvertiser:
    """Private dbus-daemon + virtual BlueZ + `BluezAdvertiser` registering through it.

    After `start()`, `export_line` is the shell line (`export DBUS_SYSTEM_BUS_ADDRESS=…`) that
    lets any bleak program in another shell see the emulated devices. `close()` unregisters,
    stops the service and the daemon, and removes the temporary files.
    """

    def __init__(
        self,
        *,
        bus_address: str | None = None,
        adapter: str = "hci0",
        max_advertisements: int = 4096,
        temporary_timeout: float = 30.0,
    ) -> None:
        self._given_address = bus_address
        self.adapter = adapter
        self._private: PrivateBus | None = None
        self.bus_address = bus_address or ""
        self.bluez = VirtualBluez(
            bus_address,
            adapters=(adapter,),
            max_advertisements=max_advertisements,
            temporary_timeout=temporary_timeout,
        )
        self._advertiser: BluezAdvertiser | None = None

    @property
    def export_line(self) -> str:
        return f"export DBUS_SYSTEM_BUS_ADDRESS={self.bus_address}"

    @property
    def advertiser(self) -> BluezAdvertiser:
        if self._advertiser is None:
            raise AdvertisingError("VirtualBluezAdvertiser.start() was not called")
        return self._advertiser

    async def start(self) -> None:
        if self._advertiser is not None:
            return
        try:
            if self._given_address is None:
                self._private = PrivateBus()
                self.bus_address = self._private.start()
                self.bluez.bus_address = self.bus_address
            await self.bluez.start()
            advertiser = BluezAdvertiser(adapter=self.adapter, bus_address=self.bus_address)
            await advertiser.start()
        except (DbusDaemonError, VirtualBluezError) as exc:
            await self.close()
            raise AdvertisingError(str(exc)) from None
        except BaseException:
            await self.close()
            raise
        self._advertiser = advertiser
        _log.info("virtual BlueZ ready: %s", self.export_line)

    async def publish(self, advertisement: Advertisement) -> None:
        await self.advertiser.publish(advertisement)

    async def remove(self, address: str) -> None:
        await self.advertiser.remove(address)

    async def close(self) -> None:
        advertiser, self._advertiser = self._advertiser, None
        if advertiser is not None:
            await advertiser.close()
        await self.bluez.stop()
        if self._private is not None:
            self._private.close()
            self._private = None


# --- running the service alone ----------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> int:
    private: PrivateBus | None = None
    address = args.bus_address
    if address is None:
        private = PrivateBus()
        address = private.start()
    service = VirtualBluez(
        address,
        adapters=args.adapter or ["hci0"],
        max_advertisements=args.max_advertisements,
        temporary_timeout=args.temporary_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        # One line a parent process can wait for, then the export line for humans.
        sys.stdout.write(f"ready\nexport DBUS_SYSTEM_BUS_ADDRESS={address}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await service.stop()
        if private is not None:
            private.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m victron_ble_bms.emulator.virtual_bluez",
        description="Run the virtual BlueZ (a stand-in org.bluez) until SIGTERM/Ctrl-C.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--bus-address", help="D-Bus address to serve on (unix:path=…)")
    where.add_argument(
        "--start-bus", action="store_true", help="start a private dbus-daemon and serve on it"
    )
    parser.add_argument("--adapter", action="append", help="adapter name (repeatable), hci0")
    parser.add_argument("--max-advertisements", type=int, default=4096)
    parser.add_argument("--temporary-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="virtual-bluez: %(message)s")
    try:
        return asyncio.run(_serve(args))
    except (VirtualBluezError, DbusDaemonError, DBusError) as exc:
        sys.stderr.write(f"virtual-bluez: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
