"""The pure mapping and the publisher's rules, against known answers from outside the project
(tests/protocol/vectors.py: real captures with their published decodings) and the Signal K
specification's own constraints (battery id pattern, notification states)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.protocol import vectors as v
from victron_ble_bms.hub import Board
from victron_ble_bms.protocol import decode, decode_plaintext, encode
from victron_ble_bms.protocol.codes import SMART_BMS_CODES, SMART_LITHIUM_CODES
from victron_ble_bms.signalk import mapping as m
from victron_ble_bms.signalk.config import ConfigError, SignalKConfig, parse_server_url, resolve
from victron_ble_bms.signalk.leftover import raised_by_us
from victron_ble_bms.signalk.publisher import Publisher
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.readings import KeyStatus, Reading

BATTERY_ID = re.compile(r"^[A-Za-z0-9]+$")  # SignalK specification, groups/electrical.json
STATES = {"nominal", "normal", "alert", "warn", "alarm", "emergency"}  # definitions.json


def test_smartshunt_capture_in_si_units() -> None:
    # keshavdv/victron-ble's SmartShunt capture: 12.53 V, 0 A, 50 % SoC, 50 Ah consumed, no TTG.
    got = dict(m.values(decode(v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY)))
    assert got["voltage"] == 12.53 and got["current"] == 0.0
    assert got["capacity.stateOfCharge"] == 0.5
    assert got["capacity.dischargeSinceFull"] == 50 * 3600.0  # coulombs
    assert got["capacity.timeRemaining"] is None  # not available: null, never 0


def test_lynx_capture_in_si_units() -> None:
    # The Lynx Smart BMS capture: 26.99 V, −0.6 A, 99.5 %, 4.4 Ah consumed, TTG 14400 min,
    # no temperature; IO: allowed to charge and to discharge.
    got = dict(m.values(decode_plaintext(0x0A, v.LYNX_1)))
    assert got["voltage"] == 26.99 and got["current"] == -0.6
    assert got["capacity.stateOfCharge"] == 0.995
    assert got["capacity.timeRemaining"] == 14400 * 60
    assert got["capacity.dischargeSinceFull"] == pytest.approx(4.4 * 3600)
    assert got["temperature"] is None
    assert got["bms.allowedToCharge"] is True and got["bms.allowedToDischarge"] is True


def test_smart_lithium_capture_cells_and_kelvin() -> None:
    # 13.24 V, 13 °C, four cells of 3.31 V, balancer 3 (imbalance), flags ATC + ATD.
    got = dict(m.values(decode_plaintext(0x05, v.SMART_LITHIUM_1)))
    assert got["voltage"] == 13.24 and got["temperature"] == pytest.approx(286.15)
    cells = {k: val for k, val in got.items() if k.endswith(".voltage")}
    assert cells == {f"cellVoltages.{n}.voltage": 3.31 for n in (1, 2, 3, 4)}
    assert "cellVoltages.5.voltage" not in got  # a 12.8 V battery has four cells
    assert got["bms.balancerStatus"] == "imbalance"
    assert got["bms.allowedToCharge"] is True and got["bms.allowedToDischarge"] is True


def test_meta_units_are_si_and_zones_only_where_fixed() -> None:
    rels = ["voltage", "current", "temperature", "capacity.stateOfCharge",
            "capacity.timeRemaining", "capacity.dischargeSinceFull",
            "cellVoltages.1.voltage"]  # fmt: skip
    lbs = dict(m.meta(rels, "House", 0x05))
    units = {rel: meta.get("units") for rel, meta in lbs.items()}
    assert units == {
        "voltage": "V", "current": "A", "temperature": "K", "capacity.stateOfCharge": "ratio",
        "capacity.timeRemaining": "s", "capacity.dischargeSinceFull": "C",
        "cellVoltages.1.voltage": "V",
    }  # fmt: skip
    for zone in lbs["cellVoltages.1.voltage"]["zones"] + lbs["temperature"]["zones"]:
        assert zone["state"] in STATES and "manual §" in zone["message"]
    # The manual's A-SL9 threshold (§5.3: cell > 3.95 V) starts an alarm zone.
    assert any(
        z.get("lower") == 3.95 and z["state"] == "alarm"
        for z in lbs["cellVoltages.1.voltage"]["zones"]
    )  # noqa: E501
    lynx = dict(m.meta(rels, "Lynx", 0x0A))
    assert all("zones" not in meta for meta in lynx.values())  # its thresholds are settings


@pytest.mark.parametrize(
    "names",
    [
        {"AA:BB:CC:DD:EE:01": "House bank", "AA:BB:CC:DD:EE:02": "house-bank"},
        {"AA:BB:CC:DD:EE:01": "\x1b[2J☠", "AA:BB:CC:DD:EE:02": None},
        {"AA:BB:CC:DD:EE:01": "Größe Bänk " * 20, "AA:BB:CC:DD:EE:02": "AABBCCDDEE02"},
        {"AA:BB:CC:DD:EE:01": "../../etc", "AA:BB:CC:DD:EE:02": "a.b.c"},
    ],
)
def test_battery_ids_are_valid_distinct_and_stable(names: dict[str, Any]) -> None:
    ids = m.battery_ids(names)
    assert all(BATTERY_ID.match(i) and len(i) <= m.MAX_ID for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids)
    assert m.battery_ids(dict(reversed(list(names.items())))) == ids


def test_readable_ids() -> None:
    ids = m.battery_ids({"AA:BB:CC:DD:EE:01": "House bank", "AA:BB:CC:DD:EE:02": None})
    assert ids == {"AA:BB:CC:DD:EE:01": "houseBank", "AA:BB:CC:DD:EE:02": "AABBCCDDEE02"}


def test_notification_states_follow_the_manuals() -> None:
    # Lithium Battery Smart manual §5.3 table: W-SL12 warning, A-SL11 alarm, E-SL24 error.
    assert m.state_of(SMART_LITHIUM_CODES["W-SL12"]) == "warn"
    assert m.state_of(SMART_LITHIUM_CODES["A-SL11"]) == "alarm"
    assert m.state_of(SMART_LITHIUM_CODES["E-SL24"]) == "alarm"
    # A detached BMS cable: the BMS turns every load and charger off (LBS manual §4.5).
    assert m.state_of(SMART_BMS_CODES["E-B32"]) == "emergency"
    alarm = m.notification(SMART_LITHIUM_CODES["A-SL11"], "House")
    assert alarm["method"] == ["visual", "sound"] and alarm["state"] in STATES
    assert SMART_LITHIUM_CODES["A-SL11"].remedy in alarm["message"]


# --- the publisher's rules ------------------------------------------------------------------

KEY = bytes(range(16))
ADDRESS = "C0:FF:EE:00:00:09"


def _lbs_frame(flags: int, nonce: int) -> bytes:
    from victron_ble_bms.protocol import SmartLithiumRecord
    from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags

    record = SmartLithiumRecord(
        bms_flags=BmsFlags(flags),
        error_flags=SmartLithiumErrorFlags(0),
        cell_voltages_v=(3.05, 3.09, 3.08, 3.08, None, None, None, None),
        battery_voltage_v=12.3,
        balancer_status=BalancerStatus.BALANCED,
        battery_temperature_c=20,
    )
    return encode(record, key=KEY, nonce=nonce, model_id=0xA0ED)


def _reading(data: bytes, ts: float, key: bytes = KEY) -> Reading:
    adv = Advertisement(ts, ADDRESS, {0x02E1: data})
    try:
        return Reading(adv, KeyStatus.OK, record=decode(data, key))
    except Exception as exc:  # noqa: BLE001
        return Reading(adv, KeyStatus.MISMATCH, error=str(exc))


def _notes(out: list[Any]) -> dict[str, str]:
    return {
        item["path"]: item["value"]["state"]
        for _key, msg in out
        for update in msg["updates"]
        for item in update.get("values", [])
        if item["path"].startswith("notifications.")
    }


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_unknown_codes_never_clear_and_silence_is_not_an_all_clear() -> None:
    clock = Clock()
    board = Board({ADDRESS: KEY}, clock=clock, stale_after_s=60)
    pub = Publisher(board, wall_clock=clock)
    path = f"notifications.electrical.batteries.{m.address_id(ADDRESS)}.W-SL12"
    ok, w_sl12 = (1 << 25) | (1 << 26), (1 << 25) | (1 << 26) | (1 << 12)

    board.reading(_reading(_lbs_frame(w_sl12, 1), 1.0))
    assert _notes(pub.reading(board.get(ADDRESS).latest)) == {path: "warn"}
    # A partial frame (codes not received) and a frame under a wrong key: nothing cleared.
    board.reading(_reading(_lbs_frame(ok, 2)[:12], 2.0))
    assert _notes(pub.reading(board.get(ADDRESS).latest)) == {}
    board.reading(_reading(_lbs_frame(ok, 3), 3.0, key=bytes(16)))
    assert _notes(pub.reading(board.get(ADDRESS).latest)) == {}
    # Silent past stale_after_s: values null, a noData warning, the code left as it was.
    clock.now += 61
    out = pub.tick()
    assert _notes(out) == {path.replace("W-SL12", "noData"): "warn"}
    nulls = [i for _k, msg in out for u in msg["updates"] for i in u.get("values", [])]
    assert any(i["path"].endswith(".voltage") and i["value"] is None for i in nulls)
    assert not any(i["path"].endswith(".name") for i in nulls)
    # A new connection raises the warning again (unknown since, never cleared).
    assert _notes(pub.connected())[path] == "warn"
    # Heard again, complete, without the code: now it clears, and so does noData.
    board.reading(_reading(_lbs_frame(ok, 4), 4.0))
    notes = _notes(pub.reading(board.get(ADDRESS).latest))
    assert notes == {path: "normal", path.replace("W-SL12", "noData"): "normal"}


def test_notifications_never_share_a_message_with_values() -> None:
    board = Board({ADDRESS: KEY})
    pub = Publisher(board)
    board.reading(_reading(_lbs_frame((1 << 12) | (1 << 25), 1), 1.0))
    for _key, msg in pub.reading(board.get(ADDRESS).latest) + pub.connected():
        for update in msg["updates"]:
            paths = [i["path"] for i in update.get("values", [])]
            notes = [p for p in paths if p.startswith("notifications.")]
            assert not notes or len(notes) == len(paths) == 1


def test_a_neighbours_device_is_not_published() -> None:
    board = Board({})
    pub = Publisher(board)
    board.reading(_reading(_lbs_frame(1 << 25, 1), 1.0))
    assert pub.reading(board.get(ADDRESS).latest) == [] and pub.connected() == []


# --- config ---------------------------------------------------------------------------------


def test_urls() -> None:
    server = parse_server_url("ws://127.0.0.1:3000/signalk/v1/stream")
    assert server.stream_url == "ws://127.0.0.1:3000/signalk/v1/stream?subscribe=none"
    assert server.http_base == "http://127.0.0.1:3000"
    assert parse_server_url("wss://boat.local").http_base == "https://boat.local:443"
    for bad in ("http://x:3000", "ws://user:secret@x:3000", "ws://x:3000/other", "ws://:1"):
        with pytest.raises(ConfigError) as exc:
            parse_server_url(bad)
        assert "secret" not in str(exc.value)


def test_token_from_the_environment_is_never_shown() -> None:
    secret = "tok-123"  # noqa: S105 - a test value that must not be shown
    cfg = resolve(SignalKConfig(), url="ws://h:1", env={"VICTRON_BMS_SIGNALK_TOKEN": secret})
    assert cfg.token == secret and secret not in repr(cfg)


def test_a_device_that_loses_its_key_or_is_renamed_leaves_nulls_under_its_old_id() -> None:
    keys = {ADDRESS: KEY}
    names = {ADDRESS: "House bank"}
    board = Board(keys, names=names.get)
    pub = Publisher(board)
    board.reading(_reading(_lbs_frame((1 << 25) | (1 << 26), 1), 1.0))
    first = pub.reading(board.get(ADDRESS).latest)
    sent = {i["path"] for _k, msg in first for u in msg["updates"] for i in u.get("values", [])}
    assert "electrical.batteries.houseBank.voltage" in sent
    names[ADDRESS] = "Starter"
    out = pub.keys_changed()
    nulled = {i["path"] for _k, msg in out for u in msg["updates"] for i in u.get("values", [])}
    assert "electrical.batteries.houseBank.voltage" in nulled
    assert pub.ids[ADDRESS] == "starter"
    del keys[ADDRESS]
    board.keys_changed()
    out = pub.keys_changed()
    nulled = {i["path"] for _k, msg in out for u in msg["updates"] for i in u.get("values", [])}
    assert "electrical.batteries.starter.voltage" in nulled


def test_the_access_file_is_a_secret(tmp_path: Path) -> None:
    import os
    import stat

    from victron_ble_bms.signalk.access import AccessStore

    os.umask(0o022)
    store = AccessStore(tmp_path / "new" / "signalk-access.json")
    client = store.client_id()
    assert store.client_id() == client  # kept
    store.update("http://h:1", token="secret-token", href="/signalk/v1/requests/x")  # noqa: S106
    assert store.token("http://h:1") == "secret-token"
    assert store.pending("http://h:1") == "/signalk/v1/requests/x"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    store.path.write_text("{not json")  # broken: ask again, never a crash
    assert store.token("http://h:1") is None


def test_only_our_raised_codes_on_our_batteries_are_taken_from_the_server() -> None:
    """The subtree the link reads on connecting comes from the network: another source's
    notification, a `normal` one, a name that is no code of ours, a battery that is not ours
    and malformed nodes are all left alone."""
    warn = {"state": "warn", "method": ["visual"], "message": "House: W-SL12"}
    tree = {
        "House": {
            "W-SL12": {"value": warn, "$source": "victron-ble-bms", "timestamp": "x"},
            "A-SL11": {"value": {"state": "normal"}, "$source": "victron-ble-bms"},
            "W-SL9": {"value": warn, "$source": "someone-else"},
            "E-B32": {"value": warn, "$source": "victron-ble-bms-impostor"},
            "rm -rf": {"value": warn, "$source": "victron-ble-bms"},
            "noData": {"value": {"state": "warn"}, "$source": "victron-ble-bms"},
            "A-SL9": "not a node",
        },
        "Neighbour": {"W-SL12": {"value": warn, "$source": "victron-ble-bms"}},
        "Broken": ["x"],
    }
    found = raised_by_us(tree, {"House", "Broken"})
    assert found == {"House": {"W-SL12": warn, "noData": {"state": "warn"}}}
    assert raised_by_us(["not", "a", "tree"], {"House"}) == {}
    assert raised_by_us(None, {"House"}) == {}
