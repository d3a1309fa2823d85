"""Forged frames (issue 18 item 2): anyone in radio range can send a device's clear header with
its next nonce and random bytes after it, cut to any length. Such a frame must never become the
device's state (no good reading, no code) and must not make the genuine frame with its nonce
look replayed; a genuine change still becomes the state, one frame later."""

from __future__ import annotations

import random

import pytest

from victron_ble_bms.protocol import COMPANY_ID, encode
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import (
    NEVER_CONFIRMED,
    PENDING_SUSPECT_S,
    DevicesState,
    Outcome,
)

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
    forged_good = dropped = pending = noted = 0
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
        pending += u.outcome is Outcome.PENDING
        g = update(Advertisement(t, ADDRESS, {COMPANY_ID: _genuine(nonce)}))
        if g.outcome is not Outcome.NEW:
            dropped += 1
        elif g.reading is not None and g.reading.note:
            # a forged change never confirmed, said after the bound with this good frame
            assert NEVER_CONFIRMED in g.reading.note and g.suspicion == g.reading.note
            assert not g.reading.suspect  # its values are the device's all the same
            noted += 1
        if not dropped:
            assert g.reading is not None and g.reading.record == battery(nonce)
        assert dev.last_decoded is not None and dev.last_decoded.record == battery(nonce)
        assert dev.last_decoded.record.codes == ()
    assert (forged_good, dropped) == (0, 0)
    # each forged change that decoded to a complete, plausible frame was pending (quiet), and
    # is said once, PENDING_SUSPECT_S later, when the genuine frames never confirmed it
    assert noted == pending
    assert (pending > 0) == (length == 24)


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
    assert outcomes == [Outcome.NEW] * 5 + [Outcome.PENDING, Outcome.NEW, Outcome.NEW]
    assert dev.nonce == 507


def _frames(records: list[object], first: int = 700) -> list[Advertisement]:
    return [
        Advertisement(
            T0 + i,
            ADDRESS,
            {COMPANY_ID: encode(r, key=KEY, nonce=first + i, model_id=SMART_LITHIUM_12V)},  # type: ignore[arg-type]
        )
        for i, r in enumerate(records)
    ]


def test_a_change_never_confirmed_is_quiet_for_values_and_said_for_codes() -> None:
    """Past PENDING_SUSPECT_S: a measured value that jumped for one frame and came back (ADC
    noise; a time-to-go swinging at near-zero current) is the device's own and never shown as
    suspect; a code that came for one frame and never again (what random ciphertext gives) is
    said once, with the device's next frame."""
    from dataclasses import replace

    from victron_ble_bms.protocol.enums import SmartLithiumErrorFlags

    quiet = battery(0)
    jump = replace(quiet, battery_temperature_c=quiet.battery_temperature_c + 8)
    alarm = replace(quiet, error_flags=SmartLithiumErrorFlags(1))
    after = int(PENDING_SUSPECT_S) + 3
    for odd, said in ((jump, False), (alarm, True)):
        table = DevicesState({ADDRESS: KEY})
        outcomes = [table.update(adv) for adv in _frames([quiet] * 3 + [odd] + [quiet] * after)]
        assert outcomes[3].outcome is Outcome.PENDING and outcomes[3].reading is not None
        assert outcomes[3].reading.pending and outcomes[3].reading.suspect
        # every later frame is the genuine device's: its state, at most with a note
        assert all(u.outcome is Outcome.NEW and u.reading is not None for u in outcomes[4:])
        notes = [u for u in outcomes[4:] if u.reading is not None and u.reading.note]
        if not said:
            assert notes == []
            continue
        assert len(notes) == 1 and NEVER_CONFIRMED in (notes[0].suspicion or "")
        at = outcomes.index(notes[0])
        assert at == 3 + int(PENDING_SUSPECT_S) + 1  # the first frame past the bound
        dev = table.get(ADDRESS)
        assert dev is not None and dev.last_decoded is not None
        assert dev.last_decoded.record == quiet  # the genuine frame is the state all along
