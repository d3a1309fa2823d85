"""Publishing rules on a controlled clock (no broker needed): at most one state per device per
min_interval, at least one per heartbeat, offline after the stale limit, a flood of unknown
addresses bounded, a suspect reading never replacing the last good values."""

from __future__ import annotations

import json
from dataclasses import replace

from victron_ble_bms.emulator import DeviceSpec, load_scenario
from victron_ble_bms.emulator.engine import Emulator
from victron_ble_bms.mqtt import MqttConfig
from victron_ble_bms.mqtt.publisher import Outgoing, Publisher
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.readings import Reading, decode_advertisement


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fleet(seconds: int) -> tuple[Emulator, list[Advertisement]]:
    emu = Emulator(
        [DeviceSpec("lithium-12.8v-100ah")], load_scenario("deep-discharge"), seed=2, speed=None
    )
    return emu, list(emu.run(seconds))


def states(out: list[Outgoing]) -> list[Outgoing]:
    return [m for m in out if m.topic.endswith("/state")]


def test_at_most_one_state_per_interval_and_a_heartbeat() -> None:
    emu, advs = fleet(5)
    clock = Clock()
    cfg = MqttConfig(min_interval_s=10.0, heartbeat_s=60.0, stale_after_s=120.0)
    pub = Publisher(cfg, emu.keys, clock=clock)
    sent = []
    for adv in advs:  # five changing readings within one second of wall time
        sent += states(pub.reading(decode_advertisement(adv, emu.keys)))
        clock.now += 0.2
    assert len(sent) == 1
    clock.now += 10
    delayed = states(pub.tick())  # the latest change goes out once the interval is over
    assert len(delayed) == 1
    assert (
        json.loads(delayed[0].payload)["nonce"]
        == json.loads(
            json.dumps(decode_advertisement(advs[-1], emu.keys).record.to_dict())  # type: ignore[union-attr]
        )["nonce"]
    )
    assert states(pub.tick()) == []
    clock.now += 61  # nothing new but the device is still heard: heartbeat
    pub_reading = pub.reading(decode_advertisement(advs[-1], emu.keys))
    assert len(states(pub_reading)) == 1


def test_offline_after_stale_limit_and_online_again() -> None:
    emu, advs = fleet(2)
    clock = Clock()
    pub = Publisher(MqttConfig(stale_after_s=60.0), emu.keys, clock=clock)
    first = pub.reading(decode_advertisement(advs[0], emu.keys))
    avail = [m for m in first if m.topic.endswith("/availability")]
    assert [(m.payload, m.retain) for m in avail] == [(b"online", True)]
    clock.now += 59
    assert not [m for m in pub.tick() if m.topic.endswith("/availability")]
    clock.now += 2
    gone = [m for m in pub.tick() if m.topic.endswith("/availability")]
    assert [m.payload for m in gone] == [b"offline"]
    back = pub.reading(decode_advertisement(advs[1], emu.keys))
    assert [m.payload for m in back if m.topic.endswith("/availability")] == [b"online"]


def test_a_flood_of_unknown_addresses_is_bounded_and_keeps_real_devices() -> None:
    emu, advs = fleet(1)
    clock = Clock()
    pub = Publisher(MqttConfig(max_devices=1000), emu.keys, clock=clock)
    pub.reading(decode_advertisement(advs[0], emu.keys))
    data = advs[0].victron_data
    assert data is not None
    sent = 0
    for i in range(100_000):
        address = ":".join(f"{b:02X}" for b in (0xC0 | (i >> 40) & 0x3F, *(i.to_bytes(5, "big"))))
        adv = Advertisement(clock.now, address, {0x02E1: data})
        out = pub.reading(decode_advertisement(adv, emu.keys))
        assert not [m for m in out if m.retain]  # no retained topics for unknown devices
        sent += len(out)
        clock.now += 0.0001
    assert len(pub.unkeyed) == 1000 and pub.evicted == 99_000
    assert advs[0].address in pub.keyed  # the real device keeps its place and state
    assert sent <= 60 + 20 * 10 + 1  # the global budget for unknown devices (burst + rate)
    assert json.loads(pub.keyed[advs[0].address].state or b"{}")["key_status"] == "ok"


def good_then_later() -> tuple[Publisher, Clock, Reading, Reading]:
    """A publisher that has published a good reading, and a later reading not yet given."""
    emu, advs = fleet(3)
    clock = Clock()
    pub = Publisher(MqttConfig(min_interval_s=0.0), emu.keys, clock=clock)
    good = decode_advertisement(advs[0], emu.keys)
    pub.reading(good)
    return pub, clock, good, decode_advertisement(advs[2], emu.keys)


def test_a_suspect_reading_does_not_replace_the_last_good_values() -> None:
    pub, clock, good, later = good_then_later()
    # The device table flags such readings in Reading.suspect (sources/devices.py).
    suspect = replace(later, suspect="nonce went back: possible replayed frame")
    clock.now += 1
    out = states(pub.reading(suspect))
    obj = json.loads(out[0].payload)
    assert obj["suspect"].startswith("nonce went back")
    assert obj["nonce"] == good.record.to_dict()["nonce"]  # type: ignore[union-attr]


