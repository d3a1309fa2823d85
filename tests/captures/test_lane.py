"""`decode --format jsonl` with the capture lane (sources/capture/lane.py, cli/jsonlines.py)
prints what the slow way prints, byte for byte — lines, messages, summary and exit status — on
a hostile mix in every format the lane reads, and on damaged copies of it (issue 23)."""

from __future__ import annotations

import contextlib
import io
import random
import struct
from pathlib import Path

import pytest

from victron_ble_bms.cli import decode as decode_cli
from victron_ble_bms.cli import main
from victron_ble_bms.protocol import COMPANY_ID, encode
from victron_ble_bms.protocol.crypto import cipher_for
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import JsonlWriter, PcapngWriter
from victron_ble_bms.sources.capture.export import hci_event

from .frames import LITHIUM, LYNX
from .fuzzing import mutate

KEYED = [f"C0:11:00:00:00:{i:02X}" for i in range(6)]
KEYLESS = [f"C0:22:00:00:00:{i:02X}" for i in range(4)]
KEYS = {a: bytes([i + 1]) * 16 for i, a in enumerate(KEYED)}
MODELS = (0xA0E5, 0xA3E6)
BTSNOOP_EPOCH_US = 0x00DCDDB30F2F8000


def _mix(seed: int, n: int = 1500) -> list[Advertisement]:
    """Devices with keys (two record types), without, another maker's advertiser; each nonce
    heard several times, values changing, frames cut short, forged, with the wrong key, the
    nonce going back, RSSI missing, names now and then."""
    rng = random.Random(seed)
    records = [LITHIUM, LYNX]
    nonces = {a: rng.randrange(65536) for a in KEYED + KEYLESS}
    last: dict[str, bytes] = {}
    out = []
    t = 1_700_000_000.0
    for _ in range(n):
        t += rng.uniform(0.001, 0.05)
        rssi = None if rng.random() < 0.05 else rng.randrange(-100, -30)
        if rng.random() < 0.1:  # another maker's, repeating its data now and then
            payload = bytes((0x10, 0x05, rng.randrange(3), 0x1C))
            out.append(Advertisement(t, "5A:00:00:00:00:01", {0x004C: payload}, rssi))
            continue
        address = rng.choice(KEYED + KEYLESS)
        kind = KEYED.index(address) % 2 if address in KEYED else 0
        if address not in last or rng.random() < 0.4:
            nonces[address] = (nonces[address] + rng.choice((1, 1, 1, 2, -3))) & 0xFFFF
            key = KEYS.get(address, bytes(16))
            record = records[kind]
            if rng.random() < 0.1:  # new values
                record = records[1 - kind] if rng.random() < 0.2 else record
            data = encode(record, key=key, nonce=nonces[address], model_id=MODELS[kind])
            roll = rng.random()
            if roll < 0.05:
                data = data[: rng.randrange(9, len(data))]  # cut short: partial
            elif roll < 0.1:
                data = data[:8] + rng.randbytes(len(data) - 8)  # forged body
            elif roll < 0.13:
                data = data[:7] + bytes((data[7] ^ 1,)) + data[8:]  # another key's check byte
            last[address] = data
        data = last[address]
        name = "Bank" if rng.random() < 0.1 else None
        out.append(Advertisement(t, address, {COMPANY_ID: data}, rssi, name, "public"))
    return out


def _btsnoop(path: Path, advs: list[Advertisement]) -> None:
    with path.open("wb") as f:
        f.write(b"btsnoop\0" + struct.pack(">II", 1, 1002))
        for adv in advs:
            e = hci_event(adv)
            ts = round(adv.ts * 1e6) + BTSNOOP_EPOCH_US
            f.write(struct.pack(">IIIIq", len(e), len(e), 3, 0, ts) + e)


def _pcapng(path: Path, advs: list[Advertisement]) -> None:
    with PcapngWriter(path) as w:
        for adv in advs:
            w.write(adv)


def _jsonl(path: Path, advs: list[Advertisement]) -> None:
    with JsonlWriter(path, source="test") as w:
        for adv in advs:
            w.write(adv)


WRITERS = {"btsnoop": _btsnoop, "pcapng": _pcapng, "jsonl": _jsonl}


def _decode(
    path: Path, keys: Path, lane: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(decode_cli, "LANE", lane)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["decode", str(path), "--keys", str(keys), "--format", "jsonl"])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    f = tmp_path / "keys.toml"
    f.write_text("".join(f'[devices."{a}"]\nkey = "{k.hex()}"\n' for a, k in KEYS.items()))
    f.chmod(0o600)
    return f


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("seed", [1, 2])
def test_lane_prints_what_the_slow_way_prints(
    fmt: str, seed: int, tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"mix.{fmt}"
    WRITERS[fmt](path, _mix(seed))
    from victron_ble_bms.cli import jsonlines

    taken = []  # frames the lane took (its entries' counts, as folded)
    fold = jsonlines.CaptureLane.fold

    def counting(lane: jsonlines.CaptureLane) -> None:
        taken.append(sum(entry[3] for entry in lane.lane.packets.values()))
        fold(lane)

    monkeypatch.setattr(jsonlines.CaptureLane, "fold", counting)
    fast = _decode(path, keys, True, monkeypatch)
    assert sum(taken) > 1000  # of 1,500: the lane did take most frames
    slow = _decode(path, keys, False, monkeypatch)
    assert fast == slow
    status, out, err = fast
    assert out.count("\n") > 300 and "partial" in err and "key mismatch" in err


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_lane_prints_what_the_slow_way_prints_on_damaged_files(
    fmt: str, tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"mix.{fmt}"
    WRITERS[fmt](path, _mix(3, 400))
    seed_bytes = path.read_bytes()
    rng = random.Random(fmt)
    for _ in range(25):
        path.write_bytes(mutate(rng, fmt, seed_bytes))
        assert _decode(path, keys, True, monkeypatch) == _decode(path, keys, False, monkeypatch)


def test_lane_is_bounded_and_folds_its_counts(
    tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the lane's bound its entries are folded into the summary and it starts again."""
    from victron_ble_bms.cli import jsonlines

    monkeypatch.setattr(jsonlines.CaptureLane, "LIMIT", 16)
    path = tmp_path / "mix.btsnoop"
    _btsnoop(path, _mix(4))
    assert _decode(path, keys, True, monkeypatch) == _decode(path, keys, False, monkeypatch)


def test_batched_keystreams_are_the_per_nonce_ones() -> None:
    cipher = cipher_for(bytes(range(16)))
    for high in (0, 1, 0x7F, 0xFF):
        block = cipher.keystreams(high)
        for low in (0, 1, 0x80, 0xFF):
            nonce = high << 8 | low
            assert block[low * 16 : low * 16 + 16] == cipher.keystream(nonce)


def test_microsecond_times_are_written_as_json_writes_them() -> None:
    """`us_text(us)` is `repr(us / 1e6)` (the reader's float, as json.dumps writes it) over
    the whole range, edges and round values included."""
    from victron_ble_bms.sources.capture.lane import us_text

    rng = random.Random(7)
    top = (1 << 33) * 1_000_000
    values = [0, 1, 999_999, 1_000_000, 1_500_000, top - 1, top, top + 1, -5, 10**18]
    for _ in range(100_000):
        us = rng.randrange(0, 10 ** rng.choice((7, 10, 13, 16)) + top)
        values.append(us - us % rng.choice((1, 1, 1000, 1_000_000)))
    assert [us_text(us) for us in values] == [repr(us / 1e6) for us in values]
