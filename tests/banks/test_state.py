"""The bank's state from its members' readings (issue 20 item 2)."""

from __future__ import annotations

import dataclasses
import json

from victron_ble_bms.banks import (
    BankSpec,
    Layout,
    MemberStatus,
    Verdict,
    bank_object,
    bank_state,
    parse_bank,
)
from victron_ble_bms.protocol import LynxSmartBmsRecord
from victron_ble_bms.protocol.enums import BmsError, BmsFlags
from victron_ble_bms.sources.readings import Reading

from .readings import ALLOWED, address, battery, no_key, reading, truncated

NAMES = {address(1): "House 1", address(2): "House 2", address(3): "House 3", address(9): "Lynx"}


def spec(*members: str, layout: str = "parallel", **extra: object) -> BankSpec:
    return parse_bank("house", {"layout": layout, "members": list(members), **extra}, NAMES)


HOUSE = spec("House 1", "House 2", "House 3")


def good() -> dict[str, Reading]:
    return {
        address(1): reading(1, battery((3.31, 3.30, 3.32, 3.30))),
        address(2): reading(2, battery((3.30, 3.28, 3.31, 3.30), temperature_c=24)),
        address(3): reading(3, battery((3.33, 3.30, 3.30, 3.34), temperature_c=18)),
    }


def test_all_members_heard_gives_ok_with_the_cells_named_by_member() -> None:
    s = bank_state(HOUSE, good(), 1001.0, 60.0)
    assert s.verdict is Verdict.OK and s.problem is False
    assert (s.members_expected, s.members_heard, s.members_stale) == (3, 3, 0)
    assert s.cell_min is not None and s.cell_min.at == "House 2: cell 2"
    assert s.cell_min.voltage_v == 3.28
    assert s.cell_max is not None and s.cell_max.at == "House 3: cell 4"
    assert s.cell_spread_mv == 60
    assert s.temperature_min == (18.0, "House 3") and s.temperature_max == (24.0, "House 2")
    assert s.allowed_to_charge is True and s.blocking_charge == ()
    assert s.worst_code == "none"
    assert s.voltage_v is not None and abs(s.voltage_v - 13.22) < 0.01
    assert s.voltage_spread_v == 0.08  # 13.27 − 13.19


def test_a_silent_member_is_degraded_and_named_never_ok() -> None:
    readings = good()
    del readings[address(2)]
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert s.verdict is Verdict.DEGRADED
    assert "House 2: not heard" in s.reason
    assert s.problem is None  # unknown, not "no problem"
    assert s.allowed_to_charge is None and s.blocking_charge is None
    assert s.worst_code is None  # the codes of House 2 are unknown
    obj = bank_object(s)
    assert obj["problem"] is None and obj["worst_code"] is None
    assert obj["members"] == 3 and obj["members_heard"] == 2


def test_no_member_heard_is_unknown() -> None:
    s = bank_state(HOUSE, {}, 1001.0, 60.0)
    assert s.verdict is Verdict.UNKNOWN and s.reason.startswith("no member heard")
    obj = bank_object(s)
    for key in ("cell_voltage_min_v", "cell_voltage_min_at", "allowed_to_charge", "worst_code"):
        assert obj[key] is None, key


def test_stale_keyless_wrong_key_partial_suspect_each_named() -> None:
    readings = good()
    readings[address(1)] = reading(1, battery(), ts=900.0)
    readings[address(2)] = reading(2, battery(), key=bytes([0xEE] * 16))
    readings[address(3)] = no_key(3, battery())
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert [m.status for m in s.members] == [
        MemberStatus.STALE,
        MemberStatus.KEY_MISMATCH,
        MemberStatus.NO_KEY,
    ]
    assert s.verdict is Verdict.UNKNOWN
    assert "House 1: stale (last heard 101 s ago)" in s.reason
    assert "House 2: key mismatch" in s.reason and "House 3: no key" in s.reason

    readings = good()
    readings[address(1)] = truncated(1, battery(), 3)
    r2 = readings[address(2)]
    readings[address(2)] = dataclasses.replace(r2, suspect="nonce went backwards")
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert s.verdict is Verdict.DEGRADED
    assert "House 1: partial frame" in s.reason
    assert "House 2: suspect (nonce went backwards)" in s.reason
    assert s.members_heard == 2  # the partial member counts for what it has


def test_a_blocking_member_is_named() -> None:
    readings = good()
    readings[address(3)] = reading(3, battery(flags=BmsFlags.ALLOWED_TO_DISCHARGE))
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert s.allowed_to_charge is False and s.blocking_charge == ("House 3",)
    assert s.allowed_to_discharge is True and s.blocking_discharge == ()
    assert s.verdict is Verdict.WARNING and "House 3: not allowed charging" in s.reason
    # a blocking member is known even while another is silent
    del readings[address(1)]
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert s.allowed_to_charge is False and s.blocking_charge == ("House 3",)
    assert s.verdict is Verdict.DEGRADED and s.problem is True


