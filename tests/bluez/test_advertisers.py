"""BluezAdvertiser → virtual BlueZ → unmodified bleak.BleakScanner → our decoder, on a real bus.

Nothing is mocked: a real dbus-daemon, the virtual BlueZ (dbus-fast), bleak's own BlueZ backend.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from tests.bluez.conftest import next_item, run, wait_until
from victron_ble_bms.emulator.bluez import (
    AdvertisementTooLarge,
    AdvertisingError,
    BluezAdvertiser,
)
from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluez, VirtualBluezAdvertiser
from victron_ble_bms.protocol import (
    LynxSmartBmsRecord,
    SmartLithiumRecord,
    decode,
    encode,
)
from victron_ble_bms.protocol.enums import (
    BalancerStatus,
    BmsError,
    BmsFlags,
    SmartLithiumErrorFlags,
)
from victron_ble_bms.sources.advertisement import Advertisement

VICTRON = 0x02E1  # Victron Energy company identifier (Bluetooth SIG assigned numbers)
KEY = "0df4d0995b7d1e176c0c33ecb9e70dcd"  # a test key, nothing real
LITHIUM_ADDR = "C0:FF:EE:00:00:01"
LYNX_ADDR = "C0:FF:EE:00:00:02"
SMART_LITHIUM_12V8_100AH = 0xA0E5  # docs/protocol.md product table
LYNX_SMART_BMS_500 = 0xA3E5

LITHIUM = SmartLithiumRecord(
    bms_flags=BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE,
    error_flags=SmartLithiumErrorFlags(0),
    cell_voltages_v=(3.31, 3.32, 3.30, 3.33, None, None, None, None),
    battery_voltage_v=13.26,
    balancer_status=BalancerStatus.BALANCED,
    battery_temperature_c=21,
)
LYNX = LynxSmartBmsRecord(
    bms_error=BmsError.NONE,
    ttg_min=600,
    battery_voltage_v=26.5,
    battery_current_a=-12.3,
    io_status=0,
    warnings_alarms=0,
    soc_pct=87.5,
    consumed_ah=-25.1,
    temperature_c=22,
)
VICTRON_PATTERN = OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\xe1\x02\x10")


def frame(record: Any, nonce: int, model_id: int = SMART_LITHIUM_12V8_100AH) -> bytes:
    return encode(record, key=KEY, nonce=nonce, model_id=model_id)


def adv(address: str, data: bytes, name: str | None = "Emulated battery") -> Advertisement:
    return Advertisement(
        ts=time.time(), address=address, manufacturer_data={VICTRON: data}, name=name
    )


def nonce_of(data: bytes) -> int:
    # bytes 5–6 of the manufacturer data, little-endian (docs/protocol.md §1, frame header)
    return int.from_bytes(data[5:7], "little")


class Seen:
    """bleak detection callback → queue of (address, name, manufacturer data)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str | None, bytes]] = asyncio.Queue()

    def __call__(self, device: Any, data: Any) -> None:
        if VICTRON in data.manufacturer_data:
            self.queue.put_nowait((device.address, device.name, data.manufacturer_data[VICTRON]))

    async def next_from(self, address: str) -> tuple[str | None, bytes]:
        while True:
            got_address, name, data = await next_item(self.queue)
            if got_address == address:
                return name, data


async def active_instances(address: str) -> int:
    """Read LEAdvertisingManager1.ActiveInstances over D-Bus like any client would."""
    bus = await MessageBus(bus_address=address).connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path="/org/bluez/hci0",
                interface="org.freedesktop.DBus.Properties",
                member="Get",
                signature="ss",
                body=["org.bluez.LEAdvertisingManager1", "ActiveInstances"],
            )
        )
        assert reply is not None and reply.message_type == MessageType.METHOD_RETURN
        return int(reply.body[0].value)
    finally:
        bus.disconnect()


def test_active_scan_sees_frames_and_every_update(private_bus: PrivateBus) -> None:
    async def body() -> None:
        bluez = VirtualBluez(private_bus.address)
        await bluez.start()
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        seen = Seen()
        async with BleakScanner(seen):
            nonces = []
            for nonce in (1, 2, 3):
                await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, nonce), "SmartLithium A"))
                name, data = await seen.next_from(LITHIUM_ADDR)
                assert name == "SmartLithium A"  # from LocalName (scan response)
                assert decode(data, KEY) == LITHIUM
                nonces.append(nonce_of(data))
            assert nonces == [1, 2, 3]  # updates arrived via PropertiesChanged, in order
        await advertiser.close()
        await bluez.stop()

    run(body())


