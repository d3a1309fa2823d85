"""Banks: batteries and their BMS seen, judged and published together (issue 20).

A layer between the sources and the presentation: pure (no I/O, no asyncio), it imports only the
protocol's records and `sources.readings`. Stable API — the web page, Signal K and the
dashboard build on it:

    specs, problems = parse_banks(doc["banks"], {address: name})   # spec.py; never raises
    spec: BankSpec        name, layout (Layout.PARALLEL | SERIES | SERIES_PARALLEL), members
                          (Member: ref, address, name), strings, soc_source, problems
    state = bank_state(spec, latest_reading_by_address, now, stale_after_s)   # state.py
    state: BankState      verdict (Verdict.OK | WARNING | DEGRADED | UNKNOWN | ALARM), reason,
                          problems, members (MemberState each: status, deviation_v, imbalance …),
                          members_expected/heard/stale, voltage_v, voltage_spread_v,
                          string_voltages_v, cell_min/cell_max (CellExtreme: voltage_v, member,
                          cell, .at = "House 2: cell 3"), cell_spread_mv, temperature_min/max,
                          allowed_to_charge/discharge, blocking_charge/discharge, codes
                          (MemberCode: member, code; worst first), worst_code, imbalance,
                          soc_pct, current_a, consumed_ah, ttg_min, soc_from, problem
    bank_object(state) -> dict                      # bank_json.py: {"type": "bank", …}
    BankTracker(specs).update(reading) -> [dict]    # tracker.py: bank objects that changed
    declared_banks(keys) -> {name: BankSpec}        # a KeyStore's banks (or any keys' .banks)

Never an all-clear it does not know: a member silent, stale, keyless, unreadable, partial or
suspect makes the verdict DEGRADED (UNKNOWN when none is heard), naming it.
"""

from .bank_json import bank_object
from .spec import BankSpec, Layout, Member, bank_table, declared_banks, parse_bank, parse_banks
from .state import (
    IMBALANCE_REMEDY,
    IMBALANCE_SOC_PCT,
    IMBALANCE_V_PER_CELL,
    BankState,
    CellExtreme,
    MemberCode,
    MemberState,
    MemberStatus,
    Verdict,
    bank_state,
)
from .tracker import DEFAULT_STALE_S, BankTracker, member_reading

__all__ = [
    "DEFAULT_STALE_S",
    "BankTracker",
    "IMBALANCE_REMEDY",
    "IMBALANCE_SOC_PCT",
    "IMBALANCE_V_PER_CELL",
    "BankSpec",
    "BankState",
    "CellExtreme",
    "Layout",
    "Member",
    "MemberCode",
    "MemberState",
    "MemberStatus",
    "Verdict",
    "bank_object",
    "bank_state",
    "bank_table",
    "member_reading",
    "declared_banks",
    "parse_bank",
    "parse_banks",
]
