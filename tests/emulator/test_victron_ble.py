"""An independent decoder (victron-ble from PyPI) reads our 0x05 and 0x0A frames to the model's
values. victron-ble has two known bugs for 0x0A (docs/protocol.md §2.5): its SOC "not available"
check uses 0x3FFF on a 10-bit field, and it drops the sign of consumed Ah. For those two we
compare with the SPEC instead: SOC is only compared when present (we never send n/a SOC), and
its consumed Ah is compared with minus ours."""

from __future__ import annotations

import math

import pytest

from victron_ble_bms.emulator import DeviceSpec, Emulator, load_scenario
from victron_ble_bms.protocol import COMPANY_ID

victron_ble = pytest.importorskip("victron_ble.devices")


def parse(data: bytes, key: bytes):  # type: ignore[no-untyped-def]
    cls = victron_ble.detect_device_type(data)
    assert cls is not None
    return cls, cls(key.hex()).parse(data)


def test_victron_ble_reads_our_smart_lithium_frames_as_the_model_state() -> None:
    emu = Emulator(
        [
            DeviceSpec("lithium-25.6v-200ah", scenario=load_scenario("deep-discharge")),
            DeviceSpec("lithium-12.8v-100ah", scenario=load_scenario("imbalance")),
        ],
        seed=5,
        exact=True,
    )
    batteries = [s.transmitters[0] for s in emu.systems]
    checked = 0
    for _ in range(400):
        advs = emu.step()
        # the state each battery sends this step (the engine steps, then advertises)
        state = {
            b.identity.address: (
                list(b.cell_v),  # type: ignore[attr-defined]
                b.voltage_v,  # type: ignore[attr-defined]
                b.measured_temperature_c,  # type: ignore[attr-defined]
                b.balancer_status,  # type: ignore[attr-defined]
            )
            for b in batteries
        }
        for adv in advs:
            cls, data = parse(adv.manufacturer_data[COMPANY_ID], emu.keys[adv.address])
            assert cls is victron_ble.SmartLithium
            cells, volts, temp, balancer = state[adv.address]
            theirs = data.get_cell_voltages()
            for i, v in enumerate(cells):
                if 2.61 <= v <= 3.85:
                    assert theirs[i] == pytest.approx(v, abs=0.0051)
                else:
                    assert math.isinf(theirs[i])
            assert all(x is None for x in theirs[len(cells) :])
            assert data.get_battery_voltage() == pytest.approx(volts, abs=0.0051)
            assert data.get_battery_temperature() == temp
            assert data.get_balancer_status().value == int(balancer)
            checked += 1
    assert checked == 800


def test_victron_ble_reads_our_lynx_frames_as_the_model_state() -> None:
    emu = Emulator(
        [DeviceSpec("lynx-smart-bms-500")], load_scenario("normal-day"), seed=5, exact=True
    )
    lynx = emu.systems[0]
    address = lynx.identity.address  # type: ignore[attr-defined]
    seen = 0
    emu.time_s = 0.0
    for _ in range(600):
        advs = emu.step()  # the engine steps, then advertises what it measured
        current, soc, consumed = lynx.current_a, lynx.soc_pct, lynx.consumed_ah  # type: ignore[attr-defined]
        volts = lynx.bank.voltage_v  # type: ignore[attr-defined]
        for adv in advs:
            if adv.address != address:
                continue
            cls, data = parse(adv.manufacturer_data[COMPANY_ID], emu.keys[address])
            assert cls is victron_ble.LynxSmartBMS
            assert data.get_voltage() == pytest.approx(volts, abs=0.0051)
            assert data.get_current() == pytest.approx(current, abs=0.051)
            assert data.get_soc() == pytest.approx(soc, abs=0.051)
            # victron-ble returns +raw/10; SPEC: consumed = −raw (docs/protocol.md §2.2, §2.5)
            assert -data.get_consumed_ah() == pytest.approx(-consumed, abs=0.051)
            assert data.get_battery_temperature() is None
            seen += 1
    assert seen == 600
