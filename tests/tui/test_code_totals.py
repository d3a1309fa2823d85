"""The status line's code counts are kept between frames (issue 26) and must always equal a
count made afresh over every device: as codes rise and clear, a frame lacks the fields codes
come from (unknown), and devices are forgotten to keep the fleet bounded."""

from __future__ import annotations

import random

from victron_ble_bms.tui.state import Fleet

from victron_ble_bms.protocol.codes import Severity
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.readings import Reading, decode_advertisement

from . import frames


def recount(fleet: Fleet) -> tuple[dict[Severity, int], int]:
    counts: dict[Severity, int] = {}
    for dev in fleet.devices.values():
        for active in dev.codes.values():
            counts[active.code.severity] = counts.get(active.code.severity, 0) + 1
    return counts, sum(dev.codes_unknown for dev in fleet.devices.values())


def readings() -> list[Reading]:
    """Each device healthy, in trouble, and with a frame cut before its flag fields."""
    out = []
    for address, records in [
        (frames.HOUSE, [frames.house(), frames.bow()]),  # bow()'s cells: W-SL12 on the house
        (frames.BOW, [frames.bow(), frames.house()]),
        (frames.LYNX, [frames.lynx()]),
        (frames.SMART_BMS, [frames.smart_bms()]),
    ]:
        for record in records:
            out.append(decode_advertisement(frames.advert(address, record), frames.KEYS))
        data = frames.advert(address, records[0]).manufacturer_data[0x02E1]
        cut = Advertisement(frames.T0, address, {0x02E1: data[:10]}, rssi=-60)
        out.append(decode_advertisement(cut, frames.KEYS))
    return out


def test_counts_follow_every_change_and_forgetting() -> None:
    pool = readings()
    assert any(r.record is not None and r.record.codes for r in pool)  # codes rise
    assert any(r.record is not None and r.record.codes is None for r in pool)  # and go unknown
    rng = random.Random(26)
    for max_devices in (2, 3, 16):
        fleet = Fleet(clock=lambda: frames.T0, max_devices=max_devices)
        seen = set()
        for _ in range(400):
            fleet.update(rng.choice(pool))
            assert fleet.code_totals() == recount(fleet)
            seen.add(str(fleet.code_totals()))
        assert len(seen) >= 4  # the counts did move: warnings, alarms, unknown, none
