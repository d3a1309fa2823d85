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


def _time_oracle(t: bytes) -> str | None:
    """What the slow way writes for a JSON time text, when that is the text itself."""
    try:
        text = t.decode("ascii")
        value = float(text)
    except ValueError:
        return None
    return text if value - value == 0.0 and repr(value) == text else None


def test_time_texts_pass_through_only_when_json_would_write_them() -> None:
    """`time_text(t)` is `t` exactly when `repr(float(t))` is `t` (the slow way's text):
    on odd, hostile and random texts, and on the shortest texts of random floats."""
    from victron_ble_bms.sources.capture.lane import time_text

    odd = [
        b"1e9",
        b"1.0",
        b"1.10",
        b"1.",
        b".5",
        b"-1.5",
        b"-0.0",
        b"0.0",
        b"0.5",
        b"01.5",
        b"1_0.5",
        b" 1.5",
        b"1.5 ",
        b"nan",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1.5e3",
        b"1E5",
        b"10",
        b"0",
        b"",
        b".",
        b"..",
        b"1..5",
        b"1.5.5",
        b"+1.5",
        b"\xc3\xa9",
        "١.٥".encode(),
        b"\xff1.5",
        b"1" * 400 + b".5",
        b"9" * 16 + b".0",
        b"1" * 15 + b".0",
        b"1" * 16 + b".0",
        b"1e16",
        b"1e-05",
        b"0.0001",
        b"1700000000.003",
        b"1700000000.0030",
        b"1700000000.123456",
        b"1700000000.1234567",
        b"1700000000.12345678",
        b"8589934591.999999",
        b"8589934592.000001",
        b"8589934592.5",
        b"9999999999.123456",
        b"99999999999.12345",
        b"123456789.1234567",
        b"1234567890123456.0",
        b"12345678901234567.0",
        b"0.30000000000000004",
        b"0.1",
        b"2.5000000000000004",
        b"4.35",
        b"1.7976931348623157e+308",
        b"5e-324",
    ]
    rng = random.Random(11)
    for _ in range(20_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 20)))
        at = rng.randrange(0, len(digits) + 1)
        odd.append(f"{digits[:at]}.{digits[at:]}".encode())
        x = (
            rng.uniform(0, 1e10)
            if rng.random() < 0.5
            else rng.random() * 10 ** rng.randrange(-6, 20)
        )
        odd.append(repr(x).encode())
        odd.append(repr(round(x, rng.randrange(0, 8))).encode())
    assert [time_text(t) for t in odd] == [_time_oracle(t) for t in odd]


_ODD_TS = [
    b"1e9",
    b"1.0",
    b"1.10",
    b"-5.5",
    b"0.5",
    b"01.5",
    b"1700000000",
    b"1700000000.00",
    b"1700000000.1234567",
    b"1.7e9",
    b"99999999999999999999.5",
    b"1" * 400,
    b"NaN",
    b"-Infinity",
    b'"1.5"',
    b"null",
    b"true",
    b"1.5 ",
    b"8589934592.000001",
]
_ODD_RSSI = [b"-0", b"-60.0", b"null", b"-128", b"127", b"300", b'"x"', b"-6e1", b" -60", b"1.5"]


def _odd(rng: random.Random, line: bytes) -> bytes:
    """`line` (our writer's) spelled as another writer might, or broken."""
    roll = rng.random()
    if roll < 0.3:
        at = line.index(b',"address":')
        return line[:6] + rng.choice(_ODD_TS) + line[at:]
    if roll < 0.45:
        r = line.index(b',"rssi":') + 8
        return line[:r] + rng.choice(_ODD_RSSI) + line[line.index(b',"name":') :]
    if roll < 0.5:  # the Victron data in capitals
        m = line.find(b'{"737":"')
        return line if m < 0 else line[: m + 8] + line[m + 8 : m + 40].upper() + line[m + 40 :]
    if roll < 0.55:  # a name: escaped, accented, or naming another field
        name = rng.choice([b'"B\\u00e4nk"', '"Bänk"'.encode(), b'"\\"ts\\":1"', b'"\\ud800"'])
        return line.replace(b'"name":null', b'"name":' + name)
    if roll < 0.6:  # a field twice: the last one counts
        return line[:-1] + rng.choice([b',"rssi":-1}', b',"ts":5.5}', b',"name":"x"}'])
    if roll < 0.65:  # a field missing or reordered
        return rng.choice(
            [
                line.replace(b',"name":null', b""),
                b'{"address"' + line[1:].split(b',"address"', 1)[1],
            ]
        )
    if roll < 0.67:
        return line[: rng.randrange(len(line))]  # cut short
    return line


def test_lane_prints_what_the_slow_way_prints_on_odd_json_texts(
    tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON lines as another writer might spell them — times like 1e9, 1.10 or -5.5, RSSI
    like -0 or -60.0, data in capitals, names escaped or naming other fields, fields twice,
    missing or reordered, lines cut short — give the slow way's bytes and messages."""
    path = tmp_path / "mix.jsonl"
    _jsonl(path, _mix(5, 1200))
    head, *lines = path.read_bytes().splitlines()
    rng = random.Random(5)
    odd = [_odd(rng, line) for line in lines]
    assert sum(a != b for a, b in zip(odd, lines, strict=True)) > 300
    path.write_bytes(b"\n".join([head, *odd]) + b"\n")
    fast = _decode(path, keys, True, monkeypatch)
    assert fast == _decode(path, keys, False, monkeypatch)
    assert "bad line skipped" in fast[2]


def test_template_ciphertexts_are_the_values_encrypted_under_each_nonce() -> None:
    """`_Device.ciphertext(nonce)` (and its hex) is the template's plaintext encrypted under
    that nonce by the cipher's own per-frame `apply`, across 256-nonce blocks and back."""
    from victron_ble_bms.cli.jsonlines import _Device

    cipher = cipher_for(bytes(range(16)))
    for n in (1, 7, 16):
        plain = bytes(range(100, 100 + n))
        head = bytes((0x10, 0, 0xE5, 0xA0, 5, cipher.key_check, 8 + n))
        device = _Device(head, None, int.from_bytes(plain, "little"), cipher, ["", "", "", ""])
        for nonce in (0, 1, 255, 256, 0x1234, 0xFFFF, 3, 0x1235):
            expected = cipher.apply(nonce, plain)
            assert device.ciphertext(nonce) == expected
            assert device.ciphertext_hex(nonce) == expected.hex().encode()