def test_codes_carry_their_member_worst_first_and_an_alarm_wins() -> None:
    readings = good()
    # bit 12 = W-SL12 pre-alarm; bit 11 = A-SL11 under-voltage alarm (manual §5.3)
    readings[address(1)] = reading(1, battery(flags=ALLOWED | BmsFlags.WARNING_UNDER_VOLTAGE))
    readings[address(3)] = reading(
        3, battery(flags=BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALARM_UNDER_VOLTAGE)
    )
    del readings[address(2)]
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert s.verdict is Verdict.ALARM and s.problem is True
    assert [(c.member, c.code.id) for c in s.codes] == [
        ("House 3", "A-SL11"),
        ("House 1", "W-SL12"),
    ]
    assert s.worst_code == "A-SL11"
    obj = bank_object(s)
    assert obj["codes"][0]["member"] == "House 3" and obj["codes"][0]["severity"] == "alarm"
    assert obj["blocking_discharge"] == ["House 3"]


def test_inter_battery_imbalance_past_the_threshold_is_flagged_with_the_remedy() -> None:
    readings = good()
    # House 2 at 12.95 V against ~13.2 V: 0.25 V over 4 cells, past 25 mV per cell
    readings[address(2)] = reading(2, battery((3.24, 3.23, 3.24, 3.24)))
    s = bank_state(HOUSE, readings, 1001.0, 60.0)
    assert s.imbalance == ("House 2",)
    dev = s.members[1].deviation_v
    assert dev is not None and -0.30 < dev < -0.20
    assert s.verdict is Verdict.WARNING and "House 2: inter-battery imbalance" in s.reason
    assert "charge each battery fully on its own" in bank_object(s)["imbalance_remedy"]
    # within the threshold: known, none flagged
    s = bank_state(HOUSE, good(), 1001.0, 60.0)
    assert s.imbalance == () and all(m.imbalance is False for m in s.members)


def test_series_sums_the_string_and_rejects_mixed_cell_counts() -> None:
    sp = spec("House 1", "House 2", layout="series")
    readings = good()
    s = bank_state(sp, readings, 1001.0, 60.0)
    assert s.string_voltages_v == (26.42,) and s.voltage_v == 26.42
    readings[address(2)] = reading(2, battery((3.3,) * 8))
    s = bank_state(sp, readings, 1001.0, 60.0)
    assert s.verdict is Verdict.DEGRADED
    assert "different cell counts (House 1 4, House 2 8)" in s.reason
    # a silent battery leaves the string's sum unknown
    del readings[address(2)]
    assert bank_state(sp, readings, 1001.0, 60.0).voltage_v is None


def test_series_parallel_strings() -> None:
    sp = spec(layout="series-parallel", strings=[["House 1", "House 2"], ["House 3"]])
    s = bank_state(sp, good(), 1001.0, 60.0)
    assert s.string_voltages_v == (26.42, 13.27)


def lynx(soc: float = 61.5, current: float = -12.3) -> LynxSmartBmsRecord:
    io = 1 | 1 << 2 | 1 << 4  # contactor closed, allowed to charge, to discharge: yes
    return LynxSmartBmsRecord(BmsError(0), 245, 13.22, current, io, 0, soc, -38.5, 21)


def test_soc_current_consumed_and_time_to_go_from_the_source() -> None:
    sp = spec("House 1", "House 2", "House 3", "Lynx", soc_source="Lynx")
    readings = good()
    readings[address(9)] = reading(9, lynx())
    s = bank_state(sp, readings, 1001.0, 60.0)
    assert (s.soc_pct, s.current_a, s.consumed_ah, s.ttg_min) == (61.5, -12.3, -38.5, 245)
    assert s.soc_from == "Lynx" and s.verdict is Verdict.OK
    # not declared: the first member that carries SOC
    s = bank_state(spec("House 1", "Lynx"), readings, 1001.0, 60.0)
    assert s.soc_from == "Lynx"


def test_declaration_problems_make_the_bank_degraded() -> None:
    sp = spec("House 1", "House 7")
    assert sp.problems == ("member 'House 7' names no device in the keys file",)
    s = bank_state(sp, good(), 1001.0, 60.0)
    assert s.verdict is Verdict.DEGRADED
    assert "House 7: names no device in the keys file" in s.reason


def test_json_is_typed_as_a_bank_and_serialisable() -> None:
    obj = bank_object(bank_state(HOUSE, good(), 1001.0, 60.0))
    assert obj["type"] == "bank" and obj["name"] == "house" and obj["verdict"] == "ok"
    assert obj["cell_voltage_min_at"] == "House 2: cell 2"
    json.dumps(obj, allow_nan=False)
    assert obj["layout"] == Layout.PARALLEL.value
