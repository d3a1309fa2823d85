"""`victron-bms serve --signalk` as a user runs it (a subprocess) against a real signalk-server,
read back through the server's own REST API: values in SI units with their meta, cells,
notifications raised and cleared; a replayed capture (names from the keys file, a partial
frame, a wrong key); security on with a device access request, a kept token and a token from
the environment — never printed."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.serve_process import Serve, clean
from tests.signalk.server import SignalKServer, values, wait_for
from victron_ble_bms.emulator.engine import DEMO_IDENTITIES
from victron_ble_bms.protocol import SmartLithiumRecord, encode
from victron_ble_bms.protocol.codes import lookup
from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyStore

# The battery id pattern of the Signal K specification (schemas/groups/electrical.json).
BATTERY_ID = re.compile(r"^[A-Za-z0-9]+$")
ENV_TOKEN = "VICTRON_BMS_SIGNALK_TOKEN"  # noqa: S105 - a variable's name


def battery(server: SignalKServer, battery_id: str) -> Any:
    return server.get(f"electrical.batteries.{battery_id}")


def notification(server: SignalKServer, battery_id: str, code: str) -> dict[str, Any] | None:
    node = server.get(f"notifications.electrical.batteries.{battery_id}.{code}")
    return node["value"] if isinstance(node, dict) else None


def test_emulator_fleet_and_a_warning_that_clears(
    signalk_server: SignalKServer, tmp_path: Path, serves: list[Serve]
) -> None:
    url = signalk_server.stream_url
    # A 12.8 V battery running flat at 240× (deep-discharge: W-SL12 at ~90 s, A-SL11 at ~500 s,
    # both gone after the charger at ~1120 s simulated: ~0.4, ~2 and ~4.7 s here) …
    flat = Serve(
        tmp_path,
        "--source", "emulator", "--device", "lithium-12.8v-50ah:AA:BB:CC:00:00:01",
        "--scenario", "deep-discharge", "--speed", "240", "--signalk", url, "--duration", "9",
    )  # fmt: skip
    # … beside the demo fleet, as the README's command runs it.
    fleet = Serve(tmp_path, "--source", "emulator", "--signalk", url, "--duration", "8")
    serves += [flat, fleet]

    seen: dict[str, list[tuple[str, list[str], str]]] = {"W-SL12": [], "A-SL11": []}

    def flat_cleared() -> bool:
        for code, history in seen.items():
            value = notification(signalk_server, "AABBCC000001", code)
            if value and (not history or history[-1][0] != value["state"]):
                history.append((value["state"], value["method"], value["message"]))
        return all(h and h[-1][0] == "normal" for h in seen.values())

    wait_for(flat_cleared, 40, "W-SL12 and A-SL11 raised, then cleared")
    warn = next(h for h in seen["W-SL12"] if h[0] == "warn")
    remedy = lookup("W-SL12")
    assert remedy is not None and remedy.remedy in warn[2] and remedy.title in warn[2]
    assert warn[1] == ["visual"]
    alarm = next(h for h in seen["A-SL11"] if h[0] == "alarm")
    assert alarm[1] == ["visual", "sound"]

    assert fleet.wait() == 0 and flat.wait() == 0
    batteries = signalk_server.get("electrical.batteries")
    for _type, _scenario, address, _key in DEMO_IDENTITIES:
        battery_id = address.replace(":", "")
        assert battery_id in batteries, (battery_id, list(batteries))
        tree = batteries[battery_id]
        got = values(tree)
        assert isinstance(got["voltage"], float) and tree["voltage"]["meta"]["units"] == "V"
        cells = {k: v for k, v in got.items() if re.fullmatch(r"cellVoltages\.\d+\.voltage", k)}
        if _type.startswith("lithium"):
            assert tree["temperature"]["meta"]["units"] == "K"
            assert 233.0 < got["temperature"] < 360.0  # a battery between −40 and 87 °C
            # 4 cells (12.8 V) or 8 (25.6 V), numbered from 1, adding up to the battery voltage.
            count = 8 if "25.6v" in _type else 4
            assert sorted(cells) == [f"cellVoltages.{n}.voltage" for n in range(1, count + 1)]
            assert abs(sum(cells.values()) - got["voltage"]) < 0.1
            assert tree["cellVoltages"]["1"]["voltage"]["meta"]["units"] == "V"
            zones = tree["cellVoltages"]["1"]["voltage"]["meta"]["zones"]
            assert {z["state"] for z in zones} <= {"warn", "alarm", "emergency"}
        if _type.startswith("lynx"):
            assert tree["capacity"]["stateOfCharge"]["meta"]["units"] == "ratio"
            assert 0.0 <= got["capacity.stateOfCharge"] <= 1.0
        assert got["bms.keyStatus"] == "ok" and BATTERY_ID.match(battery_id)
    clean(fleet.stderr)
    clean(flat.stderr)
    assert "connected to Signal K server" in fleet.stderr


def test_a_code_an_earlier_run_left_raised_is_cleared_once_the_device_says_so(
    signalk_server: SignalKServer, tmp_path: Path, serves: list[Serve]
) -> None:
    """serve stops while W-SL12 is up (a reboot, an update): the server keeps it. A later run
    that never hears the battery leaves it (unknown is not an all-clear); one that hears the
    battery without the code sets it to normal."""
    url = signalk_server.stream_url
    device = "lithium-12.8v-50ah:AA:BB:CC:00:00:0E"

    def w_sl12() -> str | None:
        value = notification(signalk_server, "AABBCC00000E", "W-SL12")
        return None if value is None else str(value["state"])

    flat = Serve(
        tmp_path,
        "--source", "emulator", "--device", device, "--scenario", "deep-discharge",
        "--speed", "240", "--signalk", url, "--duration", "60",
    )  # fmt: skip
    serves.append(flat)
    wait_for(lambda: w_sl12() == "warn", 40, "W-SL12 raised")
    flat.proc.terminate()
    assert flat.wait() == 0
    elsewhere = Serve(
        tmp_path, "--source", "emulator", "--device", "lithium-12.8v-50ah:AA:BB:CC:00:00:0F",
        "--signalk", url, "--duration", "3",
    )  # fmt: skip
    serves.append(elsewhere)
    assert elsewhere.wait() == 0
    assert w_sl12() == "warn"  # its battery was not heard: nothing is known
    healthy = Serve(
        tmp_path, "--source", "emulator", "--device", device, "--signalk", url,
        "--duration", "30",
    )  # fmt: skip
    serves.append(healthy)
    wait_for(lambda: w_sl12() == "normal", 30, "the earlier run's W-SL12 cleared")
    healthy.proc.terminate()
    assert healthy.wait() == 0
    for run in (flat, elsewhere, healthy):
        clean(run.stderr)


def _lbs(flags: int, cells: tuple[float, ...], volts: float) -> SmartLithiumRecord:
    return SmartLithiumRecord(
        bms_flags=BmsFlags(flags),
        error_flags=SmartLithiumErrorFlags(0),
        cell_voltages_v=(*cells, None, None, None, None),
        battery_voltage_v=volts,
        balancer_status=BalancerStatus.BALANCED,
        battery_temperature_c=21,
    )


def test_capture_replay_names_partial_frames_and_wrong_keys(
    signalk_server: SignalKServer, tmp_path: Path, serves: list[Serve]
) -> None:
    ok = (1 << 25) | (1 << 26)  # allowed to charge and to discharge (docs/protocol.md §4.1)
    w_sl12 = ok | (1 << 12)  # + the cell under-voltage pre-alarm
    low = (3.05, 3.09, 3.08, 3.08)
    keys = {
        "C0:FF:EE:00:00:01": bytes(range(16)),  # "House bank": W-SL12, then partial frames
        "C0:FF:EE:00:00:02": bytes(range(1, 17)),  # W-SL12, then a complete frame without it
        "C0:FF:EE:00:00:03": bytes(range(2, 18)),  # the keys file holds a wrong key
    }
    t0 = 1_700_000_000.0
    frames: list[tuple[str, bytes]] = []
    for n in range(3):
        frames.append(
            (
                "C0:FF:EE:00:00:01",
                encode(
                    _lbs(w_sl12, low, 12.30),
                    key=keys["C0:FF:EE:00:00:01"],
                    nonce=n,
                    model_id=0xA0ED,
                ),
            )
        )  # noqa: E501
        frames.append(
            (
                "C0:FF:EE:00:00:02",
                encode(
                    _lbs(w_sl12, low, 12.30),
                    key=keys["C0:FF:EE:00:00:02"],
                    nonce=n,
                    model_id=0xA0ED,
                ),
            )
        )  # noqa: E501
    for n in range(3, 6):
        full = encode(_lbs(ok, low, 12.30), key=keys["C0:FF:EE:00:00:01"], nonce=n, model_id=0xA0ED)
        frames.append(("C0:FF:EE:00:00:01", full[:12]))  # bms_flags cut short: codes unknown
    for n in (9, 10):  # the warning clears, and the next frame confirms it (issue 18 item 2)
        frames.append(
            (
                "C0:FF:EE:00:00:02",
                encode(
                    _lbs(ok, (3.3,) * 4, 13.2),
                    key=keys["C0:FF:EE:00:00:02"],
                    nonce=n,
                    model_id=0xA0ED,
                ),
            )
        )
    frames.append(
        (
            "C0:FF:EE:00:00:03",
            encode(
                _lbs(ok, (3.3,) * 4, 13.2), key=keys["C0:FF:EE:00:00:03"], nonce=1, model_id=0xA0ED
            ),
        )
    )  # noqa: E501
    capture = tmp_path / "boat.jsonl"
    with JsonlWriter(capture, source="test") as w:
        for i, (address, data) in enumerate(frames):
            w.write(Advertisement(t0 + i, address, {0x02E1: data}, rssi=-60, name="LI 12.8V"))
    store = KeyStore()
    store.add("C0:FF:EE:00:00:01", keys["C0:FF:EE:00:00:01"], name="House bank")
    store.add("C0:FF:EE:00:00:02", keys["C0:FF:EE:00:00:02"], name="Bug\x1b[31m ☠")
    store.add("C0:FF:EE:00:00:03", bytes(range(3, 19)), name="Neighbour key")
    keys_file = store.save(tmp_path / "keys.toml")

    s = Serve(
        tmp_path,
        "--source", "capture", str(capture), "--speed", "max",
        "--keys", str(keys_file), "--signalk", signalk_server.stream_url,
    )  # fmt: skip
    serves.append(s)
    assert s.wait() == 0
    clean(s.stderr)

    house = wait_for(lambda: battery(signalk_server, "houseBank"), 10, "houseBank")
    got = values(house)
    assert got["name"] == "House bank" and got["bms.keyStatus"] == "ok"
    # The last frames were partial: never the device's state (issue 18 item 2), so the last
    # complete one's values and codes stay, and `bms.suspect` says why.
    assert got["voltage"] == 12.3
    assert "W-SL12" in got["bms.activeCodes"]
    assert "partial frame" in got["bms.suspect"]
    w = notification(signalk_server, "houseBank", "W-SL12")
    assert w is not None and w["state"] == "warn"  # the warning stays up
    # The replayed frame's own time (its last complete frame is the 5th), not the replay's.
    assert house["voltage"]["timestamp"] == time.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t0 + 4)
    )

    bug_id = "bug31m"  # the name's letters and digits; the escape's text is shown, not obeyed
    bug = battery(signalk_server, bug_id)
    assert bug is not None and BATTERY_ID.match(bug_id)
    assert values(bug)["name"] == "Bug\\x1b[31m ☠"
    assert values(bug)["bms.activeCodes"] == ""
    cleared = notification(signalk_server, bug_id, "W-SL12")
    assert cleared is not None and cleared["state"] == "normal"

    wrong = battery(signalk_server, "neighbourKey")
    assert wrong is not None and values(wrong)["bms.keyStatus"] == "key mismatch"
    assert "voltage" not in wrong and "cellVoltages" not in wrong
    assert signalk_server.get("notifications.electrical.batteries.neighbourKey") is None


def test_a_bank_is_a_battery_of_its_own(
    signalk_server: SignalKServer, tmp_path: Path, serves: list[Serve]
) -> None:
    """Two batteries declared as the bank "house" in the keys file; House 2 falls silent in the
    capture while House 1 goes on past stale_after_s: the bank is degraded (an alert naming
    House 2), never normal."""
    ok = (1 << 25) | (1 << 26)
    one, two = "C0:FF:EE:00:01:01", "C0:FF:EE:00:01:02"
    t0 = 1_700_000_000.0
    capture = tmp_path / "bank.jsonl"
    with JsonlWriter(capture, source="test") as w:
        for n in range(100):  # 100 s: both for 10 s, then House 1 alone
            for address, key in ((one, KEY_1), (two, KEY_2)):
                if address == two and n >= 10:
                    continue
                data = encode(
                    _lbs(ok, (3.3, 3.31, 3.3, 3.3), 13.21), key=key, nonce=n, model_id=0xA0ED
                )
                w.write(Advertisement(t0 + n, address, {0x02E1: data}, rssi=-60))
    store = KeyStore()
    store.add(one, KEY_1, name="House 1")
    store.add(two, KEY_2, name="House 2")
    store.add_bank("house", {"members": ["House 1", "House 2"]})
    keys_file = store.save(tmp_path / "keys.toml")
    config = tmp_path / "serve.toml"
    config.write_text("[mqtt]\nstale_after_s = 30\n")
    s = Serve(
        tmp_path,
        "--source", "capture", str(capture), "--speed", "max", "--keys", str(keys_file),
        "--config", str(config), "--signalk", signalk_server.stream_url,
    )  # fmt: skip
    serves.append(s)
    assert s.wait() == 0
    clean(s.stderr)
    bank = wait_for(lambda: battery(signalk_server, "house"), 10, "the bank 'house'")
    got = values(bank)
    assert got["name"] == "house" and got["bms.membersExpected"] == 2
    assert got["bms.membersHeard"] == 1 and got["bms.membersStale"] == 1
    assert got["bms.verdict"] == "degraded" and got["voltage"] == 13.21
    assert bank["voltage"]["meta"]["units"] == "V"
    note = notification(signalk_server, "house", "bank")
    assert note is not None and note["state"] == "alert" and "House 2" in note["message"]
    # The members are batteries too, under their own names.
    assert values(battery(signalk_server, "house1"))["voltage"] == 13.21


KEY_1, KEY_2 = bytes(range(16)), bytes(range(5, 21))


def test_security_access_request_kept_token_and_env_token(
    signalk_secure: SignalKServer, tmp_path: Path, serves: list[Serve]
) -> None:
    server = signalk_secure
    config = tmp_path / "serve.toml"
    description = f"victron-ble-bms test {os.getpid()}"
    config.write_text(f'[signalk]\nurl = "{server.stream_url}"\ndescription = "{description}"\n')
    device = ["--source", "emulator", "--device", "lithium-12.8v-100ah:AA:BB:CC:00:00:02"]
    s = Serve(tmp_path, *device, "--config", str(config), "--duration", "30")
    serves.append(s)
    request = wait_for(
        lambda: [r for r in server.pending_requests() if r["accessDescription"] == description],
        20,
        "the access request",
    )[0]
    assert battery(server, "AABBCC000002") is None  # nothing written before the approval
    server.approve(request["accessIdentifier"])
    wait_for(lambda: battery(server, "AABBCC000002"), 20, "the battery after the approval")
    s.proc.terminate()
    assert s.wait() == 0
    assert "approve it in the server's admin UI" in s.stderr and "approved" in s.stderr
    access = tmp_path / "signalk-access.json"  # beside the --config file
    assert stat.S_IMODE(access.stat().st_mode) == 0o600
    token = str(__import__("json").loads(access.read_text())["servers"][server.http]["token"])
    clean(s.stderr, token)

    # Three at once. Again with the kept token: no new request.
    before = values(battery(server, "AABBCC000002"))
    again = Serve(tmp_path, *device, "--config", str(config), "--duration", "4")
    # A token from the environment (here the admin's), in a fresh config dir: no request …
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    admin = server.login(server.admin_user, server.admin_password)
    env_run = Serve(
        fresh, *device, "--signalk", server.stream_url, "--duration", "4", env={ENV_TOKEN: admin}
    )
    # … and a wrong one: one line, retried, never printed.
    bad = "eyJhbGciOiJIUzI1NiJ9.bm9wZQ.not-a-signature-" + socket.gethostname()[:4]
    bad_run = Serve(
        fresh, *device, "--signalk", server.stream_url, "--duration", "3", env={ENV_TOKEN: bad}
    )
    serves += [again, env_run, bad_run]
    assert again.wait() == 0 and env_run.wait() == 0 and bad_run.wait() == 0
    assert "asked Signal K server" not in again.stderr and "connected to" in again.stderr
    assert values(battery(server, "AABBCC000002")) != before
    clean(again.stderr, token)
    assert "connected to" in env_run.stderr and "asked" not in env_run.stderr
    clean(env_run.stderr, admin)
    assert "refused the token" in bad_run.stderr and "connected to" not in bad_run.stderr
    clean(bad_run.stderr, bad)


def test_server_restarted_while_serving(
    signalk_server: SignalKServer, tmp_path: Path, serves: list[Serve]
) -> None:
    """Last in this module (it restarts the module's server): one line, a reconnect, and the
    whole picture again — the restarted server has forgotten every value."""
    device = ["--source", "emulator", "--device", "lithium-12.8v-100ah:AA:BB:CC:00:00:03"]
    s = Serve(tmp_path, *device, "--signalk", signalk_server.stream_url, "--duration", "45")
    serves.append(s)
    wait_for(lambda: battery(signalk_server, "AABBCC000003"), 20, "the battery")
    signalk_server.stop()
    wait_for(lambda: "lost the connection to" in s.stderr, 20, "the lost connection line")
    signalk_server.start()
    tree = wait_for(lambda: battery(signalk_server, "AABBCC000003"), 30, "the battery again")
    assert tree["voltage"]["meta"]["units"] == "V"  # meta again too, on the new connection
    s.proc.terminate()
    assert s.wait() == 0
    clean(s.stderr)
    assert s.stderr.count("connected to Signal K server") >= 2


def test_a_password_in_the_url_is_refused_without_echo(tmp_path: Path) -> None:
    """(Other bad URLs: test_mapping.test_urls, without a process.)"""
    url, says = "ws://u:hunter2@127.0.0.1:3000/signalk/v1/stream", "never on the command line"
    out = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "emulator",
         "--signalk", url],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 2 and says in out.stderr
    assert "hunter2" not in out.stderr + out.stdout
    clean(out.stderr)


def test_server_down_is_one_line_per_attempt(tmp_path: Path, serves: list[Serve]) -> None:
    from tests.ports import free_port

    url = f"ws://127.0.0.1:{free_port()}/signalk/v1/stream"  # nothing listens there
    s = Serve(tmp_path, "--source", "emulator", "--signalk", url, "--duration", "2")
    serves.append(s)
    assert s.wait() == 0
    assert "connection refused" in s.stderr and "retrying in 1 s" in s.stderr
    clean(s.stderr)
