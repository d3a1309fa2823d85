"""Issue 9 item 6: every consumer of a capture skips a corrupt record the same way — decode,
record --from and the dashboard's replay (which today stopped at it: 2 of 24 frames shown
where decode showed 23)."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import pytest

from victron_ble_bms.cli import main
from victron_ble_bms.sources.capture import CaptureError, CorruptRecord, open_capture

from .frames import BTSNOOP_EPOCH_US, SHUNT_ADDRESS, SHUNT_DATA, SHUNT_KEY, T0


def _btsnoop_24(path: Path, corrupt: int) -> Path:
    """24 H4 events, one LE Advertising Report each (written with struct, not our code);
    event `corrupt` claims more parameter bytes than it has."""
    ad = bytes((len(SHUNT_DATA) + 3, 0xFF, 0xE1, 0x02)) + SHUNT_DATA
    addr = bytes.fromhex(SHUNT_ADDRESS.replace(":", ""))[::-1]
    out = bytearray(b"btsnoop\0" + struct.pack(">II", 1, 1002))
    for i in range(24):
        params = bytes((0x02, 1, 0x03, 1)) + addr + bytes((len(ad),)) + ad + b"\xc2"
        event = bytes((0x04, 0x3E, 0xFF if i == corrupt else len(params))) + params
        ts = int((T0 + i) * 1e6) + BTSNOOP_EPOCH_US
        out += struct.pack(">IIIIq", len(event), len(event), 3, 0, ts) + event
    path.write_bytes(out)
    return path


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return _btsnoop_24(tmp_path / "log.btsnoop", corrupt=2)


def test_decode_skips_the_corrupt_record(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[devices."{SHUNT_ADDRESS}"]\nkey = "{SHUNT_KEY}"\n')
    keys.chmod(0o600)
    assert main(["decode", str(capture), "--keys", str(keys), "--format", "jsonl"]) == 3
    out, err = capsys.readouterr()
    assert [json.loads(x)["ts"] for x in out.splitlines()] == [T0 + i for i in range(24) if i != 2]
    assert "record skipped" in err and "1 corrupt" in err


def test_dashboard_replay_skips_like_decode(capture: Path) -> None:
    from victron_ble_bms.tui.feeds import replay

    async def sleep(_: float) -> None:
        return None

    async def collect() -> list[float]:
        c = open_capture(capture)
        return [adv.ts async for adv in replay(c, speed=1e6, sleep=sleep)]

    assert asyncio.run(collect()) == [T0 + i for i in range(24) if i != 2]


def test_the_reader_reports_each_skip_once_with_its_offset(capture: Path) -> None:
    seen: list[CaptureError] = []
    c = open_capture(capture, on_error=seen.append)
    times = [a.ts for a in c]
    assert len(times) == 23 and c.skipped == 1 and not c.complete
    # Header 16 bytes, then records of 24 + event bytes each (included length at +4):
    raw = capture.read_bytes()
    size = 24 + int.from_bytes(raw[16 + 4 : 16 + 8], "big")
    assert isinstance(seen[0], CorruptRecord) and seen[0].offset == 16 + 2 * size
    with pytest.raises(CorruptRecord):  # strict: the old behaviour, for tools that want it
        list(open_capture(capture, strict=True))


def test_record_from_converts_all_readable_frames(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["record", "--from", str(capture), "-o", str(out)]) == 3
    assert len(out.read_text().splitlines()) == 1 + 23  # header line + every readable frame
    assert "record skipped" in capsys.readouterr().err
