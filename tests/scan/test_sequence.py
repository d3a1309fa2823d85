"""Replay and forgery against the device table (issue 9 item 5): frames are judged against the
device's established nonce sequence (docs/protocol.md §1.1, §8.1), a suspect reading says why in the
reading itself and never replaces the last good values."""

from __future__ import annotations

import random

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import DevicesState, Outcome

from .fleet import KEY_KEYED, KEYED, advertisement

T0 = 1_700_000_000.0
KEYS = {KEYED: KEY_KEYED}


def _forged(nonce: int, seed: int, ts: float) -> Advertisement:
    """Random ciphertext behind a copied header with the right key-check byte — what anyone
    nearby can send (the header is in clear, docs/protocol.md §1.1)."""
    header = bytearray(advertisement(KEYED, KEY_KEYED, nonce).manufacturer_data[COMPANY_ID][:8])
    body = random.Random(seed).randbytes(16)
    return Advertisement(ts, KEYED, {COMPANY_ID: bytes(header) + body})


def _genuine(table: DevicesState, first: int, last: int, t: float) -> list[Outcome]:
    outcomes = []
    for n in range(first, last + 1):
        outcomes.append(table.update(advertisement(KEYED, KEY_KEYED, n, t + n)).outcome)
    return outcomes


def _good_nonce(table: DevicesState) -> int | None:
    dev = table.get(KEYED)
    assert dev is not None
    good = dev.last_decoded
    return None if good is None or good.frame is None else good.frame.nonce


def test_replay_more_than_60_nonces_old_is_suspect_and_not_shown_as_current() -> None:
    table = DevicesState(KEYS)
    old = advertisement(KEYED, KEY_KEYED, 20, T0)  # recorded by an attacker long ago
    assert _genuine(table, 200, 210, T0) == [Outcome.NEW] * 11
    replay = table.update(Advertisement(T0 + 211.5, KEYED, old.manufacturer_data))
    assert replay.outcome is Outcome.SUSPECT
    assert replay.reading is not None and replay.reading.suspect is not None
    assert "back from 210 to 20" in replay.reading.suspect
    assert _good_nonce(table) == 210  # the replayed values do not replace the last good ones
    # The genuine device goes on undisturbed.
    assert _genuine(table, 211, 213, T0) == [Outcome.NEW] * 3
    assert _good_nonce(table) == 213


def test_replay_of_an_accepted_frame_is_suspect() -> None:
    table = DevicesState(KEYS)
    _genuine(table, 100, 110, T0)
    again = advertisement(KEYED, KEY_KEYED, 104, T0 + 111)
    update = table.update(again)
    assert update.outcome is Outcome.SUSPECT
    assert "already received" in (update.suspicion or "")
    assert _good_nonce(table) == 110


def test_random_ciphertext_at_a_random_nonce_is_suspect() -> None:
    table = DevicesState(KEYS)
    _genuine(table, 100, 105, T0)
    rng = random.Random(7)
    for i in range(50):
        nonce = (105 + rng.randrange(200, 65_000)) % 65_536
        update = table.update(_forged(nonce, i, T0 + 106 + i * 0.01))
        assert update.outcome is Outcome.SUSPECT, nonce
    assert _good_nonce(table) == 105
    assert _genuine(table, 106, 108, T0 + 1) == [Outcome.NEW] * 3


def test_forged_frame_slightly_ahead_does_not_discredit_the_genuine_frames() -> None:
    table = DevicesState(KEYS)
    _genuine(table, 100, 105, T0)
    table.update(_forged(108, 1, T0 + 105.5))
    # The genuine device's next frames, 108 included (same nonce, its own data), are all fine.
    assert _genuine(table, 106, 110, T0) == [Outcome.NEW] * 5
    dev = table.get(KEYED)
    assert dev is not None and dev.nonce == 110
    assert _good_nonce(table) == 110