def test_passive_scan_with_or_pattern_decodes_lynx(private_bus: PrivateBus) -> None:
    async def body() -> None:
        bluez = VirtualBluez(private_bus.address)
        await bluez.start()
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        seen = Seen()
        scanner = BleakScanner(
            seen, scanning_mode="passive", bluez={"or_patterns": [VICTRON_PATTERN]}
        )
        async with scanner:
            for nonce in (7, 8):
                await advertiser.publish(adv(LYNX_ADDR, frame(LYNX, nonce, LYNX_SMART_BMS_500)))
                _, data = await seen.next_from(LYNX_ADDR)
                assert decode(data, KEY) == LYNX
                assert nonce_of(data) == nonce
            assert not bluez.is_discovering()  # passive: a monitor, not a discovery session
            assert bluez.monitor_count() == 1
        await wait_until(lambda: bluez.monitor_count() == 0)  # bleak unregistered it
        await advertiser.close()
        await bluez.stop()

    run(body())


def test_passive_monitor_only_reports_matching_advertisements(private_bus: PrivateBus) -> None:
    async def body() -> None:
        bluez = VirtualBluez(private_bus.address)
        await bluez.start()
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        # Record type byte 0x11 is not what Victron sends in byte 0 (0x10, docs/protocol.md §1).
        other = OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\xe1\x02\x11")
        async with BleakScanner(Seen(), scanning_mode="passive", bluez={"or_patterns": [other]}):
            await wait_until(lambda: bluez.monitor_count() == 1)
            monitor = next(iter(bluez._adapters["hci0"].monitors.values()))
            await wait_until(lambda: bool(monitor.patterns))
            await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 1)))
            # RegisterAdvertisement has returned, so the service has decided visibility.
            assert bluez.device_addresses() == ()
            seen = Seen()
            async with BleakScanner(seen):  # an active scan sees everything
                _, data = await seen.next_from(LITHIUM_ADDR)
                assert decode(data, KEY) == LITHIUM
        await advertiser.close()
        await bluez.stop()

    run(body())


def test_31_byte_limit(private_bus: PrivateBus) -> None:
    async def body() -> None:
        bluez = VirtualBluez(private_bus.address)
        await bluez.start()
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        full = frame(LITHIUM, 1)
        # Flags AD 3 + manufacturer AD (1 len + 1 type + 2 company + 24 data) = 31: fits exactly.
        assert len(full) == 24
        await advertiser.publish(adv(LITHIUM_ADDR, full))
        with pytest.raises(AdvertisementTooLarge, match="32 bytes.*holds 31.*extended"):
            await advertiser.publish(adv(LYNX_ADDR, full + b"\x00"))
        assert bluez.active_instances() == 1  # the oversized one was never registered
        # A long name does not count against the 31 bytes: it goes to the scan response.
        await advertiser.publish(adv("C0:FF:EE:00:00:03", full, "x" * 40))
        assert bluez.active_instances() == 2
        await advertiser.close()
        await bluez.stop()

    run(body())


def test_close_unregisters_everything_and_devices_vanish(private_bus: PrivateBus) -> None:
    addresses = [f"C0:FF:EE:00:01:{i:02X}" for i in range(3)]

    async def body() -> None:
        bluez = VirtualBluez(private_bus.address)
        await bluez.start()
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        seen = Seen()
        scanner = BleakScanner(seen)
        async with scanner:
            for address in addresses:
                await advertiser.publish(adv(address, frame(LITHIUM, 1)))
            found = {(await next_item(seen.queue))[0] for _ in addresses}
            assert found == set(addresses)
            assert await active_instances(private_bus.address) == 3
            await advertiser.remove(addresses[0])
            assert await active_instances(private_bus.address) == 2
            await advertiser.close()
            assert await active_instances(private_bus.address) == 0
            # InterfacesRemoved(Device1) reached bleak: it forgot every device.
            await wait_until(lambda: not scanner.discovered_devices)
            assert bluez.device_addresses() == ()
        await bluez.stop()

    run(body())


