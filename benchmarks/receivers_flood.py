"""Remote receivers under a flood of 100,000 distinct addresses: speed and memory.

    python benchmarks/receivers_flood.py [MESSAGES]        # default 100,000

1. In process: gateway messages (Theengs/OMG BTtoMQTT JSON, each a new address with a Victron
   frame) through `receivers.stream.handle` (parse + merge copies + bookkeeping). Compared in
   the same process with a floor (`json.loads` of the same payloads, nothing else) and with an
   unbounded table (address → Advertisement, what the bookkeeping would hold without its bound).
2. End to end, when mosquitto is installed: `victron-bms serve --source mqtt` fed the flood by
   `mosquitto_pub -l` (one message per line); its resident memory (VmRSS/VmHWM from /proc)
   before and after the flood.

Each in-process figure is min/median/max of 3 runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.receivers import Receivers
from victron_ble_bms.receivers.formats import parse_message
from victron_ble_bms.receivers.stream import handle
from victron_ble_bms.sources.keys import KeyStore

FRAME_HEX = "e1021000a0a305341274aabbccddeeff00112233445566778899"


def messages(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        mac = f"{0xC0_00_00_00_00_00 + i:012X}"
        address = ":".join(mac[j : j + 2] for j in range(0, 12, 2))
        payload = {"id": address, "rssi": -70, "manufacturerdata": FRAME_HEX}
        out.append((f"home/gw{i % 4}/BTtoMQTT/{mac}", json.dumps(payload).encode()))
    return out


def timed(fn: Callable[[], object]) -> tuple[float, int, object]:
    """Speed without tracing (it slows Python down several times), then memory with it."""
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, result


def three(label: str, n: int, fn: Callable[[], object]) -> object:
    runs = [timed(fn) for _ in range(3)]
    rates = sorted(n / r[0] for r in runs)
    peaks = sorted(r[1] / 1e6 for r in runs)
    print(
        f"  {label:<44} {rates[0]:>9,.0f} / {statistics.median(rates):>9,.0f} / "
        f"{rates[-1]:>9,.0f} msg/s   peak {peaks[0]:6.1f} / {statistics.median(peaks):6.1f} / "
        f"{peaks[-1]:6.1f} MB"
    )
    return runs[-1][2]


def in_process(n: int) -> None:
    batch = messages(n)
    print(f"{n:,} messages, each a new address (min / median / max of 3 runs)")

    def floor() -> None:
        for _, payload in batch:
            json.loads(payload)

    def ours() -> Receivers:
        tracker = Receivers()
        for topic, payload in batch:
            handle(tracker, topic, payload, 0.0)
        return tracker

    def unbounded() -> dict[str, object]:
        table: dict[str, object] = {}
        for topic, payload in batch:
            heard = parse_message(topic, payload, 0.0)
            table[heard.advertisement.address] = heard.advertisement
        return table

    three("floor: json.loads only", n, floor)
    tracker = three("receivers: parse + merge (bounded)", n, ours)
    table = three("comparison: parse + unbounded table", n, unbounded)
    assert isinstance(tracker, Receivers) and isinstance(table, dict)
    print(
        f"  devices kept: {len(tracker.devices):,} (bound {tracker.max_devices:,}; "
        f"{tracker.counters.evicted_devices:,} evicted) vs {len(table):,} unbounded; "
        f"receivers {len(tracker.receivers)}"
    )
    assert COMPANY_ID == 0x02E1


def _rss(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def end_to_end(n: int) -> None:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    pub = shutil.which("mosquitto_pub")
    if not (Path(mosquitto).exists() and pub):
        print("end to end: skipped (mosquitto / mosquitto-clients not installed)")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    conf = tmp / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}")
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL)  # noqa: S603
    time.sleep(0.5)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg"))
    KeyStore(tmp / "keys.toml").save()  # no keys: every flooded address is unknown
    serve = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"]
        + ["--mqtt", f"mqtt://127.0.0.1:{port}", "--keys", str(tmp / "keys.toml")]
        + ["--duration", "600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        time.sleep(3)
        before = _rss(serve.pid)
        lines = b"\n".join(p for _, p in messages(n)) + b"\n"
        start = time.perf_counter()
        for gw in range(4):  # one mosquitto_pub per gateway topic (-l: a message per line)
            part = lines.split(b"\n")[gw::4]
            subprocess.run(  # noqa: S603
                [pub, "-p", str(port), "-t", f"home/gw{gw}/BTtoMQTT/flood", "-l"],
                input=b"\n".join(x for x in part if x) + b"\n",
                check=True,
            )
        sent = time.perf_counter() - start
        time.sleep(5)  # let serve drain its queue
        after = _rss(serve.pid)
        alive = serve.poll() is None
    finally:
        serve.terminate()
        err = serve.communicate(timeout=20)[1].decode(errors="replace")
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"end to end: {n:,} messages sent in {sent:.1f} s; serve RSS {before[0]} MB before, "
        f"{after[0]} MB after (high-water {after[1]} MB); still running: {alive}"
    )
    said = err.strip().splitlines()
    print(f"  serve wrote {len(said)} lines to stderr; the last: " + " | ".join(said[-3:]))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    in_process(n)
    end_to_end(n)


if __name__ == "__main__":
    main()