def test_one_forged_jump_cannot_move_the_sequence_while_the_device_is_alive() -> None:
    """Frames replayed from an old session, interleaved with the live device, stay suspect."""
    table = DevicesState(KEYS)
    _genuine(table, 300, 305, T0)
    t = T0 + 306
    for k in range(6):
        replay = table.update(advertisement(KEYED, KEY_KEYED, 40 + k, t + k))
        assert replay.outcome is Outcome.SUSPECT
        genuine = table.update(advertisement(KEYED, KEY_KEYED, 306 + k, t + k + 0.5))
        assert genuine.outcome is Outcome.NEW
    assert _good_nonce(table) == 311


def test_a_restarted_device_is_accepted_once_following_frames_confirm_it() -> None:
    table = DevicesState(KEYS)
    _genuine(table, 500, 505, T0)
    t = T0 + 520  # rebooted: silent for a while, then counts from 0 again
    outcomes = [
        table.update(advertisement(KEYED, KEY_KEYED, n, t + n)).outcome for n in range(0, 5)
    ]
    assert outcomes == [Outcome.SUSPECT, Outcome.SUSPECT, Outcome.NEW, Outcome.NEW, Outcome.NEW]
    assert _good_nonce(table) == 4


def test_suspect_reading_never_replaces_last_good_values() -> None:
    table = DevicesState(KEYS)
    _genuine(table, 10, 12, T0)
    dev = table.get(KEYED)
    assert dev is not None
    good = dev.last_decoded
    table.update(advertisement(KEYED, KEY_KEYED, 5, T0 + 13))  # back 7: replay
    assert dev.last_decoded is good
    assert dev.last_reading is not None and dev.last_reading.suspect is not None
    assert dev.suspicious == 1


def test_implausible_values_are_suspect_and_do_not_move_the_sequence() -> None:
    """Random ciphertext at the next nonce passes the one-byte key check 1 time in 256 with
    any header; its values are impossible (pack voltage far from its cells)."""
    table = DevicesState(KEYS)
    _genuine(table, 100, 105, T0)
    update = table.update(_forged(106, 2, T0 + 105.5))
    assert update.outcome is Outcome.SUSPECT
    assert update.reading is not None and update.reading.record is not None
    assert "implausible" in (update.suspicion or "") and "wrong key" in (update.suspicion or "")
    assert _good_nonce(table) == 105
    assert _genuine(table, 106, 107, T0) == [Outcome.NEW] * 2


def test_default_table_keeps_replay_tracking_for_a_busy_marina() -> None:
    """10,000 devices (issue 12): the default bound keeps every one's sequence, so a replay
    of the first device's frame is still recognised after all the others were heard."""
    from .fleet import KEY_NOKEY

    table = DevicesState({})  # no keys: the nonce sequence works from the clear header
    frames = [advertisement(KEYED, KEY_NOKEY, n, T0).manufacturer_data for n in (100, 101)]
    addresses = [
        ":".join(f"{b:02X}" for b in (0xC0, 0, *i.to_bytes(4, "big"))) for i in range(10_000)
    ]
    for step, payload in enumerate(frames):
        for i, address in enumerate(addresses):
            table.update(Advertisement(T0 + step + i * 1e-5, address, payload))
    assert len(table) == 10_000 and table.evicted == 0
    replay = table.update(Advertisement(T0 + 3, addresses[0], frames[0]))
    assert replay.outcome is Outcome.SUSPECT and "already received" in (replay.suspicion or "")