def test_a_pending_change_leaves_the_last_good_state_unflagged() -> None:
    """A change pending confirmation (sources/devices.py) is neither the device's values nor a
    suspect flag: the retained state stays the last good one, nothing new is published."""
    pub, clock, good, later = good_then_later()
    pending = replace(later, suspect="unconfirmed change of values or codes", pending=True)
    clock.now += 1
    assert states(pub.reading(pending)) == []
    clock.now += 1  # a change that stayed unconfirmed past the bound is said
    flagged = replace(later, suspect="a change of values or codes was never confirmed")
    obj = json.loads(states(pub.reading(flagged))[0].payload)
    assert obj["suspect"].startswith("a change") and obj["nonce"] == good.record.to_dict()["nonce"]  # type: ignore[union-attr]


def test_config_repr_never_shows_the_password() -> None:
    cfg = replace(MqttConfig(), password="s3cret-pw")  # noqa: S106 - the value under test
    assert "s3cret-pw" not in repr(cfg) and "password=set" in repr(cfg)


def test_an_implausible_record_is_flagged_and_keeps_the_last_good_values() -> None:
    import dataclasses

    pub, clock, good, later = good_then_later()
    record = later.record
    assert record is not None

    # Record.implausible is the protocol branch's field (CONTRACTS.md); a subclass stands in.
    @dataclasses.dataclass(frozen=True, slots=True)
    class Implausible(type(record)):  # type: ignore[misc]
        @property
        def implausible(self) -> tuple[str, ...]:
            return ("SOC 126 %",)

    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    bad = replace(later, record=Implausible(**values))
    clock.now += 1
    obj = json.loads(states(pub.reading(bad))[0].payload)
    assert "implausible" in obj["suspect"] and "SOC 126 %" in obj["suspect"]
    assert obj["nonce"] == good.record.to_dict()["nonce"]  # type: ignore[union-attr]
    discovery = [m for m in pub.reading(bad) if m.topic.endswith("/config")]
    assert discovery == []  # an implausible record never reshapes the HA device


def test_the_outbox_is_bounded_and_keeps_retained_messages() -> None:
    from victron_ble_bms.mqtt import link as link_module
    from victron_ble_bms.mqtt.config import parse_broker_url

    cfg = MqttConfig(broker=parse_broker_url("mqtt://127.0.0.1:1"))
    link = link_module.Link(cfg, Publisher(cfg, {}), say=lambda _m: None)
    limit = link_module.OUTBOX_LIMIT
    link.send([Outgoing("keep/config", b"x", retain=True, qos=1)])
    link.send(Outgoing(f"t/{i}/state", b"{}") for i in range(limit + 500))
    assert len(link.outbox) == limit and link.dropped == 501
    assert "keep/config" in link.outbox
    link.send([Outgoing("t/7/state", b"newer")] * 3)  # same topic: replaced, not queued again
    assert len(link.outbox) == limit and link.outbox["t/7/state"].payload == b"newer"


def test_a_keyed_state_is_retained_kept_offline_and_emptied_when_the_key_goes() -> None:
    emu, advs = fleet(1)
    clock = Clock()
    keys = dict(emu.keys)
    pub = Publisher(MqttConfig(), keys, clock=clock)
    (state,) = states(pub.reading(decode_advertisement(advs[0], keys)))
    assert state.retain and json.loads(state.payload)["key_status"] == "ok"
    clock.now += 120  # silent: offline, and after a reconnect the last state is there again
    offline = [m for m in pub.tick() if m.topic.endswith("/availability")]
    assert [m.payload for m in offline] == [b"offline"]
    again = states(pub.bridge_online())
    assert [(m.topic, m.payload, m.retain) for m in again] == [(state.topic, state.payload, True)]
    keys.clear()  # the key left the keys file
    removed = pub.forget_unkeyed()
    assert [(m.payload, m.retain) for m in removed] == [(b"", True)] * 3
    topics = [m.topic for m in removed]
    assert topics[0].startswith("homeassistant/") and topics[-1] == state.topic  # HA first


# --- deadbands: noise is not news ---------------------------------------------------------------


