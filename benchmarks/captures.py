"""Capture reading and `victron-bms decode FILE --format jsonl`: CPU beside independent
readers and an independent pipeline, memory against file size (issue 12).

    python benchmarks/captures.py [--frames 1000000] [--reader-frames 200000] [--runs 3]
                                  [--base DIR]   # also run an earlier version from there
                                  [--only readers|decode|memory] [--formats btsnoop,pcapng,jsonl]

1. Readers: CPU to iterate every advertisement of a btsnoop, pcap, pcapng and JSON-lines
   file, ours (`open_capture`) beside the fastest independent reader we can put beside it:
   a minimal `struct` loop (all formats), dpkt (pcap, pcapng; `pip install dpkt`), scapy's
   raw readers (pcap, pcapng) and `json.loads` (JSON lines) — each followed by the same small
   independent HCI/AD parser, so every reader yields (ts, address, rssi, name, data) per
   advertisement. Target: ours ≤ 1.2× the fastest.
2. `victron-bms decode FILE --keys K --format jsonl > /dev/null` on FRAMES advertisements in
   each of btsnoop, pcapng and JSON lines, a realistic mix (`MIX`): 24 devices with keys and 24
   neighbours' Victron devices without, 8 other advertisers (not Victron), each nonce heard 3
   times (a device advertises several times per nonce, ~1 nonce/s), values changing every ~500
   nonces of a device (≈ 99.8 % of new nonces repeat their device's last payload), RSSI
   varying frame to frame, the other advertisers' data changing with every third frame (as
   a phone's does). Each side in its own
   process, CPU from wait4 (user+sys, interpreter start included), beside
   * the independent pipeline: a plain `struct`/`json` reader + victron-ble `Device.parse` +
     `json.dumps`, every frame of a device with a key; target ≥ 3× ours;
   * `tshark -T fields -e btcommon.eir_ad.entry.data` reading the same file (for JSON lines,
     which tshark cannot read, the pcapng of the same advertisements); target ≥ 3× ours.
   With --base DIR (a checkout, or a copy of the package tree, of an earlier version), that
   version too, and its output compared with ours byte for byte.
3. Memory: peak RSS (VmHWM) of our decode at FRAMES/10 and FRAMES (target: constant).

Ratios are taken within one run (the machine is shared); min/median/max over the runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from victron_ble_bms.protocol import LynxSmartBmsRecord, SmartLithiumRecord, encode
from victron_ble_bms.protocol.crypto import cipher_for
from victron_ble_bms.protocol.enums import (
    AlarmReason,
    AuxInput,
    BalancerStatus,
    BmsError,
    BmsFlags,
    SmartLithiumErrorFlags,
)
from victron_ble_bms.protocol.records import BatteryMonitorRecord
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import JsonlWriter, PcapngWriter, open_capture
from victron_ble_bms.sources.capture.export import hci_event

Adv = tuple[float, str, int | None, str | None, dict[int, bytes]]

# --- the test data: three devices whose values change now and then ------------------------

DEVICES = [
    ("D1:23:45:67:89:AB", "aff4d0995b7d1e176c0c33ecb9e70dcd", 0xA389),
    ("E4:00:00:00:00:01", "11112222333344445555666677778888", 0xA0E5),
    ("E4:00:00:00:00:02", "33334444555566667777888899990000", 0xA3E6),
]
CHANGE_EVERY = 500  # frames of one device between value changes (≈ 99.8 % repeats)


def _record(device: int, version: int) -> object:
    v = version % 50
    if device == 0:
        return BatteryMonitorRecord(
            ttg_min=600 + v,
            battery_voltage_v=12.5 + v / 100,
            alarm_reason=AlarmReason(0),
            aux_raw=0,
            aux_mode=AuxInput.NONE,
            battery_current_a=-1.5 - v / 10,
            consumed_ah=-10.0 - v / 10,
            soc_pct=80.0 - v / 10,
        )
    if device == 1:
        return SmartLithiumRecord(
            bms_flags=BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE,
            error_flags=SmartLithiumErrorFlags(0),
            cell_voltages_v=(3.31, 3.32, 3.30 + v / 100, 3.31, None, None, None, None),
            battery_voltage_v=13.24 + v / 100,
            balancer_status=BalancerStatus.BALANCED,
            battery_temperature_c=20 + v % 5,
        )
    return LynxSmartBmsRecord(
        bms_error=BmsError.NONE,
        ttg_min=600 + v,
        battery_voltage_v=26.2 + v / 100,
        battery_current_a=-8.5,
        io_status=0b010101,
        warnings_alarms=0,
        soc_pct=77.0 - v / 10,
        consumed_ah=-40.0,
        temperature_c=22,
    )


def adverts(n: int) -> Iterator[Advertisement]:
    """n advertisements, round robin over the devices, nonce + 1 per frame of a device."""
    ciphers = [cipher_for(bytes.fromhex(k)) for _, k, _ in DEVICES]
    plain: dict[tuple[int, int], bytes] = {}
    for i in range(n):
        d = i % len(DEVICES)
        k = i // len(DEVICES)
        version = k // CHANGE_EVERY
        if (d, version) not in plain:
            address, key, model = DEVICES[d]
            wire = encode(_record(d, version), key=key, nonce=0, model_id=model)  # type: ignore[arg-type]
            plain[(d, version)] = wire[:8] + ciphers[d].apply(0, wire[8:])
        base = plain[(d, version)]
        nonce = k & 0xFFFF
        data = (
            base[:5] + nonce.to_bytes(2, "little") + base[7:8] + ciphers[d].apply(nonce, base[8:])
        )
        yield Advertisement(
            ts=1_700_000_000.0 + i * 0.01,
            address=DEVICES[d][0],
            manufacturer_data={0x02E1: data},
            rssi=-60 - d,
            address_type="public",
            origin="hci:le_adv_report:ADV_NONCONN_IND",
        )


# --- the realistic mix of section 2 (module docstring) -----------------------------------
MIX_KEYED = 24
MIX_KEYLESS = 24
MIX_OTHER = 8
MIX_REPEATS = 3  # times each nonce is heard
MIX_MODELS = (0xA389, 0xA0E5, 0xA3E6)  # SmartShunt, Smart Lithium, Lynx Smart BMS


def _mix_devices() -> list[tuple[str, str | None, int, str | None]]:
    """(address, key or None, kind 0-2, name) of the Victron devices of the mix."""
    out = []
    for i in range(MIX_KEYED + MIX_KEYLESS):
        address = f"D0:42:00:00:{i >> 8:02X}:{i & 0xFF:02X}"
        key = f"{(i * 0x9E3779B97F4A7C15 + 1) % (1 << 128):032x}" if i < MIX_KEYED else None
        out.append((address, key, i % 3, None))  # names come in scan responses, not here
    return out


def mix_adverts(n: int) -> Iterator[Advertisement]:
    """n advertisements of the mix: round robin over the advertisers, each nonce 3 times."""
    devices = _mix_devices()
    ciphers = [cipher_for(bytes.fromhex(k or "00" * 16)) for _, k, _, _ in devices]
    senders = len(devices) + MIX_OTHER
    plain: dict[tuple[int, int], bytes] = {}
    frame: dict[int, bytes] = {}
    for i in range(n):
        d = i % senders
        k = i // senders
        ts = 1_700_000_000.0 + i * 0.003
        rssi = -40 - (i * 7919) % 50
        if d >= len(devices):  # another maker's advertiser (Apple's company id)
            address = f"5A:00:00:00:00:{d:02X}"
            payload = bytes((0x10, 0x05, d, (k // MIX_REPEATS) & 0xFF, 0x1C, 0x7E))
            yield Advertisement(ts, address, {0x004C: payload}, rssi, None, "random")
            continue
        address, key, kind, name = devices[d]
        nonce = (1000 * d + k // MIX_REPEATS) & 0xFFFF
        if k % MIX_REPEATS == 0 or d not in frame:
            version = (k // MIX_REPEATS) // CHANGE_EVERY
            if (d, version) not in plain:
                wire = encode(  # type: ignore[call-overload]
                    _record(kind, version + d),
                    key=key or "00" * 16,
                    nonce=0,
                    model_id=MIX_MODELS[kind],
                )
                plain[(d, version)] = wire[:8] + ciphers[d].apply(0, wire[8:])
            base = plain[(d, version)]
            frame[d] = (
                base[:5]
                + nonce.to_bytes(2, "little")
                + base[7:8]
                + ciphers[d].apply(nonce, base[8:])
            )
        yield Advertisement(ts, address, {0x02E1: frame[d]}, rssi, name, "public")


def write_mix_keys(path: Path) -> None:
    path.write_text(
        "".join(f'[devices."{a}"]\nkey = "{k}"\n' for a, k, _, _ in _mix_devices() if k)
    )
    path.chmod(0o600)


BTSNOOP_EPOCH_US = 0x00DCDDB30F2F8000


def write_btsnoop(
    path: Path, n: int, source: Callable[[int], Iterator[Advertisement]] = adverts
) -> None:
    with path.open("wb") as f:
        f.write(b"btsnoop\0" + struct.pack(">II", 1, 1002))
        for adv in source(n):
            e = hci_event(adv)
            ts = round(adv.ts * 1e6) + BTSNOOP_EPOCH_US
            f.write(struct.pack(">IIIIq", len(e), len(e), 3, 0, ts) + e)


def write_pcap(path: Path, n: int) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 201))
        for adv in adverts(n):
            pkt = b"\0\0\0\1" + hci_event(adv)
            us = round(adv.ts * 1e6)
            f.write(struct.pack("<IIII", us // 10**6, us % 10**6, len(pkt), len(pkt)) + pkt)


def write_pcapng(
    path: Path, n: int, source: Callable[[int], Iterator[Advertisement]] = adverts
) -> None:
    with PcapngWriter(path) as w:
        for adv in source(n):
            w.write(adv)


def write_jsonl(
    path: Path, n: int, source: Callable[[int], Iterator[Advertisement]] = adverts
) -> None:
    with JsonlWriter(path, source="benchmark") as w:
        for adv in source(n):
            w.write(adv)


# --- independent readers (they share nothing with victron_ble_bms.sources) -----------------
# Each loop is written out for its format on purpose: a shared generic loop would be slower
# and flatter our ratio; these are meant to be the fastest simple readers we can write.


def _ad(data: bytes) -> tuple[dict[int, bytes], str | None]:
    md: dict[int, bytes] = {}
    name = None
    i, n = 0, len(data)
    while i < n:
        ln = data[i]
        if ln == 0 or i + 1 + ln > n:
            break
        t = data[i + 1]
        if t == 0xFF and ln >= 3:
            md[data[i + 2] | data[i + 3] << 8] = data[i + 4 : i + 1 + ln]
        elif t == 0x09:
            name = data[i + 2 : i + 1 + ln].decode("utf-8", "replace")
        i += 1 + ln
    return md, name


def _hci(ev: bytes, ts: float, out: list[Adv]) -> None:
    """An HCI event (from the event code): LE Advertising Reports only."""
    if len(ev) < 4 or ev[0] != 0x3E or ev[2] != 0x02:
        return
    count, i = ev[3], 4
    for _ in range(count):
        addr = ev[i + 2 : i + 8][::-1].hex(":").upper()
        dlen = ev[i + 8]
        md, name = _ad(ev[i + 9 : i + 9 + dlen])
        r = ev[i + 9 + dlen]
        out.append((ts, addr, r - 256 if r > 127 else r, name, md))
        i += 10 + dlen


def struct_btsnoop(path: Path) -> Iterator[Adv]:
    unpack = struct.Struct(">IIIIq").unpack
    out: list[Adv] = []
    with path.open("rb") as f:
        f.read(16)
        read = f.read
        while True:
            hdr = read(24)
            if len(hdr) < 24:
                return
            _, incl, flags, _, ts = unpack(hdr)
            pkt = read(incl)
            if pkt[:1] == b"\x04":
                _hci(pkt[1:], (ts - BTSNOOP_EPOCH_US) / 1e6, out)
                yield from out
                out.clear()


def struct_pcap(path: Path) -> Iterator[Adv]:
    unpack = struct.Struct("<IIII").unpack
    out: list[Adv] = []
    with path.open("rb") as f:
        f.read(24)
        read = f.read
        while True:
            hdr = read(16)
            if len(hdr) < 16:
                return
            sec, usec, incl, _ = unpack(hdr)
            pkt = read(incl)
            if pkt[4:5] == b"\x04":
                _hci(pkt[5:], sec + usec * 1e-6, out)
                yield from out
                out.clear()


def struct_pcapng(path: Path) -> Iterator[Adv]:
    """Little-endian pcapng as our writer and most tools make it: EPBs on interface 0, µs."""
    head = struct.Struct("<II").unpack
    epb = struct.Struct("<IIIII").unpack_from
    out: list[Adv] = []
    with path.open("rb") as f:
        read = f.read
        while True:
            hdr = read(8)
            if len(hdr) < 8:
                return
            btype, total = head(hdr)
            body = read(total - 8)
            if btype == 6:
                _, hi, lo, caplen, _ = epb(body, 0)
                pkt = body[20 : 20 + caplen]
                if pkt[4:5] == b"\x04":
                    _hci(pkt[5:], ((hi << 32) | lo) * 1e-6, out)
                    yield from out
                    out.clear()


def dpkt_reader(path: Path, ng: bool) -> Iterator[Adv]:
    import dpkt

    out: list[Adv] = []
    with path.open("rb") as f:
        reader = dpkt.pcapng.Reader(f) if ng else dpkt.pcap.Reader(f)
        for ts, pkt in reader:
            if pkt[4:5] == b"\x04":
                _hci(pkt[5:], float(ts), out)
                yield from out
                out.clear()


def scapy_reader(path: Path, ng: bool) -> Iterator[Adv]:
    from scapy.utils import RawPcapNgReader, RawPcapReader

    out: list[Adv] = []
    reader = RawPcapNgReader(str(path)) if ng else RawPcapReader(str(path))
    with reader:
        for pkt, meta in reader:
            if pkt[4:5] == b"\x04":
                ts = (
                    meta.sec + meta.usec * 1e-6
                    if not ng
                    else (meta.tshigh << 32 | meta.tslow) * 1e-6
                )
                _hci(pkt[5:], ts, out)
                yield from out
                out.clear()


def json_reader(path: Path) -> Iterator[Adv]:
    loads = json.loads
    with path.open("rb") as f:
        next(f)
        for line in f:
            o = loads(line)
            md = {int(k): bytes.fromhex(v) for k, v in o["manufacturer_data"].items()}
            yield (float(o["ts"]), o["address"], o.get("rssi"), o.get("name"), md)


def ours(path: Path) -> Iterator[Advertisement]:
    return iter(open_capture(path, strict=True))


def _cpu(fn: Callable[[], Iterator[object]]) -> tuple[float, int]:
    start = time.process_time()
    count = 0
    for _ in fn():
        count += 1
    return time.process_time() - start, count


def _mmm(values: list[float], fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def _met(ratios: list[float], target: float, *, below: bool) -> str:
    m = statistics.median(ratios)
    return "MET (median)" if (m <= target if below else m >= target) else "NOT MET (median)"


def bench_readers(tmp: Path, frames: int, runs: int) -> None:
    print(
        f"\n1. readers, {frames:,} advertisements, CPU s min/median/max of {runs} "
        "(ratio = ours / fastest independent, target ≤ 1.20)"
    )
    try:
        import dpkt  # noqa: F401

        have_dpkt = True
    except ImportError:
        have_dpkt = False
    cases: list[
        tuple[str, Callable[[Path, int], None], dict[str, Callable[[Path], Iterator[object]]]]
    ] = [
        ("btsnoop", write_btsnoop, {"struct loop": struct_btsnoop}),
        (
            "pcap",
            write_pcap,
            {"struct loop": struct_pcap, "scapy raw": lambda p: scapy_reader(p, False)},
        ),
        (
            "pcapng",
            write_pcapng,
            {"struct loop": struct_pcapng, "scapy raw": lambda p: scapy_reader(p, True)},
        ),
        ("jsonl", write_jsonl, {"json.loads loop": json_reader}),
    ]
    if have_dpkt:
        cases[1][2]["dpkt"] = lambda p: dpkt_reader(p, False)
        cases[2][2]["dpkt"] = lambda p: dpkt_reader(p, True)
    for name, writer, others in cases:
        path = tmp / f"readers.{name}"
        writer(path, frames)
        times: dict[str, list[float]] = {"ours": [], **{k: [] for k in others}}
        ratios: list[float] = []
        for _ in range(runs):
            t_ours, n_ours = _cpu(partial(ours, path))
            times["ours"].append(t_ours)
            best = float("inf")
            for label, reader in others.items():
                t, n = _cpu(partial(reader, path))
                assert n == n_ours, (label, n, n_ours)
                times[label].append(t)
                best = min(best, t)
            ratios.append(t_ours / best)
        parts = "  ".join(f"{k} {_mmm(v)}" for k, v in times.items())
        print(f"  {name:8} {parts}")
        print(f"  {'':8} ratio {_mmm(ratios)}  target ≤ 1.20  {_met(ratios, 1.2, below=True)}")
        path.unlink()


# --- decode → JSON lines, each pipeline in its own process ---------------------------------

NAIVE = r"""
import json, pathlib, sys
sys.path.insert(0, sys.argv[4])
import captures
from victron_ble.devices import detect_device_type
read = {"btsnoop": captures.struct_btsnoop, "pcapng": captures.struct_pcapng,
        "jsonl": captures.json_reader}[sys.argv[2]]
