"""BankTracker: a bank object when the bank changed, not for the clock alone."""

from __future__ import annotations

import dataclasses

from victron_ble_bms.banks import BankTracker, parse_banks

from .readings import address, battery, reading

NAMES = {address(1): "A", address(2): "B", address(5): "Other"}


def test_objects_only_on_change_and_a_silent_member_is_news() -> None:
    banks, problems = parse_banks({"house": {"members": ["A", "B"]}}, NAMES)
    assert problems == []
    t = BankTracker(banks, stale_after_s=60.0)
    first = t.update(reading(1, battery(), ts=1000.0))
    assert [o["verdict"] for o in first] == ["degraded"]  # B not heard yet
    assert t.update(reading(5, battery(), ts=1000.5)) == []  # not a member of any bank
    (both,) = t.update(reading(2, battery(), ts=1001.0))
    assert both["verdict"] == "ok"
    # the same values again, later: nothing new
    again = dataclasses.replace(reading(1, battery(), ts=1002.0))
    assert t.update(again) == []
    # new cells: news
    (changed,) = t.update(reading(1, battery((3.30, 3.30, 3.30, 3.29)), ts=1003.0))
    assert changed["cell_voltage_min_v"] == 3.29
    # B falls silent: stale once the clock passes 60 s, said once
    (stale,) = t.tick(1062.0)
    assert stale["verdict"] == "degraded" and "B: stale (last heard 61 s ago)" in stale["reason"]
    assert t.tick(1063.0) == []  # A, heard at 1003, is not stale yet


def test_a_suspect_frame_never_replaces_a_members_trusted_values() -> None:
    """A forged frame, or a genuine change not yet confirmed (sources/confirm.py), keeps the
    member's last trusted reading: a stranger cannot turn a bank degraded; a member with no
    trusted reading yet is judged by the suspect one, and named."""
    banks, _ = parse_banks({"house": {"members": ["A", "B"]}}, NAMES)
    t = BankTracker(banks, stale_after_s=60.0)
    t.update(reading(1, battery(), ts=1000.0))
    (ok,) = t.update(reading(2, battery(), ts=1000.0))
    assert ok["verdict"] == "ok"
    forged = dataclasses.replace(
        reading(2, battery((2.70, 3.30, 3.30, 3.30)), ts=1001.0), suspect="unconfirmed change"
    )
    assert t.update(forged) == []  # nothing changed: B is still its last trusted reading
    low = t.state("house").cell_min
    assert low is not None and low.voltage_v > 3.0
    # only suspect frames from B for a minute (A keeps talking): B goes stale on its last
    # trusted reading
    t.update(reading(1, battery(), ts=1050.0))
    (stale,) = t.tick(1061.0)
    assert stale["verdict"] == "degraded" and "B: stale" in stale["reason"]
    fresh = BankTracker(banks, stale_after_s=60.0)
    fresh.update(reading(1, battery(), ts=1000.0))
    (first,) = fresh.update(forged)
    assert first["verdict"] == "degraded" and "B: suspect" in first["reason"]
