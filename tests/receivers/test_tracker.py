"""Many receivers, one decoder: copies merged, best receiver, silence, bounded memory."""

from __future__ import annotations

import logging

import pytest

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.receivers import Heard, Receivers
from victron_ble_bms.sources.advertisement import Advertisement

ADDR = "C0:FF:EE:00:00:01"


def heard(receiver: str, data: bytes, rssi: int | None, address: str = ADDR) -> Heard:
    return Heard(receiver, Advertisement(0.0, address, {COMPANY_ID: data}, rssi), "raw")


FRAME1 = bytes.fromhex("1000a0a3050100aa11223344")
FRAME2 = bytes.fromhex("1000a0a3050200aa55667788")


def test_the_same_transmission_from_three_receivers_is_passed_on_once() -> None:
    tracker = Receivers()
    assert tracker.heard(heard("bow", FRAME1, -80), 10.0) is not None
    assert tracker.heard(heard("stern", FRAME1, -55), 10.1) is None
    assert tracker.heard(heard("mast", FRAME1, -70), 10.2) is None
    fields = tracker.state_fields(ADDR)
    assert fields["receiver"] == "stern"
    assert fields["receivers"] == {
        "bow": {"last_seen": 10.0, "rssi": -80},
        "stern": {"last_seen": 10.1, "rssi": -55},
        "mast": {"last_seen": 10.2, "rssi": -70},
    }
    assert (tracker.counters.advertisements, tracker.counters.duplicates) == (1, 2)
    # The next frame arrives first through a weak receiver: the best one is still the one
    # that hears the device best recently, not the first to deliver.
    assert tracker.heard(heard("bow", FRAME2, -81), 11.0) is not None
    assert tracker.state_fields(ADDR)["receiver"] == "stern"
    # A late copy of the old frame is still a duplicate.
    assert tracker.heard(heard("mast", FRAME1, -60), 11.1) is None
    # A receiver that stopped hearing the device (nothing for > the window) is not "best".
    tracker.heard(heard("bow", FRAME1 + b"\x01", -85), 17.0)
    assert tracker.state_fields(ADDR)["receiver"] == "bow"


def test_the_same_bytes_after_the_window_are_a_new_sighting() -> None:
    tracker = Receivers(duplicate_window_s=5.0)
    assert tracker.heard(heard("bow", FRAME1, -80), 0.0) is not None
    assert tracker.heard(heard("bow", FRAME1, -80), 4.0) is None
    assert tracker.heard(heard("bow", FRAME1, -80), 9.5) is not None


def test_a_silent_receiver_is_reported_once_and_its_return_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    tracker = Receivers(silent_after_s=60.0, on_event=events.append)
    tracker.heard(heard("bow", FRAME1, -80), 0.0)
    tracker.heard(heard("stern", FRAME1, -60), 0.0)
    tracker.heard(heard("stern", FRAME2, -60), 50.0)
    assert tracker.check_silent(59.0) == []
    with caplog.at_level(logging.INFO, logger="victron_ble_bms.receivers"):
        assert tracker.check_silent(61.0) == ["bow"]
    assert tracker.check_silent(70.0) == []  # reported once
    assert tracker.silent() == ["bow"]
    assert "receiver 'bow' silent for 61 s" in caplog.text
    assert tracker.check_silent(111.0) == ["stern"]
    tracker.heard(heard("bow", FRAME2, -80), 120.0)
    assert tracker.silent() == ["stern"]
    assert events[-1] == "receiver 'bow' is sending again"


def test_advertisements_without_victron_data_keep_a_receiver_alive_but_make_no_device() -> None:
    tracker = Receivers()
    tracker.heard(Heard("bow", Advertisement(0.0, ADDR, {0x004C: b"\x02\x15"}), "raw"), 0.0)
    assert tracker.devices == {}
    assert tracker.counters.not_victron == 1
    assert "bow" in tracker.receivers


def test_a_flood_of_addresses_and_receivers_stays_bounded() -> None:
    tracker = Receivers(max_devices=1000, max_receivers=50)
    for i in range(100_000):
        address = ":".join(f"{b:02X}" for b in i.to_bytes(6, "big"))
        tracker.heard(heard(f"rx{i % 500}", FRAME1, -70, address), float(i))
    assert len(tracker.devices) == 1000
    assert len(tracker.receivers) == 50
    assert tracker.counters.evicted_devices == 99_000
    assert tracker.counters.advertisements == 100_000
    # The newest devices are the ones kept.
    assert tracker.device("00:00:00:01:86:9F") is not None  # 99,999
    assert tracker.device("00:00:00:00:00:00") is None


def test_many_receivers_for_one_device_are_bounded() -> None:
    tracker = Receivers()
    for i in range(100):
        tracker.heard(heard(f"rx{i}", bytes([i]) + FRAME1, -70), float(i))
    dev = tracker.device(ADDR)
    assert dev is not None
    assert len(dev.receivers) == 16
    assert len(dev.frames) == 8
    assert "rx99" in dev.receivers and "rx0" not in dev.receivers


def test_malformed_messages_are_counted_and_logged_in_one_line_without_flooding(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = Receivers()
    with caplog.at_level(logging.WARNING, logger="victron_ble_bms.receivers"):
        for i in range(1000):
            tracker.malformed("home/gw/BTtoMQTT/x", "not JSON", i / 1000)
        tracker.malformed("home/gw/BTtoMQTT/x", "rssi: expected a number, got str", 0.5)
    assert tracker.counters.malformed == 1001
    lines = caplog.text.strip().splitlines()
    assert len(lines) == 2
    assert "not JSON (1 so far)" in lines[0]
    assert "rssi: expected a number" in lines[1]


def test_a_gateways_last_will_reports_it_at_once() -> None:
    events: list[str] = []
    tracker = Receivers(on_event=events.append)
    tracker.heard(heard("TheengsGateway", FRAME1, -60), 0.0)
    tracker.gateway_status("TheengsGateway", b"offline", 1.0)
    assert tracker.silent() == ["TheengsGateway"]
    assert events[-1] == "receiver 'TheengsGateway' went offline (its last will)"
    tracker.gateway_status("TheengsGateway", b"offline", 2.0)  # once
    tracker.gateway_status("NeverSeen", b"offline", 2.0)  # unknown: nothing to report
    assert len(events) == 2
    tracker.gateway_status("TheengsGateway", b"online", 3.0)
    assert tracker.silent() == []