def _changes(cfg: MqttConfig, seconds: int = 600) -> tuple[int, int, list[str]]:
    """Published states, entity value changes (what HA's recorder writes a row for) and every
    published value farther from the reading it came with than its band."""
    emu = Emulator(
        [DeviceSpec("lithium-25.6v-200ah")], load_scenario("normal-day"), seed=7, speed=None
    )
    clock = Clock()
    pub = Publisher(cfg, emu.keys, clock=clock)
    bands = dict(MqttConfig().deadband)
    previous: dict[str, object] = {}
    sent = changes = 0
    wrong: list[str] = []
    for adv in emu.run(seconds):
        clock.now = adv.ts
        reading = decode_advertisement(adv, emu.keys)
        for m in states(pub.reading(reading)):
            sent += 1
            obj = json.loads(m.payload)
            true = reading.record.to_dict()  # type: ignore[union-attr]
            for key in ("battery_voltage_v", "battery_temperature_c"):
                if previous.get(key) != obj[key]:
                    changes += 1
                if abs(obj[key] - true[key]) >= bands[key] + 1e-9:
                    wrong.append(f"{key} {obj[key]} vs {true[key]}")
            for i, (p, t) in enumerate(
                zip(obj["cell_voltages_v"], true["cell_voltages_v"], strict=True)
            ):
                if previous.get(f"cell{i}") != p:
                    changes += 1
                if p is not None and abs(p - t) >= bands["cell_voltages_v"] + 1e-9:
                    wrong.append(f"cell {i} {p} vs {t}")
                previous[f"cell{i}"] = p
            previous.update(obj)
    return sent, changes, wrong


def test_deadbands_keep_noise_out_of_the_recorder() -> None:
    exact = replace(MqttConfig(), deadband=())
    sent_exact, changes_exact, _ = _changes(exact)
    sent, changes, wrong = _changes(MqttConfig())
    print(f"10 min, 8 cells: {sent_exact} states / {changes_exact} value changes without "
          f"deadbands, {sent} / {changes} with the defaults")  # fmt: skip
    assert wrong == []  # never farther from the truth than the band
    assert changes * 4 <= changes_exact and sent < sent_exact


def _last_states(cfg: MqttConfig, extra: bool) -> tuple[dict[str, bytes], int]:
    """Each device's last state after a run ends (`pending`), and how many `pending` sent."""
    emu = Emulator(
        [DeviceSpec("lithium-25.6v-200ah"), DeviceSpec("lynx-smart-bms-500")],
        load_scenario("normal-day"),
        seed=7,
        speed=None,
    )
    clock = Clock()
    receivers = {"receiver": "r1", "receivers": {"r1": {"last_seen": 1.5, "rssi": -70}}}
    pub = Publisher(
        cfg, emu.keys, clock=clock, extra_state=(lambda _a: receivers) if extra else None
    )
    last: dict[str, bytes] = {}
    for adv in emu.run(60):
        clock.now = adv.ts
        for m in states(pub.reading(decode_advertisement(adv, emu.keys))):
            last[m.topic] = m.payload
    final = states(pub.pending())
    last.update((m.topic, m.payload) for m in final)
    return last, len(final)


def test_a_finished_run_ends_on_its_exact_values() -> None:
    """`pending` replaces what the deadbands held with the last reading's own values: the
    last states are those of a publisher without deadbands, field by field in the same order."""
    for extra in (False, True):
        exact, _ = _last_states(replace(MqttConfig(), deadband=(), min_interval_s=0.0), extra)
        banded, sent = _last_states(replace(MqttConfig(), min_interval_s=0.0), extra)
        assert sent > 0  # the deadbands held some value at the end, so this tests something
        # Without deadbands an unchanged reading is not sent: its ts and RSSI are not news.
        assert _values(banded) == _values(exact)


def _values(states: dict[str, bytes]) -> dict[str, list[tuple[str, object]]]:
    """Each state's fields in order, but the volatile ts and RSSI."""
    return {
        topic: [(k, v) for k, v in json.loads(payload).items() if k not in ("ts", "rssi")]
        for topic, payload in states.items()
    }


def test_a_step_beyond_the_band_is_published_at_once() -> None:
    emu, advs = fleet(3)
    clock = Clock()
    pub = Publisher(replace(MqttConfig(), min_interval_s=0.0), emu.keys, clock=clock)
    first = states(pub.reading(decode_advertisement(advs[0], emu.keys)))
    held = json.loads(first[0].payload)["battery_voltage_v"]
    reading = decode_advertisement(advs[1], emu.keys)
    record = reading.record
    assert record is not None
    stepped = replace(reading, record=replace(record, battery_voltage_v=held + 0.05))  # type: ignore[arg-type]
    clock.now += 1
    out = states(pub.reading(stepped))
    assert out and json.loads(out[0].payload)["battery_voltage_v"] == held + 0.05


def test_a_device_heard_only_through_gone_receivers_is_offline_at_once() -> None:
    emu, advs = fleet(2)
    gone = {"now": False}
    pub = Publisher(MqttConfig(), emu.keys, clock=Clock(), unheard=lambda _a: gone["now"])
    pub.reading(decode_advertisement(advs[0], emu.keys))
    assert [m for m in pub.tick() if m.topic.endswith("/availability")] == []
    gone["now"] = True  # the receiver's last will said offline: no waiting for stale_after_s
    out = [m for m in pub.tick() if m.topic.endswith("/availability")]
    assert [m.payload for m in out] == [b"offline"]
