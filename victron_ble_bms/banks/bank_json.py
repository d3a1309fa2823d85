"""The JSON object of a bank (`bank_object`): one shape for `decode --format jsonl`, `scan
--json` and the MQTT topic `<prefix>/bank/<name>/state`. Unknown is null, never false or
"none" (`worst_code` is "none" only when every member's codes are known and none is active).
Names come from the keys file and are already plain text (safetext)."""

from __future__ import annotations

from typing import Any

from victron_ble_bms.safetext import plain

from .state import IMBALANCE_REMEDY, BankState, CellExtreme, MemberState


def _member(m: MemberState) -> dict[str, Any]:
    return {
        "name": m.member.name,
        "address": m.member.address,
        "status": m.status.value,
        "detail": m.detail or None,
        "role": m.role,
        "age_s": None if m.age_s is None else round(m.age_s, 1),
        "voltage_v": m.voltage_v,
        "deviation_v": m.deviation_v,
        "soc_pct": m.soc_pct,
        "soc_deviation_pct": m.soc_deviation_pct,
        "imbalance": m.imbalance,
        "cell_count": m.cell_count,
        "cell_min_v": m.cell_min_v,
        "cell_max_v": m.cell_max_v,
        "temperature_c": m.temperature_c,
        "allowed_to_charge": m.allowed_to_charge,
        "allowed_to_discharge": m.allowed_to_discharge,
        "codes": None if m.codes is None else [c.id for c in m.codes],
    }


def _cell(extreme: CellExtreme | None) -> tuple[float | None, str | None, str | None]:
    if extreme is None:
        return None, None, None
    return extreme.voltage_v, extreme.at, None if extreme.bound is None else str(extreme.bound)


def bank_object(state: BankState) -> dict[str, Any]:
    """The bank as one JSON object (README "Banks")."""
    low_v, low_at, low_bound = _cell(state.cell_min)
    high_v, high_at, high_bound = _cell(state.cell_max)
    t_min, t_max = state.temperature_min, state.temperature_max
    blocking_c, blocking_d = state.blocking_charge, state.blocking_discharge
    return {
        "type": "bank",
        "name": plain(state.name, 60),
        "ts": state.ts,
        "layout": state.layout.value,
        "verdict": state.verdict.value,
        "reason": state.reason,
        "problem": state.problem,
        "problems": list(state.problems),
        "members": state.members_expected,
        "members_heard": state.members_heard,
        "members_stale": state.members_stale,
        "voltage_v": state.voltage_v,
        "voltage_spread_v": state.voltage_spread_v,
        "string_voltages_v": list(state.string_voltages_v) or None,
        "cell_voltage_min_v": low_v,
        "cell_voltage_min_at": low_at,
        "cell_voltage_min_bound": low_bound,
        "cell_voltage_max_v": high_v,
        "cell_voltage_max_at": high_at,
        "cell_voltage_max_bound": high_bound,
        "cell_spread_mv": state.cell_spread_mv,
        "temperature_min_c": None if t_min is None else t_min[0],
        "temperature_min_at": None if t_min is None else t_min[1],
        "temperature_max_c": None if t_max is None else t_max[0],
        "temperature_max_at": None if t_max is None else t_max[1],
        "allowed_to_charge": state.allowed_to_charge,
        "allowed_to_discharge": state.allowed_to_discharge,
        "blocking_charge": None if blocking_c is None else list(blocking_c),
        "blocking_discharge": None if blocking_d is None else list(blocking_d),
        "worst_code": state.worst_code,
        "codes": [
            {"member": mc.member, **mc.code.to_dict(), "remedy": mc.code.remedy}
            for mc in state.codes
        ],
        "codes_complete": state.codes_complete,
        "imbalance": None if state.imbalance is None else list(state.imbalance),
        "imbalance_remedy": IMBALANCE_REMEDY if state.imbalance else None,
        "soc_pct": state.soc_pct,
        "current_a": state.current_a,
        "consumed_ah": state.consumed_ah,
        "ttg_min": state.ttg_min,
        "soc_from": state.soc_from,
        "member_states": [_member(m) for m in state.members],
    }
