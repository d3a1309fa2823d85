"""Every bundled scenario says what it shows (`emulate --list`, its description): here each
description's claims are checked on what the scenario sends, decoded (issue 24 "Done when").

The source is the bundled recording in captures/ (seeded noise, jitter and repeats, as a
receiver records it) when it covers the scenario's whole duration or the claims' time span;
otherwise a full-length exact run of the same scenario. Numbers are the description's own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from victron_ble_bms.emulator import DeviceSpec, Emulator, bundled_names, load_scenario
from victron_ble_bms.protocol import (
    DecodeError,
    LynxSmartBmsRecord,
    SmartBmsRecord,
    SmartLithiumRecord,
    decode,
)
from victron_ble_bms.protocol.enums import BalancerStatus, TriState
from victron_ble_bms.sources.capture.jsonl import read_jsonl
from victron_ble_bms.sources.keys import KeyStore

from .test_fidelity import Row, cells, ids, of

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
T0 = 1_704_067_200.0  # engine.DEFAULT_START_TS


def from_capture(name: str) -> list[Row]:
    path = CAPTURES / f"scenario-{name}.jsonl"
    header = json.loads(path.read_text().splitlines()[0])
    store = KeyStore.load(CAPTURES / header["keys"])
    rows = []
    for a in read_jsonl(path):
        try:
            rows.append(Row(a.ts - T0, a.address, decode(a.victron_data, store[a.address])))
        except DecodeError:
            continue  # pin-change: after the new key (checked there)
    return rows


def full_run(name: str) -> list[Row]:
    sc = load_scenario(name)
    specs = [DeviceSpec(d.type) for d in sc.devices for _ in range(d.count)]
    emu = Emulator(specs, sc, seed=1, speed=None, exact=True)
    keys = emu.keys
    return [
        Row(a.ts - emu.start_ts, a.address, decode(a.victron_data, keys[a.address]))
        for a in emu.run(min(sc.duration_s, UNTIL.get(name, sc.duration_s)))
    ]


# Where a description's last claim comes well before the scenario's end (saves test time).
UNTIL = {"defective-cell": 86410.0}


def codes_seen(rows: list[Row]) -> list[str]:
    """Codes in the order they first appear."""
    out: list[str] = []
    for r in rows:
        for c in sorted(ids(r)):
            if c not in out:
                out.append(c)
    return out


def span(rows: list[Row], code: str) -> tuple[float, float]:
    ts = [r.t for r in rows if code in ids(r)]
    assert ts, code
    return ts[0], ts[-1]


# -- one checker per scenario: the description's claims -------------------------------------


def alternator(rows: list[Row]) -> None:
    bms = of(rows, SmartBmsRecord)
    # "limited by the fuse table (100 A fuse → 90 A)": the record carries % of that limit
    assert max(r.record.alternator_current_pct for r in bms) == 100
    # "current flows only while the starter battery is above 13 V"
    assert all(r.record.alternator_voltage_v > 13.0 for r in bms if r.record.alternator_current_pct)
    # "at the battery charge limit (14.2 V) the port switches off and comes back"
    pct = [r.record.alternator_current_pct for r in bms if r.t < 5400]
    offs = sum(1 for a, b in zip(pct, pct[1:], strict=False) if a and not b)
    assert offs >= 2
    # "Engine off after 90 minutes"
    assert all(r.record.alternator_current_pct == 0 for r in bms if r.t > 5402)


def balancer_errors(rows: list[Row]) -> None:
    assert [c for c in codes_seen(rows) if c.startswith("E-")] == ["E-SL9", "E-SL10", "E-SL1"]


def bms_cable(rows: list[Row]) -> None:
    start, end = span(of(rows, SmartBmsRecord), "E-B32")
    assert 60 <= start <= 63 and 898 <= end <= 902  # the cable is back at 900 s


def cold_charge(rows: list[Row]) -> None:
    start, end = span(rows, "A-SL22")
    assert start < 5 and rows[0].record.battery_temperature_c <= 1
    # "charging starts once the battery is at 5 °C"
    resumed = next(r for r in rows if r.t > end)
    assert resumed.record.battery_temperature_c == 5 and resumed.record.allowed_to_charge
    assert max(r.record.battery_voltage_v for r in rows if r.t > end) > 14.0


def deep_discharge(rows: list[Row]) -> None:
    w, a = span(rows, "W-SL12")[0], span(rows, "A-SL11")
    assert a[0] - w >= 30  # at least 30 s later
    assert min(min(cells(r)) for r in rows if r.t < a[0] + 3) <= 2.81
    back = next(r for r in rows if r.t > a[1])  # the loads return …
    assert back.record.allowed_to_discharge and min(cells(back)) >= 3.2  # … all cells ≥ 3.2 V


def defective_cell(rows: list[Row]) -> None:
    day = [r for r in rows if 86400 <= r.t < 86410]
    c = cells(day[0])
    assert 0.1 <= min(c[1:]) - c[0] <= 0.2  # "after a day … 0.1–0.2 V below the others"


def flat_battery(rows: list[Row]) -> None:
    assert codes_seen(rows)[:3] in (["W-SL12", "A-SL11", "E-SL24"], ["A-SL11", "W-SL12", "E-SL24"])
    e = span(rows, "E-SL24")[0]
    assert all(min(cells(r)) <= 2.61 for r in rows if "E-SL24" in ids(r))  # below 2.5 V
    ts = sorted(r.t for r in rows)
    gaps = [(a, b) for a, b in zip(ts, ts[1:], strict=False) if b - a > 30]
    assert gaps and gaps[0][0] > e  # then Bluetooth switches off …
    assert gaps[0][1] >= 1200  # … until the charger (1200 s) wakes it up


def fleet(rows: list[Row]) -> None:
    kinds = {type(r.record).__name__ for r in rows}
    assert kinds == {"SmartLithiumRecord", "SmartBmsRecord", "LynxSmartBmsRecord"}
    first: dict[str, float] = {}
    for r in of(rows, SmartLithiumRecord):
        first.setdefault(r.address, r.record.battery_voltage_v / (len(cells(r)) or 1))
    assert len(first) >= 20  # many devices, each from its own state of charge
    assert len({round(v, 2) for v in first.values()}) >= 5


def imbalance(rows: list[Row]) -> None:
    seen: list[BalancerStatus] = []
    for r in rows:
        if not seen or seen[-1] is not r.record.balancer_status:
            seen.append(r.record.balancer_status)
    assert seen[:3] == [BalancerStatus.IMBALANCE, BalancerStatus.BALANCING, BalancerStatus.BALANCED]
    atc = [r.record.allowed_to_charge for r in rows]
    offs = [rows[i].t for i in range(1, len(rows)) if atc[i - 1] and not atc[i]]
    periods = [b - a for a, b in zip(offs, offs[1:], strict=False)]
    assert len(periods) >= 4 and all(60 <= p <= 180 for p in periods)  # one to three minutes


def lynx_contactor(rows: list[Row]) -> None:
    lynx = of(rows, LynxSmartBmsRecord)
    w, a = span(lynx, "W-B01")[0], span(lynx, "A-B01")[0]
    assert w < a
    atd = next(r.t for r in lynx if r.record.io["allowed_to_discharge"] is TriState.NO)
    opened = next(r.t for r in lynx if r.record.io["contactor_closed"] is TriState.NO)
    assert 29 <= opened - atd <= 32
    assert any(r.record.io["contactor_closed"] is TriState.YES for r in lynx if r.t > 900)


def lynx_overcharge(rows: list[Row]) -> None:
    batteries = of(rows, SmartLithiumRecord)
    assert any("A-SL9" in ids(r) for r in batteries)
    lynx = of(rows, LynxSmartBmsRecord)
    atc = next(r.t for r in lynx if r.record.io["allowed_to_charge"] is TriState.NO)
    opened = next(r.t for r in lynx if r.record.io["contactor_closed"] is TriState.NO)
    assert 29 <= opened - atc <= 32
    # "it closes when the cells are below 3.6 V"
    closed = next(
        r.t for r in lynx if r.t > opened and r.record.io["contactor_closed"] is TriState.YES
    )
    before = [max(cells(b)) for b in batteries if closed - 3 < b.t < closed]
    assert before and min(before) <= 3.60  # the battery reading that let it close


def lynx_overload(rows: list[Row]) -> None:
    lynx = of(rows, LynxSmartBmsRecord)
    assert not any({"W-B02", "A-B02"} & ids(r) for r in lynx if 33 < r.t < 89)  # 450 A
    assert all("W-B02" in ids(r) for r in lynx if 123 < r.t < 239)  # 550 A
    assert all("A-B02" in ids(r) for r in lynx if 303 < r.t < 330)  # 700 A at once
    assert min(r.record.battery_current_a for r in lynx) == pytest.approx(-700.0, abs=0.6)
    atd_off = [r.t for r in lynx if r.record.io["allowed_to_discharge"] is TriState.NO]
    assert atd_off and 330 <= atd_off[0] <= 333  # 30 s later …
    assert all(r.record.io["contactor_closed"] is TriState.YES for r in lynx)  # … closed
    back = [r.t for r in lynx if r.t > atd_off[0] and r.record.battery_current_a < -600]
    assert back and back[0] < 420  # the inverter comes back: it cycles
    assert all(not ids(r) & {"A-B02", "W-B02"} for r in lynx if r.t > 460)


def normal_day(rows: list[Row]) -> None:
    lynx = of(rows, LynxSmartBmsRecord)
    morning = next(r for r in lynx if r.t >= 21600).record.soc_pct
    noon = max(r.record.soc_pct for r in lynx if 21600 <= r.t < 64800)
    assert noon > morning + 10  # solar charges
    # bulk → absorption (14.2 V) → float (13.5 V)
    assert max(r.record.battery_voltage_v for r in lynx) == pytest.approx(14.2, abs=0.06)
    assert any(
        13.4 <= r.record.battery_voltage_v <= 13.6 and r.record.battery_current_a >= 0
        for r in lynx
        if r.t > 21600 + 3 * 3600
    )
    evening = [r.record.battery_current_a for r in lynx if 64800 < r.t < 79200]
    assert max(evening) < -35  # the evening's 40 A (+ 3 A fridge)


def overheat(rows: list[Row]) -> None:
    for r in rows:
        if r.record.battery_temperature_c > 50:
            assert not r.record.allowed_to_charge  # above 50 °C: no charging …
            assert ids(r) <= {"A-SL15"}  # … and no code of its own
        if "A-SL15" in ids(r):
            assert r.record.battery_temperature_c >= 75
    start, end = span(rows, "A-SL15")
    assert next(r for r in rows if r.t > end).record.battery_temperature_c == 75
    resumed = next(r for r in rows if r.t > end and r.record.allowed_to_charge)
    assert resumed.record.battery_temperature_c == 50


def overload(rows: list[Row]) -> None:
    bms = of(rows, SmartBmsRecord)
    assert all(r.record.system_voltage_v > 12 for r in bms if 30 < r.t < 120)  # 150 A runs
    tripped = [r.t for r in bms if "A-A12" in ids(r)]
    assert 125 <= min(t for t in tripped if t >= 120) <= 127  # 300 A: after 5 s
    assert min(t for t in tripped if t >= 300) < 302  # 500 A inrush: at once
    assert all(r.record.system_voltage_v > 12 for r in bms if r.t > 341)  # on again


def overvoltage(rows: list[Row]) -> None:
    first = next(r for r in rows if "A-SL9" in ids(r))
    assert not first.record.allowed_to_charge  # the disconnect was there, without effect


def parallel_bank(rows: list[Row]) -> None:
    lynx = of(rows, LynxSmartBmsRecord)
    by_second: dict[int, list[LynxSmartBmsRecord]] = {}
    for b in lynx:
        by_second.setdefault(int(b.t), []).append(b.record)
    for r in of(rows, SmartLithiumRecord):
        s = int(r.t)
        near = by_second.get(s - 1, []) + by_second.get(s, []) + by_second.get(s + 1, [])
        # "each within its own current times its cabling (1 mΩ) of the Lynx's voltage"
        assert not near or any(
            abs(r.record.battery_voltage_v - b.battery_voltage_v)
            <= abs(b.battery_current_a) * 0.001 + 0.05
            for b in near
        )
    assert lynx[0].record.soc_pct == pytest.approx(50.0, abs=0.3)
    assert lynx[-1].record.soc_pct > lynx[0].record.soc_pct + 1  # charging at 60 A


def pin_change(rows: list[Row]) -> None:
    # keys.toml holds the new key (captures/README): only the frames from the change at 300 s
    # on decode with it, the earlier ones are key mismatches
    assert rows and min(r.t for r in rows) >= 299 and max(r.t for r in rows) > 590


def settings_lost(rows: list[Row]) -> None:
    start, end = span(rows, "E-SL119")
    assert start < end and rows[-1].t > end


def short_circuit(rows: list[Row]) -> None:
    bms = of(rows, SmartBmsRecord)
    start, end = span(bms, "A-A12")
    assert 120 <= start <= 122 and 718 <= end <= 722  # removed after ten minutes
    assert all(r.record.system_voltage_v == 0.0 for r in bms if "A-A12" in ids(r))
    assert bms[-1].record.system_voltage_v > 12


def system_plus(rows: list[Row]) -> None:
    bms = of(rows, SmartBmsRecord)
    assert any(r.record.system_voltage_v == 0.0 for r in bms if r.t < 700)  # load disconnect
    assert any(r.record.system_voltage_v > 12 for r in bms if 700 < r.t < 1800)  # back
    cable = [r for r in bms if "E-B32" in ids(r)]
    assert cable and all(r.record.system_voltage_v == 0.0 for r in cable)


def system_plus_charging(rows: list[Row]) -> None:
    bms = of(rows, SmartBmsRecord)
    assert any(r.record.system_voltage_v == 0.0 for r in bms if r.t < 420)
    assert all(r.record.system_voltage_v > 11 for r in bms if r.t > 422)
    batteries = of(rows, SmartLithiumRecord)
    back = next(r for r in batteries if r.t > 420 and r.record.allowed_to_discharge)
    assert min(cells(back)) >= 3.2
    alt = [r for r in bms if r.t > 2402]
    cut = next(r.t for r in alt if r.record.alternator_current_pct == 0)
    assert max(r.record.battery_voltage_v for r in alt if r.t > cut) >= 14.3


CHECKS: dict[str, Callable[[list[Row]], None]] = {
    "alternator": alternator,
    "balancer-errors": balancer_errors,
    "bms-cable": bms_cable,
    "cold-charge": cold_charge,
    "deep-discharge": deep_discharge,
    "defective-cell": defective_cell,
    "flat-battery": flat_battery,
    "fleet": fleet,
    "imbalance": imbalance,
    "lynx-contactor": lynx_contactor,
    "lynx-overcharge": lynx_overcharge,
    "lynx-overload": lynx_overload,
    "normal-day": normal_day,
    "overheat": overheat,
    "overload": overload,
    "overvoltage": overvoltage,
    "parallel-bank": parallel_bank,
    "pin-change": pin_change,
    "settings-lost": settings_lost,
    "short-circuit": short_circuit,
    "system-plus": system_plus,
    "system-plus-charging": system_plus_charging,
}
# The claims these make lie within the bundled recording's first minutes.
FROM_CAPTURE = {
    "balancer-errors",
    "bms-cable",
    "fleet",
    "lynx-overload",
    "overload",
    "overvoltage",
    "parallel-bank",
    "pin-change",
    "settings-lost",
    "short-circuit",
}


def test_every_bundled_scenario_has_a_check() -> None:
    assert set(CHECKS) == set(bundled_names())


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_scenario_shows_what_its_description_says(name: str) -> None:
    rows = from_capture(name) if name in FROM_CAPTURE else full_run(name)
    CHECKS[name](rows)
