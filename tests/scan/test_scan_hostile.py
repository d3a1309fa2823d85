"""`scan` against frames anyone nearby can send (issue 9 items 1 and 5): short frames, replayed
and forged frames, through a real dbus-daemon, the virtual BlueZ and unmodified bleak."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.protocol import COMPANY_ID, encode
from victron_ble_bms.protocol.enums import SmartLithiumErrorFlags
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import NEVER_CONFIRMED, PENDING_SUSPECT_S, UNCONFIRMED_CHANGE
from victron_ble_bms.sources.keys import KeyStore

from .conftest import run
from .fleet import KEY_KEYED, KEYED, SMART_LITHIUM_12V, battery
from .scripted import GAP_S, cut, forged, genuine, scripted_scan


def _keys(tmp_path: Path) -> str:
    store = KeyStore()
    store.add(KEYED, KEY_KEYED, name="House")
    return str(store.save(tmp_path / "keys.toml"))


def test_scan_json_flags_replayed_and_forged_frames_in_the_reading(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    def script(g: int) -> list:  # type: ignore[type-arg]
        return [
            genuine(g + 1),
            genuine(g + 2),
            genuine(g - 100),  # a replay of a frame recorded long ago (> 60 nonces back)
            genuine(g + 3),
            forged(g + 30_000, 1),  # random ciphertext at a random nonce
            genuine(g + 4),
            forged(g + 7, 2),  # a forged frame slightly ahead of the device
            genuine(g + 5),
            genuine(g + 6),
            genuine(g + 7),
            genuine(g + 8),
            genuine(g + 2),  # an exact replay of a frame already received
            genuine(g + 9),
        ]

    session = run(
        scripted_scan(private_bus, ["scan", "--json", "--keys", _keys(tmp_path)], script),
        timeout=60,
    )
    assert session.returncode == 0, session.stderr
    assert "Traceback" not in session.stderr
    first = min(o["nonce"] for o in session.objects if 1000 <= o["nonce"] < 2000)
    g = max(o["nonce"] for o in session.objects if o["nonce"] < first + 30) - 9
    # Every genuine frame is shown once, unflagged, with the values the device sent.
    for n in range(g + 1, g + 10):
        volts = round(battery(n).battery_voltage_v or 0, 2)
        sent = [o for o in session.by_nonce(n) if o.get("battery_voltage_v") == volts]
        assert len(sent) == (2 if n == g + 2 else 1), (n, session.by_nonce(n))
        assert "suspect" not in sent[0], sent[0]
        if n == g + 7:
            sent_7 = sent[0]
    # The old replay, the random frame and the repeated frame carry the reason in the reading.
    for n in (g - 100, g + 30_000):
        (obj,) = session.by_nonce(n)
        assert obj["suspect"] and obj["key_status"] == "ok", obj
    # Random ciphertext slightly ahead decodes to values no battery can hold (protocol:
    # Record.implausible): flagged too, and it did not discredit the genuine frame 7.
    (fake,) = [o for o in session.by_nonce(g + 7) if o is not sent_7]
    assert "implausible" in fake["suspect"], fake
    again = session.by_nonce(g + 2)
    assert len(again) == 2 and "already received" in again[1]["suspect"]


def test_scan_goes_on_after_a_short_frame(private_bus: PrivateBus, tmp_path: Path) -> None:
    """A frame with 1 data byte and the right key-check byte (anyone can send it) used to
    end the output for the whole session, exit 0."""

    def script(g: int) -> list:  # type: ignore[type-arg]
        return [cut(genuine(g + 1), 9), genuine(g + 2), genuine(g + 3), genuine(g + 4)]

    for argv in (["scan", "--json"], ["scan"]):
        session = run(
            scripted_scan(private_bus, [*argv, "--keys", _keys(tmp_path)], script), timeout=60
        )
        assert session.returncode == 0, session.stderr
        assert "Traceback" not in session.stderr
        g = session.start
        if "--json" in argv:
            for n in (g + 2, g + 3, g + 4):  # the frames after the short one are all shown
                assert [o["key_status"] for o in session.by_nonce(n)] == ["ok"], session.lines
        else:
            tail = session.lines[-3:]
            for n, line in zip((g + 2, g + 3, g + 4), tail, strict=True):
                assert KEYED in line and f"{battery(n).battery_voltage_v:.2f} V" in line, tail


def _alarm(nonce: int) -> Advertisement:
    """The device's frame at `nonce` with a new error flag: a change of codes, as a genuine
    alarm's first frame (or a forger's lucky frame) looks."""
    record = replace(battery(nonce), error_flags=SmartLithiumErrorFlags(1))
    data = encode(record, key=KEY_KEYED, nonce=nonce & 0xFFFF, model_id=SMART_LITHIUM_12V)
    return Advertisement(0.0, KEYED, {COMPANY_ID: data})


def test_scan_json_tells_a_pending_change_from_a_forged_one(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    """A change's first frame is marked `"pending": true` beside its reason (a reader can tell
    it from a replay or a forgery); a change of codes never confirmed is said, past
    PENDING_SUSPECT_S, on the device's next good frame — in JSON lines too, as on every other
    output; a change confirmed by the next frame leaves no mark on any genuine frame."""
    after = int(PENDING_SUSPECT_S / GAP_S) + 15  # genuine frames for well past the bound

    def script(g: int) -> list[Advertisement]:
        return [
            genuine(g + 1),
            _alarm(g + 2),  # a change of codes, never repeated
            *[genuine(g + n) for n in range(3, 3 + after)],
        ]

    session = run(
        scripted_scan(private_bus, ["scan", "--json", "--keys", _keys(tmp_path)], script),
        timeout=90,
    )
    assert session.returncode == 0, session.stderr
    g = session.start
    (lone,) = session.by_nonce(g + 2)
    assert lone["pending"] is True and UNCONFIRMED_CHANGE in lone["suspect"], lone
    genuine_lines = [o for n in range(3, 3 + after) for o in session.by_nonce(g + n)]
    assert len(genuine_lines) == after
    assert not any("pending" in o for o in genuine_lines)
    noted = [o for o in genuine_lines if "suspect" in o]
    assert len(noted) == 1 and NEVER_CONFIRMED in noted[0]["suspect"], noted
    assert noted[0]["codes"] == []  # the good frame's own values, not the alarm's
    assert noted[0]["ts"] - lone["ts"] >= PENDING_SUSPECT_S

    # The same alarm sent twice, under fresh nonces, is the device's: confirmed, never flagged.
    def confirmed(g: int) -> list[Advertisement]:
        return [genuine(g + 1), _alarm(g + 2), _alarm(g + 3), _alarm(g + 4)]

    session = run(
        scripted_scan(private_bus, ["scan", "--json", "--keys", _keys(tmp_path)], confirmed),
        timeout=60,
    )
    g = session.start
    (first,) = session.by_nonce(g + 2)
    assert first["pending"] is True
    for n in (3, 4):
        (line,) = session.by_nonce(g + n)
        assert "suspect" not in line and "pending" not in line, line
        assert [c["id"] for c in line["codes"]], line  # the alarm, now the device's state
