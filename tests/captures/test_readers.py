"""Our readers against tshark on files made by scapy and by an independent btsnoop writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from victron_ble_bms.sources.capture import (
    UnknownFormat,
    UnsupportedLinkType,
    open_capture,
)

from .frames import ADVS, have_tshark, tshark_adverts, write_btsnoop, write_scapy

needs_tshark = pytest.mark.skipif(not have_tshark(), reason="tshark not installed")

LINKTYPES = (187, 201, 251, 254, 256, 272)


def ours(path: Path) -> list[tuple[str, str, int | None]]:
    return [(a.address, (a.victron_data or b"").hex(), a.rssi) for a in open_capture(path)]


@needs_tshark
@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("linktype", LINKTYPES)
def test_pcap_matches_tshark(tmp_path: Path, linktype: int, ng: bool) -> None:
    path = write_scapy(tmp_path / f"f{linktype}.cap", linktype, ADVS, ng=ng)
    expected = tshark_adverts(path)
    assert expected, "tshark found nothing: the fixture is wrong"
    assert ours(path) == expected


@needs_tshark
@pytest.mark.parametrize("datalink", [1001, 1002, 2001])
def test_btsnoop_matches_tshark(tmp_path: Path, datalink: int) -> None:
    path = write_btsnoop(tmp_path / "log.btsnoop", datalink, ADVS)
    expected = tshark_adverts(path)
    assert len(expected) == 6
    assert ours(path) == expected


def test_fixture_contents_without_tshark(tmp_path: Path) -> None:
    # The fixtures' own facts: 3 legacy/extended HCI events with 1 + 2 + 2 + 1 reports.
    path = write_scapy(tmp_path / "h4.pcap", 187, ADVS, ng=False)
    got = list(open_capture(path))
    assert [a.address for a in got] == [
        ADVS[0].address,
        ADVS[1].address,
        ADVS[2].address,
        ADVS[0].address,
        ADVS[1].address,
        ADVS[2].address,
    ]
    assert got[0].name == "SmartShunt"
    assert got[0].address_type == "random" and got[1].address_type == "public"
    assert got[0].origin == "hci:le_adv_report:ADV_NONCONN_IND"
    assert got[3].origin == "hci:le_ext_adv_report:legacy"
    assert got[5].origin == "hci:le_ext_adv_report:extended"
    assert got[0].ts == pytest.approx(1_700_000_000.0)
    assert got[4].ts == pytest.approx(1_700_000_002.0)


def test_ll_pdu_types_and_rssi(tmp_path: Path) -> None:
    path = write_scapy(tmp_path / "rf.pcap", 256, ADVS, ng=False)
    got = list(open_capture(path))
    assert [a.origin for a in got] == ["ll:ADV_IND", "ll:ADV_NONCONN_IND", "ll:ADV_SCAN_IND"]
    assert [a.rssi for a in got] == [-62, -70, -81]


def test_detection_is_by_content(tmp_path: Path) -> None:
    path = write_btsnoop(tmp_path / "capture.pcap", 1002, ADVS)  # misleading extension
    with open_capture(path) as capture:
        assert capture.format == "btsnoop"
    text = tmp_path / "notes.btsnoop"
    text.write_text("hello\n")
    with pytest.raises(UnknownFormat, match="not btsnoop, pcap, pcapng"):
        open_capture(text)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(UnknownFormat, match="empty"):
        open_capture(empty)


def test_unsupported_datalink(tmp_path: Path) -> None:
    path = write_btsnoop(tmp_path / "x", 1002, ADVS)
    raw = bytearray(path.read_bytes())
    raw[12:16] = (1003).to_bytes(4, "big")  # BCSP
    path.write_bytes(raw)
    with pytest.raises(UnsupportedLinkType, match="1003"):
        list(open_capture(path))


def test_fast_advertisement_constructors_build_the_real_frozen_object() -> None:
    import dataclasses

    from victron_ble_bms.sources.advertisement import Advertisement
    from victron_ble_bms.sources.capture import hci

    args = (1.25, "AA:BB:CC:DD:EE:FF", {0x2E1: b"\x10\x02"}, -61, "x", "random", "ll:ADV_IND")
    adv = hci.advertisement(*args)
    assert type(adv) is Advertisement and adv == Advertisement(*args)
    assert repr(adv) == repr(Advertisement(*args))
    with pytest.raises(dataclasses.FrozenInstanceError):
        adv.ts = 2.0  # type: ignore[misc]
