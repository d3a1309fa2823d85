"""Forged frames (issue 18 item 2): anyone in radio range can send a device's clear header with
its next nonce and random bytes after it, cut to any length. Such a frame must never become the
device's state (no good reading, no code) and must not make the genuine frame with its nonce
look replayed; a genuine change still becomes the state, one frame later."""

from __future__ import annotations

import random

import pytest

from victron_ble_bms.protocol import COMPANY_ID, encode
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import DevicesState, Outcome

from .fleet import SMART_LITHIUM_12V, battery

T0 = 1_700_000_000.0
ADDRESS = "C0:55:00:00:00:01"
KEY = bytes(range(16))


def _genuine(nonce: int) -> bytes:
    return encode(battery(nonce), key=KEY, nonce=nonce, model_id=SMART_LITHIUM_12V)


@pytest.mark.parametrize("length", range(9, 25))
@pytest.mark.parametrize("path", ["hot", "general"])
def test_forged_frames_of_every_length_never_become_a_reading(length: int, path: str) -> None:
    rng = random.Random(length)
    table = DevicesState({ADDRESS: KEY})
    update = (
        table.update
        if path == "hot"
        else (lambda adv: table._update(adv, adv.manufacturer_data[COMPANY_ID]))
    )
    nonce, t = 100, T0
    assert update(Advertisement(t, ADDRESS, {COMPANY_ID: _genuine(nonce)})).outcome is Outcome.NEW
    dev = table.get(ADDRESS)
    assert dev is not None
    forged_good = dropped = 0
    for _ in range(1000):
        nonce += 1
        t += 1.0
        header = _genuine(nonce)[:8]  # public: the device's header with its next nonce
        forged = header + rng.randbytes(length - 8)
        before = dev.last_decoded
        u = update(Advertisement(t - 0.5, ADDRESS, {COMPANY_ID: forged}))
        if u.outcome is Outcome.NEW or dev.last_decoded is not before:
            forged_good += 1
        if u.reading is not None and u.reading.record is not None:
            assert u.reading.suspect, u  # shown at most as suspect: sinks keep the last values
        g = update(Advertisement(t, ADDRESS, {COMPANY_ID: _genuine(nonce)}))
        if g.outcome is not Outcome.NEW:
            dropped += 1
        else:
            assert g.reading is not None and g.reading.record == battery(nonce)
        assert dev.last_decoded is not None and dev.last_decoded.record == battery(nonce)
        assert dev.last_decoded.record.codes == ()
    assert (forged_good, dropped) == (0, 0)


def test_a_genuine_change_is_taken_one_frame_later() -> None:
    """A new alarm (error flag set) is unconfirmed in its first frame and the device's state
    with the next frame carrying it under a fresh nonce: the delay is one nonce interval."""
    table = DevicesState({ADDRESS: KEY})
    quiet, alarm = battery(0), battery(0)
    from dataclasses import replace

    from victron_ble_bms.protocol.enums import SmartLithiumErrorFlags

    alarm = replace(quiet, error_flags=SmartLithiumErrorFlags(1))
    frames = [quiet] * 5 + [alarm] * 3
    outcomes = []
    for i, record in enumerate(frames):
        data = encode(record, key=KEY, nonce=500 + i, model_id=SMART_LITHIUM_12V)
        u = table.update(Advertisement(T0 + i, ADDRESS, {COMPANY_ID: data}))
        outcomes.append(u.outcome)
        dev = table.get(ADDRESS)
        assert dev is not None and dev.last_decoded is not None
        shown = dev.last_decoded.record
        assert shown == (alarm if i >= 6 else quiet), i
    assert outcomes == [Outcome.NEW] * 5 + [Outcome.SUSPECT, Outcome.NEW, Outcome.NEW]
    assert dev.nonce == 507
