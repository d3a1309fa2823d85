"""The capture mutation fuzzer, shared by the test suite (a few hundred files) and
`benchmarks/fuzz_captures.py` (≥ 10,000): mutated btsnoop, pcap, pcapng (with option blocks,
two sections, both byte orders) and JSON lines (nested JSON, odd field types, odd addresses)
go through every path a file can take:

* read: `open_capture(...)` — only `CaptureError` may come out, each with a byte offset or
  line number;
* export: what was read → `PcapngWriter` → read back strictly: every advertisement the writer
  took is there again, same address, manufacturer data and RSSI (only `ExportError` may be
  refused);
* output: `victron-bms decode FILE --format table|csv|jsonl` (every 4th file): a status,
  never an exception.

Seeds are made by scapy and by the independent writers in frames.py and below (struct, from
the format documents), never by our writer.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import resource
import signal
import struct
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from victron_ble_bms.cli import main
from victron_ble_bms.cli.decode import EXIT_NOTHING, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from victron_ble_bms.sources.capture import CaptureError, ExportError, PcapngWriter, open_capture

from .frames import (
    ADVS,
    LITHIUM_ADDRESS,
    LITHIUM_DATA,
    LITHIUM_KEY,
    SHUNT_ADDRESS,
    SHUNT_DATA,
    SHUNT_KEY,
    write_btsnoop,
    write_scapy,
)

HANG_S = 10


# --- seeds ---------------------------------------------------------------------------------


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def _opt(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _h4_event(address: str, data: bytes, rssi: int) -> bytes:
    ad = bytes((len(data) + 3, 0xFF, 0xE1, 0x02)) + data + b"\x05\x09Test"
    addr = bytes.fromhex(address.replace(":", ""))[::-1]
    params = bytes((0x02, 1, 0x03, 1)) + addr + bytes((len(ad),)) + ad + struct.pack("b", rssi)
    return struct.pack(">I", 1) + bytes((0x04, 0x3E, len(params))) + params


def pcapng_with_options(e: str = "<") -> bytes:
    """Two sections; SHB, IDB and EPB options (draft-ietf-opsawg-pcapng §4); a Simple
    Packet, an obsolete Packet and an unknown block; byte order `e`."""
    shb_opts = _opt(e, 2, b"x86_64") + _opt(e, 3, b"Linux") + _opt(e, 4, b"fuzz") + _opt(e, 0, b"")
    shb = _block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idb_opts = (
        _opt(e, 2, b"hci0")
        + _opt(e, 9, b"\x06")
        + _opt(e, 14, struct.pack(e + "q", 0))
        + _opt(e, 0, b"")
    )
    idb = _block(e, 1, struct.pack(e + "HHI", 201, 0, 0) + idb_opts)
    idb_ns = _block(e, 1, struct.pack(e + "HHI", 201, 0, 0) + _opt(e, 9, b"\x09"))
    out = shb + idb + idb_ns
    ts = 1_700_000_000_000_000
    for i, (addr, data, rssi) in enumerate(
        [(SHUNT_ADDRESS, SHUNT_DATA, -62), (LITHIUM_ADDRESS, LITHIUM_DATA, -70)]
    ):
        pkt = _h4_event(addr, data, rssi)
        epb_opts = _opt(e, 2, struct.pack(e + "I", 1)) + _opt(e, 1, b"comment") + _opt(e, 0, b"")
        head = struct.pack(e + "IIIII", i % 2, ts >> 32, ts & 0xFFFFFFFF, len(pkt), len(pkt))
        out += _block(e, 6, head + pkt + b"\0" * (-len(pkt) % 4) + epb_opts)
        out += _block(e, 3, struct.pack(e + "I", len(pkt)) + pkt)
        out += _block(e, 2, struct.pack(e + "HHIIII", 0, 0, 0, i, len(pkt), len(pkt)) + pkt)
        out += _block(e, 0x0BAD, b"unknown block")
    return out + out  # a second section with its own interfaces


def _jsonl_seed() -> bytes:
    lines = [{"format": "victron-ble-bms-capture", "version": 1, "source": "fuzz"}]
    for i, (addr, data) in enumerate(
        [(SHUNT_ADDRESS, SHUNT_DATA), (LITHIUM_ADDRESS, LITHIUM_DATA)] * 3
    ):
        lines.append(
            {
                "ts": 1_700_000_000.25 + i,
                "address": addr,
                "rssi": -60 - i,
                "name": "Shunt" if i % 2 == 0 else None,
                "manufacturer_data": {"737": data.hex()},
                "address_type": "public",
                "origin": "emulator",
            }
        )
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def seeds(tmp: Path) -> list[tuple[str, bytes]]:
    files: list[tuple[str, Path]] = [
        (f"btsnoop{d}", write_btsnoop(tmp / f"b{d}", d, ADVS)) for d in (1001, 1002, 2001)
    ]
    for lt in (187, 201, 251, 254, 256, 272):
        files.append((f"pcap{lt}", write_scapy(tmp / f"p{lt}", lt, ADVS, ng=False)))
        files.append((f"pcapng{lt}", write_scapy(tmp / f"n{lt}", lt, ADVS, ng=True)))
    out = [(name, p.read_bytes()) for name, p in files]
    out.append(("pcapng-options-le", pcapng_with_options("<")))
    out.append(("pcapng-options-be", pcapng_with_options(">")))
    out.append(("jsonl", _jsonl_seed()))
    return out


def keys_file(tmp: Path) -> Path:
    f = tmp / "keys.toml"
    f.write_text(
        f'[devices."{SHUNT_ADDRESS}"]\nkey = "{SHUNT_KEY}"\nname = "Shunt"\n'
        f'[devices."{LITHIUM_ADDRESS}"]\nkey = "{LITHIUM_KEY}"\n'
    )
    f.chmod(0o600)
    return f


# --- mutations -----------------------------------------------------------------------------

ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    10**30,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    "",
    "x" * 300,
    "\x1b[31m\u202e\ud800",
    [],
    [1, [2, [3]]],
    {},
    {"a": {"b": {}}},
    "aa:bb:cc:dd:ee:ff",
    "AABBCCDDEEFF",
    "0b7a3c2e-8d5c-4e4f-9a64-1c2d3e4f5a6b",
    "zz:zz",
    {"737": 5},
    {"99999": "00"},
    {"737": "0" * 601},
    {"737": "1000"},
]
FIELDS = ("ts", "address", "rssi", "name", "manufacturer_data", "address_type", "origin")


def _nested(rng: random.Random) -> str:
    depth = rng.choice((10, 500, 999, 1000, 1001, 5000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    return opener * depth + "1" + closer * depth


def mutate_jsonl(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(1, max(2, len(lines) - 1))
        op = rng.random()
        try:
            obj = json.loads(lines[i])
        except (ValueError, RecursionError):
            obj = None
        if op < 0.5 and isinstance(obj, dict):
            obj[rng.choice(FIELDS)] = rng.choice(ODD_VALUES)
            lines[i] = json.dumps(obj).encode()
        elif op < 0.7:
            text = _nested(rng)
            if isinstance(obj, dict) and rng.random() < 0.5:
                lines[i] = json.dumps(obj)[:-1].encode() + b', "deep": ' + text.encode() + b"}"
            else:
                lines[i] = text.encode()
        elif op < 0.8 and isinstance(obj, dict) and obj:
            del obj[rng.choice(list(obj))]
            lines[i] = json.dumps(obj).encode()
        else:
            return mutate_bytes(rng, b"\n".join(lines))
    return b"\n".join(lines)


def mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randrange(len(data)) if data else 0
        if op < 0.4 and data:
            data[pos] = rng.randrange(256)
        elif op < 0.5 and len(data) >= 4:  # a length-like field: small, huge, off by a few
            pos -= pos % 4
            value = rng.choice((0, 1, 4, 8, 12, 16, 28, 0xFFFF, 0xFFFFFFFF, rng.randrange(64)))
            data[pos : pos + 4] = struct.pack(rng.choice("<>") + "I", value)
        elif op < 0.6 and len(data) >= 2:  # an option code/length pair
            pos -= pos % 2
            data[pos : pos + 2] = struct.pack("<H", rng.choice((0, 1, 2, 9, 14, 0xFFFF)))
        elif op < 0.75:
            del data[pos : pos + rng.randint(1, 32)]
        elif op < 0.88:
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        else:
            data = data[: rng.randrange(len(data) + 1)]
    return bytes(data)


def mutate(rng: random.Random, name: str, data: bytes) -> bytes:
    if name == "jsonl" and rng.random() < 0.8:
        return mutate_jsonl(rng, data)
    return mutate_bytes(rng, data)


# --- running -------------------------------------------------------------------------------


@dataclass
class Stats:
    files: int = 0
    read_ok: int = 0
    capture_errors: int = 0
    advertisements: int = 0
    exported: int = 0
    export_refused: int = 0
    decode_runs: int = 0
    slowest_s: float = 0.0  # CPU seconds of the slowest file (hangs: wall-clock alarm)
    slowest_file: str = ""
    hangs: list[str] = field(default_factory=list)
    foreign: list[tuple[str, str]] = field(default_factory=list)  # (seed, exception)
    peak_traced: int = 0

    def max_rss_mib(self) -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _check_error(err: CaptureError) -> None:
    if err.offset is None and err.line is None and "no Bluetooth interface" not in str(err):
        raise AssertionError(f"no byte offset or line number: {err}")


def _export_round_trip(advs: list, out: Path, stats: Stats) -> None:
    written = []
    with PcapngWriter(out) as w:
        for adv in advs:
            try:
                w.write(adv)
            except ExportError:
                stats.export_refused += 1
                continue
            written.append(adv)
    back = list(open_capture(out, strict=True))
    stats.exported += len(written)
    assert len(back) == len(written), (len(back), len(written))
    for a, b in zip(written, back, strict=True):
        assert b.address == a.address, (a.address, b.address)
        assert dict(b.manufacturer_data) == dict(a.manufacturer_data)
        assert b.rssi == (None if a.rssi is None else max(-127, min(126, a.rssi)))


def run_one(path: Path, tmp: Path, keys: Path, stats: Stats, *, decode: bool, trace: bool) -> None:
    errors: list[CaptureError] = []
    advs = []
    if trace:
        tracemalloc.start()
    try:
        try:
            capture = open_capture(path, errors=errors)
            advs = list(capture)
            stats.read_ok += 1
        except CaptureError as exc:
            _check_error(exc)
            stats.capture_errors += 1
        for err in errors:
            _check_error(err)
        stats.advertisements += len(advs)
        _export_round_trip(advs, tmp / "export.pcapng", stats)
        if decode:
            stats.decode_runs += 1
            fmt = ("table", "csv", "jsonl")[stats.decode_runs % 3]
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                status = main(["decode", str(path), "--keys", str(keys), "--format", fmt])
            # Any documented exit status (a mutated address has no key: nothing decoded).
            assert status in (EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_PARTIAL), status
    finally:
        if trace:
            stats.peak_traced = max(stats.peak_traced, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()


def fuzz_captures(
    count: int, rng: random.Random, tmp: Path, *, hang_s: int = HANG_S, keep: Path | None = None
) -> Stats:
    """Mutate `count` files from the seeds and run each through every path; never raises."""
    stats = Stats()
    all_seeds = seeds(tmp)
    keys = keys_file(tmp)
    target = tmp / "mutant"
    # Warm-up (imports of the CLI, rich, …) so the slowest-file figure is about the file.
    target.write_bytes(all_seeds[0][1])
    run_one(target, tmp, keys, Stats(), decode=True, trace=False)
    for i in range(count):
        name, seed = rng.choice(all_seeds)
        data = mutate(rng, name, seed)
        target.write_bytes(data)
        stats.files += 1
        start = time.process_time()  # CPU: the machine may be busy with other work
        try:
            with _deadline(hang_s):
                run_one(target, tmp, keys, stats, decode=i % 4 == 0, trace=i % 50 == 0)
        except _Hang:
            stats.hangs.append(name)
            if keep is not None:
                (keep / f"hang-{i}-{name}").write_bytes(data)
        except Exception as exc:  # noqa: BLE001 - that is what the fuzzer looks for
            stats.foreign.append((name, f"{type(exc).__name__}: {exc}"[:300]))
            if keep is not None:
                (keep / f"foreign-{i}-{name}").write_bytes(data)
        took = time.process_time() - start
        if took > stats.slowest_s:
            stats.slowest_s, stats.slowest_file = took, name
    return stats