keys = dict(l.split("=") for l in sys.argv[3].split(","))
devices = {}
out = sys.stdout
enc = lambda o: getattr(o, "name", str(o)).lower()
for ts, address, rssi, name, md in read(pathlib.Path(sys.argv[1])):
    data = md.get(0x02E1)
    if data is None or address not in keys:
        continue
    dev = devices.get(address)
    if dev is None:
        dev = devices[address] = detect_device_type(data)(keys[address])
    parsed = dev.parse(data)
    obj = {"ts": ts, "address": address, "rssi": rssi}
    if name:
        obj["name"] = name
    obj.update(parsed._data)
    out.write(json.dumps(obj, ensure_ascii=False, default=enc) + "\n")
"""
TSHARK = ["tshark", "-n", "-r", "{file}", "-T", "fields", "-e", "btcommon.eir_ad.entry.data"]


def _child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(CPU s user+sys, max RSS MiB, sha256 of stdout) of one child process."""
    digest = hashlib.sha256()
    # cwd: not the checkout, whose package would shadow PYTHONPATH for `python -m`.
    with subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tempfile.gettempdir()
    ) as p:
        assert p.stdout is not None
        for chunk in iter(lambda: p.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
            digest.update(chunk)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} exited {p.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, digest.hexdigest()


WRITERS: dict[str, Callable[..., None]] = {
    "btsnoop": write_btsnoop,
    "pcapng": write_pcapng,
    "jsonl": write_jsonl,
}


def bench_decode(tmp: Path, frames: int, runs: int, base: Path | None, formats: list[str]) -> None:
    print(
        f"\n2. decode FILE --format jsonl > /dev/null, {frames:,} advertisements of the mix "
        f"({MIX_KEYED} devices with keys, {MIX_KEYLESS} without, {MIX_OTHER} not Victron, "
        f"each nonce {MIX_REPEATS}×), process CPU s (user+sys) min/median/max of {runs}"
    )
    keys = tmp / "keys.toml"
    write_mix_keys(keys)
    keyarg = ",".join(f"{a}={k}" for a, k, _, _ in _mix_devices() if k)
    have_tshark = shutil.which("tshark") is not None
    pcapng = tmp / "mix.pcapng"
    for fmt in formats:
        path = tmp / f"mix.{fmt}"
        WRITERS[fmt](path, frames, mix_adverts)
        if fmt == "jsonl" and have_tshark and not pcapng.exists():
            write_pcapng(pcapng, frames, mix_adverts)  # tshark reads no JSON lines
        ours_cmd = [sys.executable, "-m", "victron_ble_bms", "decode", str(path)]
        ours_cmd += ["--keys", str(keys), "--format", "jsonl"]
        naive_cmd = [
            sys.executable,
            "-c",
            NAIVE,
            str(path),
            fmt,
            keyarg,
            str(Path(__file__).parent),
        ]
        tshark_file = pcapng if fmt == "jsonl" else path
        tshark_cmd = [a.replace("{file}", str(tshark_file)) for a in TSHARK]
        rows: dict[str, list[float]] = {"ours": [], "pipeline": []}
        if have_tshark:
            rows["tshark"] = []
        if base is not None:
            rows["base"] = []
        naive_ratio: list[float] = []
        tshark_ratio: list[float] = []
        base_ratio: list[float] = []
        digests = set()
        for _ in range(runs):
            t_ours, rss, d_ours = _child(ours_cmd)
            digests.add(d_ours)
            rows["ours"].append(t_ours)
            t_naive, _, _ = _child(naive_cmd)
            rows["pipeline"].append(t_naive)
            naive_ratio.append(t_naive / t_ours)
            if have_tshark:
                t_tshark, _, _ = _child(tshark_cmd)
                rows["tshark"].append(t_tshark)
                tshark_ratio.append(t_tshark / t_ours)
            if base is not None:
                env = dict(os.environ, PYTHONPATH=str(base))
                t_base, _, d_base = _child(ours_cmd, env)
                rows["base"].append(t_base)
                base_ratio.append(t_base / t_ours)
                digests.add(d_base)
        size = path.stat().st_size / 1e6
        print(f"  {fmt} ({size:.0f} MB)")
        labels = {
            "ours": "ours (victron-bms decode)",
            "pipeline": "pipeline (reader + victron-ble + json.dumps)",
            "tshark": "tshark -T fields" + (" (the pcapng)" if fmt == "jsonl" else ""),
            "base": f"base ({base})",
        }
        for label, values in rows.items():
            print(
                f"    {labels[label]:46} {_mmm(values)} s  "
                f"({frames / statistics.median(values) / 1e3:,.0f}k frames/s)"
            )
        for label, ratios in (("pipeline", naive_ratio), ("tshark", tshark_ratio)):
            if ratios:
                met = _met(ratios, 3.0, below=False)
                print(f"    {label} / ours {_mmm(ratios)}  target ≥ 3.00  {met}")
        if base is not None:
            same = "identical" if len(digests) == 1 else "DIFFERENT"
            print(f"    base / ours {_mmm(base_ratio)}; output of ours and base: {same}")
        path.unlink()
    if pcapng.exists():
        pcapng.unlink()


# The decode command run through a shim that prints the process's own peak RSS (VmHWM of its
# memory map) at exit: ru_maxrss from wait4 would include this big benchmark process, whose
# pages the child had before exec.
PEAK = r"""
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            sys.stderr.write("VMHWM " + line.split()[1] + "\n")
atexit.register(peak)
sys.argv = ["victron-bms", *sys.argv[1:]]
runpy.run_module("victron_ble_bms", run_name="__main__", alter_sys=True)
"""


def bench_memory(tmp: Path, frames: int) -> None:
    print(
        "\n3. memory of our decode → JSON lines (peak RSS of the process; target: constant "
        "in file size)"
    )
    path = tmp / "memory.btsnoop"
    keys = tmp / "keys.toml"
    write_mix_keys(keys)
    cmd = [sys.executable, "-c", PEAK, "decode", str(path), "--keys", str(keys)]
    for n in (frames // 10, frames):
        write_btsnoop(path, n, mix_adverts)
        with subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [*cmd, "--format", "jsonl"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=tempfile.gettempdir(),
        ) as p:
            err = p.communicate()[1].decode()
        peak = next(int(x.split()[1]) for x in err.splitlines() if x.startswith("VMHWM"))
        print(
            f"  {n:>10,} advertisements  {path.stat().st_size / 1e6:7.1f} MB file  "
            f"{peak / 1024:6.1f} MiB"
        )
    path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--reader-frames", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", type=Path, help="an earlier version's tree to compare with")
    ap.add_argument("--formats", default="btsnoop,pcapng,jsonl")
    ap.add_argument("--only", choices=("readers", "decode", "memory"))
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        if args.only in (None, "readers"):
            bench_readers(Path(d), args.reader_frames, args.runs)
        if args.only in (None, "decode"):
            bench_decode(Path(d), args.frames, args.runs, args.base, args.formats.split(","))
        if args.only in (None, "memory"):
            bench_memory(Path(d), args.frames)


if __name__ == "__main__":
    main()