def test_fast_path_leaves_the_table_as_the_general_path_does() -> None:
    """`update` takes a shortcut for the next good frame of a known device; every frame of a
    mixed stream (in sequence, repeats, replays, forgeries, jumps, RSSI and name changes)
    must leave the same update and device state as the general path alone (`_update`)."""
    rng = random.Random(12)
    stream: list[Advertisement] = []
    nonce, t = 300, T0
    for i in range(400):
        t += rng.uniform(0.2, 2.0)
        kind = rng.random()
        if kind < 0.6:
            nonce += rng.choice((1, 1, 1, 2, 5, 64, 65))
            adv = advertisement(KEYED, KEY_KEYED, nonce & 0xFFFF, t)
        elif kind < 0.7 and stream:
            adv = stream[-1]  # bleak re-reports the same frame
        elif kind < 0.8:
            adv = advertisement(KEYED, KEY_KEYED, (nonce - rng.randrange(1, 80)) & 0xFFFF, t)
        elif kind < 0.9:
            adv = _forged((nonce + 1) & 0xFFFF, i, t)
        else:
            adv = advertisement(KEYED, KEY_KEYED, (nonce + rng.randrange(70, 3000)) & 0xFFFF, t)
        stream.append(
            Advertisement(
                adv.ts, KEYED, adv.manufacturer_data, rssi=-60 - i % 7, name=f"bank {i % 3}"
            )
        )
    fast, general = DevicesState(KEYS), DevicesState(KEYS)
    for adv in stream:
        data = adv.manufacturer_data[COMPANY_ID]
        got, want = fast.update(adv), general._update(adv, data)
        assert (got.outcome, got.reading, got.status_changed, got.suspicion) == (
            want.outcome,
            want.reading,
            want.status_changed,
            want.suspicion,
        )
        assert fast.get(KEYED) == general.get(KEYED)
    dev = fast.get(KEYED)
    assert dev is not None and dev.readings > 100 and dev.suspicious > 10 and dev.repeats > 10


def test_fast_paths_leave_a_crowded_table_as_the_general_path_does() -> None:
    """More devices than the table holds (each evicted device's next frame is a first frame
    again), with and without keys, wrong keys, repeats, replays, forgeries and jumps: every
    frame must leave the same update, devices and eviction count as the general path alone."""
    rng = random.Random(7)
    addresses = [f"C0:22:00:00:00:{i:02X}" for i in range(12)]
    device_keys = {a: f"{i:02x}" * 16 for i, a in enumerate(addresses)}
    keys = {a: device_keys[a] for a in addresses[:8]}
    keys[addresses[6]] = keys[addresses[7]] = "ee" * 16  # stored keys the devices don't use
    nonces = {a: 1000 + 50 * i for i, a in enumerate(addresses)}
    last: dict[str, Advertisement] = {}
    stream: list[Advertisement] = []
    t = T0
    for i in range(1500):
        t += rng.uniform(0.01, 0.5)
        address = rng.choice(addresses)
        key = device_keys[address]
        kind = rng.random()
        if kind < 0.6 or address not in last:
            nonces[address] += rng.choice((1, 1, 1, 2, 64, 65))
            adv = advertisement(address, key, nonces[address] & 0xFFFF, t)
        elif kind < 0.7:
            adv = last[address]  # bleak re-reports the same frame
        elif kind < 0.8:
            adv = advertisement(address, key, (nonces[address] - rng.randrange(1, 80)) & 0xFFFF, t)
        elif kind < 0.9:
            header = advertisement(address, key, (nonces[address] + 1) & 0xFFFF)
            data = header.manufacturer_data[COMPANY_ID][:8] + random.Random(i).randbytes(16)
            adv = Advertisement(t, address, {COMPANY_ID: data})
        else:
            adv = advertisement(
                address, key, (nonces[address] + rng.randrange(70, 3000)) & 0xFFFF, t
            )
        adv = Advertisement(adv.ts, address, adv.manufacturer_data, rssi=-60 - i % 9, name=None)
        last[address] = adv
        stream.append(adv)
    fast, general = DevicesState(keys, max_devices=5), DevicesState(keys, max_devices=5)
    for adv in stream:
        got = fast.update(adv)
        want = general._update(adv, adv.manufacturer_data[COMPANY_ID])
        assert (got.outcome, got.reading, got.status_changed, got.suspicion) == (
            want.outcome,
            want.reading,
            want.status_changed,
            want.suspicion,
        )
        assert list(fast) == list(general) and fast.evicted == general.evicted
    outcomes = {u.outcome for u in map(DevicesState(keys, max_devices=5).update, stream)}
    assert outcomes == set(Outcome) - {Outcome.IGNORED}
    assert fast.evicted > 300
