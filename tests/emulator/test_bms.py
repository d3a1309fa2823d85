"""Smart BMS (CL 12/100, 12/200) and Lynx Smart BMS behaviour against the manuals."""

from __future__ import annotations

from victron_ble_bms.emulator import DeviceSpec, Emulator, load_scenario
from victron_ble_bms.protocol import LynxSmartBmsRecord, SmartBmsRecord, decode
from victron_ble_bms.protocol.enums import TriState

from .sim import codes, inline, run


def bms_frames(frames):  # type: ignore[no-untyped-def]
    return [f for f in frames if isinstance(f.record, SmartBmsRecord)]


def test_alternator_current_limit_starter_threshold_and_charge_limit_hysteresis() -> None:
    emu = Emulator(
        [DeviceSpec("smart-bms-12-200")], load_scenario("alternator"), seed=3, exact=True
    )
    bms = emu.systems[0]
    key = emu.keys[bms.identity.address]  # type: ignore[attr-defined]
    rows = []  # (frame record, alternator current the model drives)
    for _ in range(7200):
        amps = bms.alternator_current_a  # type: ignore[attr-defined]  # the state being sent
        for adv in emu.step():
            if adv.address == bms.identity.address:  # type: ignore[attr-defined]
                rows.append((decode(adv.victron_data, key), amps))
    fuse_a = 100  # scenario: 100 A fuse → the CL manual's table says max 90 A
    assert all(0 <= amps <= 0.9 * fuse_a + 1e-9 for _, amps in rows)  # never back-feeds
    assert max(amps for _, amps in rows) > 0.85 * fuse_a  # and does reach the limit
    for r, amps in rows:
        assert r.alternator_current_pct is not None
        if r.alternator_voltage_v <= 13.0:  # §2.2: only when the starter is above 13 V
            assert r.alternator_current_pct == 0 and amps == 0
    # charge limit 14.2 V: off at the limit, back after 10 s at ≤ 13.7 V (§3.5.1)
    running = [r for r, _ in rows]
    trips = [
        i
        for i in range(1, len(running))
        if running[i - 1].alternator_current_pct
        and not running[i].alternator_current_pct
        and running[i].alternator_voltage_v > 13.0
    ]
    resumes = [
        i
        for i in range(1, len(running))
        if not running[i - 1].alternator_current_pct
        and running[i].alternator_current_pct
        and i > 30
    ]
    assert trips and resumes
    for i in trips:
        assert running[i - 1].battery_voltage_v >= 14.195
    for i in resumes:
        window = running[i - 10 : i]
        assert all(r.battery_voltage_v <= 13.705 for r in window)


def test_short_circuit_a_a12_and_system_plus_off() -> None:
    _, frames = run("smart-bms-12-200", "short-circuit")
    bms = bms_frames(frames)
    during = [f for f in bms if 125 <= f.t < 720]
    after = [f for f in bms if f.t > 725]
    assert all("A-A12" in codes(f) and f.record.system_voltage_v == 0.0 for f in during)
    assert all("A-A12" not in codes(f) and f.record.system_voltage_v > 12 for f in after)
    assert all("A-A12" not in codes(f) for f in bms if f.t < 120)


def test_cl_has_no_system_plus_and_bms_cable_e_b32_fails_safe() -> None:
    emu, frames = run("smart-bms-cl-12-100", "bms-cable")
    bms = bms_frames(frames)
    assert all(f.record.system_voltage_v is None for f in bms)  # no System+ on the CL
    cut = [f for f in bms if 62 <= f.t < 900]
    assert cut and all("E-B32" in codes(f) for f in cut)
    assert all("E-B32" not in codes(f) for f in bms if f.t < 60 or f.t > 902)
    # while the cable is off the loads are off: the bank voltage does not sag any further
    assert (
        max(f.record.battery_voltage_v for f in cut) - min(f.record.battery_voltage_v for f in cut)
        < 0.05
    )


def test_lynx_soc_by_coulomb_counting_ttg_and_io() -> None:
    emu, frames = run("lynx-smart-bms-500", "normal-day", 6 * 3600)
    lynx = [f.record for f in frames if isinstance(f.record, LynxSmartBmsRecord)]
    capacity = 2 * 200  # scenario bank: 2 × 12.8 V/200 Ah in parallel
    for prev, cur in zip(lynx, lynx[1:], strict=False):
        # consumed Ah is negative on the wire (docs/protocol.md §2.2) and integrates the current
        assert cur.consumed_ah <= 0
        expected = prev.consumed_ah + prev.battery_current_a / 3600
        assert abs(cur.consumed_ah - expected) <= 0.11
        assert abs(cur.soc_pct - (100 + 100 * cur.consumed_ah / capacity)) <= 0.11
        if cur.battery_current_a < 0:
            remaining_ah = cur.soc_pct / 100 * capacity
            ttg = remaining_ah / -cur.battery_current_a * 60  # values as rounded on the wire
            assert abs(cur.ttg_min - ttg) <= 2 + 0.02 * ttg
        assert cur.temperature_c is None  # a Lynx always sends n/a (docs/protocol.md §2.2)
        assert cur.io["contactor_closed"] is TriState.YES
        assert cur.io["allowed_to_discharge"] is TriState.YES


def test_lynx_deep_discharge_low_cell_warning_then_alarm() -> None:
    sc = inline(
        """
        [initial]
        soc_pct = 9.5
        [bank]
        battery = "lithium-12.8v-100ah"
        [[loads]]
        current_a = 50.0
        """
    )
    _, frames = run("lynx-smart-bms-1000", sc, 600)
    lynx = [f for f in frames if isinstance(f.record, LynxSmartBmsRecord)]
    w = next(i for i, f in enumerate(lynx) if "W-B01" in codes(f))
    a = next(i for i, f in enumerate(lynx) if "A-B01" in codes(f))
    assert lynx[a].t - lynx[w].t >= 30
    assert lynx[a].record.io["allowed_to_discharge"] is TriState.NO
