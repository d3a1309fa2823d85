"""Property tests on the aggregation (issue 20 "Tests"): the bank's lowest/highest cell and
spread equal a plain loop over the members read; one member silent, stale, keyless, partial or
suspect never gives an all-clear, and it is named."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from victron_ble_bms.banks import MemberStatus, Verdict, bank_object, bank_state, parse_bank
from victron_ble_bms.sources.readings import Reading

from .readings import address, battery, no_key, reading, truncated

# 2.62 … 3.84 V in 0.01 V steps: what the 7-bit cell field carries exactly (docs/protocol.md §2.1)
cell = st.integers(262, 384).map(lambda cv: cv / 100)
cells = st.integers(4, 4).flatmap(lambda n: st.tuples(*[cell] * n)) | st.tuples(*[cell] * 8)
KINDS = ("ok", "silent", "stale", "no key", "wrong key", "partial", "suspect")
member = st.tuples(cells, st.sampled_from(KINDS))


def make(i: int, values: tuple[float, ...], kind: str) -> Reading | None:
    record = battery(values)
    if kind == "silent":
        return None
    if kind == "stale":
        return reading(i, record, ts=500.0)
    if kind == "no key":
        return no_key(i, record)
    if kind == "wrong key":
        return reading(i, record, key=bytes([0xEE] * 16))
    if kind == "partial":
        return truncated(i, record, 1)  # the temperature missing: cells still there
    r = reading(i, record)
    return dataclasses.replace(r, suspect="replayed") if kind == "suspect" else r


@settings(max_examples=60, deadline=None)
@given(st.lists(member, min_size=1, max_size=6))
def test_aggregates_equal_a_plain_loop_and_no_all_clear_unless_all_known(
    members: list[tuple[tuple[float, ...], str]],
) -> None:
    names = {address(i): f"B{i}" for i in range(len(members))}
    spec = parse_bank("bank", {"members": [f"B{i}" for i in range(len(members))]}, names)
    readings = {}
    for i, (values, kind) in enumerate(members):
        r = make(i, values, kind)
        if r is not None:
            readings[address(i)] = r
    s = bank_state(spec, readings, 1000.0, 60.0)

    # the plain loop: every cell of every member whose reading counts
    usable = [(f"B{i}", v) for i, (v, k) in enumerate(members) if k in ("ok", "partial")]
    all_cells = [(c, name, n) for name, v in usable for n, c in enumerate(v, 1)]
    if not all_cells:
        assert s.cell_min is None and s.cell_max is None and s.cell_spread_mv is None
    else:
        low = min(c for c, _, _ in all_cells)
        high = max(c for c, _, _ in all_cells)
        assert s.cell_min is not None and s.cell_max is not None
        assert s.cell_min.voltage_v == low and s.cell_max.voltage_v == high
        assert (low, s.cell_min.member, s.cell_min.cell) in all_cells
        assert (high, s.cell_max.member, s.cell_max.cell) in all_cells
        assert s.cell_spread_mv == round((high - low) * 1000)
    assert s.members_heard == len(usable)

    bad = [f"B{i}" for i, (_, k) in enumerate(members) if k != "ok"]
    if bad:
        assert s.verdict is not Verdict.OK
        assert s.problem is not False
        for name in bad:
            assert f"{name}: " in s.reason or s.verdict is Verdict.ALARM
        obj = bank_object(s)
        assert obj["problem"] is not False
        # a partial frame that still carried its flags has known codes; nothing else does
        if any(k not in ("ok", "partial") for _, k in members):
            assert obj["worst_code"] != "none"
    else:
        assert all(m.status is MemberStatus.OK for m in s.members)
        assert s.verdict in (Verdict.OK, Verdict.WARNING, Verdict.ALARM)
