"""Remote receivers under a flood of 100,000 distinct addresses: speed and memory.

    python benchmarks/receivers_flood.py [MESSAGES [all|in-process|end-to-end|keyed|oversized]]
                                                            # default 100,000, all

1. In process: gateway messages (Theengs/OMG BTtoMQTT JSON, each a new address with a Victron
   frame) through `receivers.stream.handle` (parse + merge copies + bookkeeping). Compared in
   the same process with a floor (`json.loads` of the same payloads, nothing else) and with an
   unbounded table (address → Advertisement, what the bookkeeping would hold without its bound);
   and the client's queue: aiomqtt's own asyncio.Queue beside our intake's lanes (intake.py).
2. End to end, when mosquitto is installed: `victron-bms serve --source mqtt` fed the flood by
   `mosquitto_pub -l` (one message per line); its resident memory (VmRSS/VmHWM from /proc)
   before and after the flood.
3. A keyed device under the flood (issue 18): while `mosquitto_pub -l` floods new addresses, an
   independent paho client sends the keyed device's raw frames (a changed reading every 1.1 s,
   serve publishes a device at most once a second) and another paho client reads its state:
   how many of its readings serve published, their delay (state seen − frame's `ts`: p50 / p95 /
   max), and how many messages serve says it dropped. Run it on main and on a branch to compare
   (the machine is shared: figures vary from run to run). Twice: with mosquitto as installed
   (it drops beyond 1,000 messages waiting for a slow client, in arrival order: a loss no
   client can prevent) and keeping every message (what is lost then is lost by serve).
4. Oversized messages (issue 18): serve's RSS before and after 30 messages of 10 MB on the raw
   topic (mosquitto_pub -f), and whether serve received them at all (its "larger than" line).

Each in-process figure is min/median/max of 3 runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mqtt.broker import Broker  # noqa: E402
from tests.tui import frames  # noqa: E402
from victron_ble_bms.protocol import COMPANY_ID  # noqa: E402
from victron_ble_bms.receivers import Receivers, encode_raw, raw_topic  # noqa: E402
from victron_ble_bms.receivers.formats import parse_message  # noqa: E402
from victron_ble_bms.receivers.stream import handle  # noqa: E402
from victron_ble_bms.sources.keys import KeyStore  # noqa: E402

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

    import asyncio

    import aiomqtt

    from victron_ble_bms.receivers.intake import Intake

    wrapped = [aiomqtt.Message(t, p, 0, False, 0, None) for t, p in batch]

    def plain_queue() -> None:  # aiomqtt's own queue: first come, first served
        queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        for message in wrapped:
            queue.put_nowait(message)

    def intake() -> None:  # sorted into lanes before any parsing (what serve's client does)
        queue = Intake(first={"AA:BB:CC:DD:EE:FF"}.__contains__, tracker=Receivers()).queue_type()()
        for message in wrapped:
            queue.put_nowait(message)

    three("floor: json.loads only", n, floor)
    three("client queue: asyncio.Queue (aiomqtt's)", n, plain_queue)
    three("client queue: intake lanes (ours)", n, intake)
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


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def keyed_under_flood(n: int, floods: int = 4, *, broker_drops: bool = True) -> None:
    """Section 3 of the module docstring. `broker_drops=False`: mosquitto keeps every message
    for a slow client (max_queued_messages 0) instead of dropping beyond 1,000, so that what is
    lost is lost by serve."""
    import paho.mqtt.client as paho

    pub_exe = shutil.which("mosquitto_pub")
    if not pub_exe:
        print("keyed device under a flood: skipped (mosquitto-clients not installed)")
        return
    tmp = Path(tempfile.mkdtemp())
    keys = KeyStore(tmp / "keys.toml")
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="bow")
    keys.save()
    node = frames.BOW.replace(":", "").lower()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg"))
    seen: dict[float, float] = {}  # frame ts -> when its state arrived
    sent: list[float] = []
    stop = threading.Event()

    def on_state(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            seen.setdefault(float(json.loads(msg.payload)["ts"]), time.time())

    broker = Broker(tmp / "broker")
    if not broker_drops:
        with broker.config.open("a") as conf:
            conf.write("max_queued_messages 0\n")
    with broker:
        reader = paho.Client(paho.CallbackAPIVersion.VERSION2)
        reader.on_message = on_state
        reader.connect(broker.host, broker.port)
        reader.subscribe(f"victron-ble-bms/{node}/state")
        reader.loop_start()
        serve = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"]
            + ["--mqtt", broker.url, "--keys", str(keys.path), "--duration", "600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )

        def keyed() -> None:
            sender = paho.Client(paho.CallbackAPIVersion.VERSION2)
            sender.connect(broker.host, broker.port)
            sender.loop_start()
            i = 0
            while not stop.is_set():
                i += 1
                record = dataclasses.replace(frames.bow(), battery_temperature_c=10 + i % 2)
                adv = frames.advert(frames.BOW, record, nonce=i, ts=time.time())
                sender.publish(raw_topic("victron-ble-bms", "bow-pi"), encode_raw(adv))
                sent.append(adv.ts)
                stop.wait(1.1)
            sender.loop_stop()
            sender.disconnect()

        try:
            time.sleep(3)  # serve connects and subscribes
            before = _rss(serve.pid)
            thread = threading.Thread(target=keyed)
            thread.start()
            time.sleep(2.5)
            lines = [p for _, p in messages(n)]
            start = time.perf_counter()
            pubs = [
                subprocess.Popen(  # noqa: S603
                    [pub_exe, *broker.client_args(), "-t", f"home/gw{g}/BTtoMQTT/x", "-l"],
                    stdin=subprocess.PIPE,
                )
                for g in range(floods)
            ]
            for g, pub in enumerate(pubs):
                assert pub.stdin is not None
                pub.stdin.write(b"\n".join(lines[g::floods]) + b"\n")
                pub.stdin.close()
            for pub in pubs:
                pub.wait()
            flood_s = time.perf_counter() - start
            time.sleep(12)  # the keyed device keeps sending while serve catches up
            stop.set()
            thread.join()
            time.sleep(3)
            broker_said = broker.log_text()
            after = _rss(serve.pid)
            alive = serve.poll() is None
        finally:
            stop.set()
            serve.terminate()
            err = serve.communicate(timeout=30)[1].decode(errors="replace")
            reader.loop_stop()
    shutil.rmtree(tmp, ignore_errors=True)
    # A reading counts as shown once a state at least as new is out: serve publishes a device
    # at most once a second and a change held back is replaced by a newer one, so readings that
    # arrive bunched after a backlog are superseded, not lost.
    delays, lost = [], []
    for ts in sent:
        shown = [arrived for state_ts, arrived in seen.items() if state_ts >= ts]
        if shown:
            delays.append(min(shown) - ts)
        else:
            lost.append(f"{ts - sent[0]:.1f}")
    itself = sum(ts in seen for ts in sent)
    which = "mosquitto as installed" if broker_drops else "mosquitto keeping every message"
    print(
        f"[{which}] keyed device under a flood of {n:,} new addresses ({floods} publishers, "
        f"sent in {flood_s:.1f} s): {len(delays)} of {len(sent)} readings shown ({itself} as "
        f"such, the others by a newer one); delay until shown p50 "
        f"{_percentile(delays, 0.5):.2f} s, p95 {_percentile(delays, 0.95):.2f} s, max "
        f"{max(delays, default=float('nan')):.2f} s"
    )
    dropped = [int(m) for m in re.findall(r"dropped (\d+)", err)]
    shed = [line for line in err.splitlines() if "dropped" in line or "flood" in line]
    print(
        f"  serve RSS {before[0]} MB before, {after[0]} MB after (high-water {after[1]} MB); "
        f"still running: {alive}; dropped (its last count): {max(dropped, default=0):,}"
    )
    print("  serve said: " + (" | ".join(shed[-2:]) or "nothing about dropping"))
    if os.environ.get("BENCH_DEBUG"):
        print(err)
    broker_dropped = broker_said.count("dropped")
    print(
        f"  readings never shown were sent at (s after the first): {', '.join(lost) or '-'}"
        f"; mosquitto log lines about dropping: {broker_dropped}"
    )


def oversized(count: int = 30, size: int = 10 * 1024 * 1024) -> None:
    """Section 4 of the module docstring."""
    pub_exe = shutil.which("mosquitto_pub")
    if not pub_exe:
        print("oversized messages: skipped (mosquitto-clients not installed)")
        return
    tmp = Path(tempfile.mkdtemp())
    keys = KeyStore(tmp / "keys.toml")
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="bow")
    keys.save()
    big = tmp / "big.json"
    big.write_bytes(b'{"v": 1, "address": "' + frames.BOW.encode() + b'", "x": "' + b"a" * size)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg"))
    with Broker(tmp / "broker") as broker:
        serve = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"]
            + ["--mqtt", broker.url, "--keys", str(keys.path), "--duration", "600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            time.sleep(3)
            before = _rss(serve.pid)
            start = time.perf_counter()
            for _ in range(count):
                subprocess.run(  # noqa: S603
                    [pub_exe, *broker.client_args(), "-t", raw_topic("victron-ble-bms", "pi")]
                    + ["-f", str(big)],
                    check=True,
                )
            sent = time.perf_counter() - start
            time.sleep(3)
            after = _rss(serve.pid)
            alive = serve.poll() is None
        finally:
            serve.terminate()
            err = serve.communicate(timeout=30)[1].decode(errors="replace")
    shutil.rmtree(tmp, ignore_errors=True)
    received = re.findall(r"larger than 4096 \((\d+) so far\)", err)
    print(
        f"oversized: {count} messages of {size / 1e6:.1f} MB sent in {sent:.1f} s; serve RSS "
        f"{before[0]} MB before, {after[0]} MB after (high-water {after[1]} MB); "
        f"still running: {alive}; refused after reading (its last count): "
        f"{received[-1] if received else 0}"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    only = sys.argv[2] if len(sys.argv) > 2 else "all"
    if only in ("all", "in-process"):
        in_process(n)
    if only in ("all", "end-to-end"):
        end_to_end(n)
    if only in ("all", "keyed"):
        keyed_under_flood(n)
        keyed_under_flood(n, broker_drops=False)
    if only in ("all", "oversized"):
        oversized()


if __name__ == "__main__":
    main()