def test_clear_errors(private_bus: PrivateBus) -> None:
    async def body() -> None:
        with pytest.raises(AdvertisingError, match="bluetoothd is not running"):
            await BluezAdvertiser(bus_address=private_bus.address).start()
        bluez = VirtualBluez(private_bus.address, max_advertisements=2)
        await bluez.start()
        with pytest.raises(AdvertisingError, match="no Bluetooth adapter hci1"):
            await BluezAdvertiser(adapter="hci1", bus_address=private_bus.address).start()
        bluez.set_powered("hci0", False)
        with pytest.raises(AdvertisingError, match="hci0 is powered off"):
            await BluezAdvertiser(bus_address=private_bus.address).start()
        bluez.set_powered("hci0", True)
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        assert advertiser.supported_instances == 2
        await advertiser.publish(adv("C0:FF:EE:00:02:01", frame(LITHIUM, 1)))
        await advertiser.publish(adv("C0:FF:EE:00:02:02", frame(LITHIUM, 1)))
        with pytest.raises(AdvertisingError, match="too many advertisements.*SupportedInstances"):
            await advertiser.publish(adv("C0:FF:EE:00:02:03", frame(LITHIUM, 1)))
        assert advertiser.addresses == ("C0:FF:EE:00:02:01", "C0:FF:EE:00:02:02")
        await advertiser.close()
        await bluez.stop()
        missing = "unix:path=" + str(Path(private_bus.address.split("=")[1]).parent / "nope")
        with pytest.raises(AdvertisingError, match="cannot connect"):
            await BluezAdvertiser(bus_address=missing).start()

    run(body())


def test_survives_adapter_loss_and_bluetoothd_restart(private_bus: PrivateBus) -> None:
    async def body() -> None:
        bluez = VirtualBluez(private_bus.address)
        await bluez.start()
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 1)))
        obj = advertiser._ads[LITHIUM_ADDR].obj

        bluez.remove_adapter("hci0")
        await asyncio.wait_for(obj.released.wait(), 10)  # BlueZ called Release
        await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 2)))  # no adapter: no raise
        assert advertiser.addresses == ()
        bluez.add_adapter("hci0")
        await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 3)))  # re-registered
        assert bluez.active_instances() == 1

        await bluez.stop()  # bluetoothd dies: the name owner goes away
        await wait_until(lambda: advertiser.addresses == ())
        await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 4)))  # no raise
        await bluez.start()
        await advertiser.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 5)))
        assert bluez.active_instances() == 1
        seen = Seen()
        async with BleakScanner(seen):
            _, data = await seen.next_from(LITHIUM_ADDR)
            assert nonce_of(data) == 5
        await advertiser.close()
        await bluez.stop()

    run(body())


def test_virtual_bluez_advertiser_owns_and_cleans_up_its_daemon() -> None:
    if PrivateBus.find_executable() is None:
        pytest.skip("dbus-daemon not installed (Debian package 'dbus')")

    async def body() -> tuple[str, int]:
        virtual = VirtualBluezAdvertiser()
        await virtual.start()
        assert virtual.export_line.startswith("export DBUS_SYSTEM_BUS_ADDRESS=unix:path=")
        socket = virtual.bus_address.split("unix:path=")[1].split(",")[0]
        assert Path(socket).exists()
        pid = virtual._private.pid if virtual._private else -1
        await virtual.publish(adv(LITHIUM_ADDR, frame(LITHIUM, 1)))
        assert virtual.bluez.active_instances() == 1
        await virtual.close()
        return socket, pid

    socket, pid = asyncio.run(body())
    assert not Path(socket).parent.exists()  # config + socket directory removed
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_service_runs_as_its_own_process(private_bus: PrivateBus) -> None:
    """The watchdog tests kill and restart this process; the name must come and go with it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "victron_ble_bms.emulator.virtual_bluez",
            "--bus-address",
            private_bus.address,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"

        async def owned() -> bool:
            bus = await MessageBus(bus_address=private_bus.address).connect()
            try:
                reply = await bus.call(
                    Message(
                        destination="org.freedesktop.DBus",
                        path="/org/freedesktop/DBus",
                        interface="org.freedesktop.DBus",
                        member="NameHasOwner",
                        signature="s",
                        body=["org.bluez"],
                    )
                )
                assert reply is not None
                return bool(reply.body[0])
            finally:
                bus.disconnect()

        assert asyncio.run(owned())
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert not asyncio.run(owned())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
