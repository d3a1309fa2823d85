"""What one `serve` process sustains into a real mosquitto (issue 11):

- readings/s decoded and published (every reading a state message: min_interval 0), and CPU
  per reading — beside, in the same run, the decode-only floor (no MQTT) and a peer: plain
  paho-mqtt publishing the same number of ready-made payloads (the transport's own cost);
- memory with 10,000 devices (tracemalloc: device table + publisher, per device);
- end-to-end latency from an advertisement entering the pipeline to the state message seen by an
  independent subscriber (mosquitto_sub, timestamped as each line arrives).

    python benchmarks/serve.py [RUNS]    # needs mosquitto (scripts/test.sh installs it)
    python benchmarks/serve.py --compare-commit e7132ff^   # beside the last C-helper commit

Prints min / median / max over RUNS (default 3); with --compare-commit REV, REV's figures too
(benchmarks/compare.py), taken just before, beside these.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mqtt.broker import Broker  # noqa: E402
from victron_ble_bms.emulator import DeviceSpec, load_scenario  # noqa: E402
from victron_ble_bms.emulator.engine import Emulator  # noqa: E402
from victron_ble_bms.mqtt.config import MqttConfig, parse_broker_url  # noqa: E402
from victron_ble_bms.mqtt.link import Link  # noqa: E402
from victron_ble_bms.mqtt.publisher import Publisher  # noqa: E402
from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402
from victron_ble_bms.sources.devices import DevicesState  # noqa: E402

MIX = ["lithium-12.8v-200ah", "lithium-25.6v-200ah", "smart-bms-12-200", "lynx-smart-bms-500"]


def frames(devices: int, seconds: int) -> tuple[list[Advertisement], dict[str, bytes]]:
    emu = Emulator(
        [DeviceSpec(MIX[i % 4]) for i in range(devices)],
        load_scenario("normal-day"),
        seed=7,
        speed=None,
        start_ts=time.time(),
    )
    return list(emu.run(seconds)), emu.keys


def readdress(
    advs: list[Advertisement], keys: dict[str, bytes], copies: int
) -> tuple[list[Advertisement], dict[str, bytes]]:
    """Many distinct devices cheaply: the same frames under new addresses (keys copied)."""
    out: list[Advertisement] = []
    new_keys: dict[str, bytes] = {}
    for c in range(copies):
        for adv in advs:
            raw = (c << 24 | int(adv.address.replace(":", ""), 16) & 0xFFFFFF) | 0xC0 << 40
            address = ":".join(f"{raw:012X}"[i : i + 2] for i in range(0, 12, 2))
            new_keys[address] = keys[adv.address]
            out.append(Advertisement(adv.ts, address, adv.manufacturer_data, adv.rssi, adv.name))
    return out, new_keys


class Watcher:
    """mosquitto_sub; records (arrival time, payload) of each state message."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            ["mosquitto_sub", *broker.client_args(), "-t", topic],  # noqa: S607
            stdout=subprocess.PIPE,
        )
        self.seen: list[tuple[float, bytes]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.5)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append((time.monotonic(), line))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


async def _publish_all(
    cfg: MqttConfig, advs: list[Advertisement], keys: dict[str, bytes]
) -> tuple[float, float, int]:
    publisher = Publisher(cfg, keys)
    link = Link(cfg, publisher, say=lambda _m: None)
    devices = DevicesState(keys, max_devices=len(keys) + 10)
    task = asyncio.create_task(link.run())
    while not link.connected:
        await asyncio.sleep(0.01)
    while link.outbox:
        await asyncio.sleep(0.01)
    start_published = link.published
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i, adv in enumerate(advs):
        update = devices.update(adv)
        if update.reading is not None:
            link.send(publisher.reading(update.reading))
        if i % 200 == 0:
            await asyncio.sleep(0)  # let the link drain, as the source's awaits do in serve
    while link.outbox:
        await asyncio.sleep(0.001)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    link.stop()
    await task
    return wall, cpu, link.published - start_published


def throughput(
    broker: Broker, advs: list[Advertisement], keys: dict[str, bytes]
) -> dict[str, float]:
    cfg = MqttConfig(broker=parse_broker_url(broker.url), min_interval_s=0.0, discovery=False)
    wall, cpu, sent = asyncio.run(_publish_all(cfg, advs, keys))
    # Floor: decoding + the device table only.
    devices = DevicesState(keys, max_devices=len(keys) + 10)
    cpu0 = time.process_time()
    for adv in advs:
        devices.update(adv)
    floor_cpu = time.process_time() - cpu0
    # Peer: paho-mqtt alone publishing as many ready-made payloads.
    import paho.mqtt.client as paho

    payload = json.dumps({"ts": 1.0, "cell_voltages_v": [3.3] * 8, "codes": []}).encode()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    infos = [client.publish("peer/x/state", payload) for _ in range(sent)]
    for info in infos[-1:]:
        info.wait_for_publish(30)
    peer_wall, peer_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    client.loop_stop()
    client.disconnect()
    n = len(advs)
    return {
        "readings_per_s": n / wall,
        "cpu_us_per_reading": cpu / n * 1e6,
        "published": sent,
        "floor_cpu_us": floor_cpu / n * 1e6,
        "peer_msgs_per_s": sent / peer_wall,
        "peer_cpu_us_per_msg": peer_cpu / max(1, sent) * 1e6,
    }


def memory(advs: list[Advertisement], keys: dict[str, bytes]) -> float:
    """Bytes per device held by the device table + publisher after every device was heard."""
    cfg = MqttConfig(broker=parse_broker_url("mqtt://127.0.0.1:1"), max_devices=20_000)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    devices = DevicesState(keys, max_devices=20_000)
    publisher = Publisher(cfg, keys)
    for adv in advs:
        update = devices.update(adv)
        if update.reading is not None:
            publisher.reading(update.reading)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(publisher) == len(keys)
    return used / len(keys)


async def _latency(
    broker: Broker, advs: list[Advertisement], keys: dict[str, bytes]
) -> list[float]:
    cfg = MqttConfig(broker=parse_broker_url(broker.url), min_interval_s=0.0, discovery=False)
    publisher = Publisher(cfg, keys)
    link = Link(cfg, publisher, say=lambda _m: None)
    devices = DevicesState(keys)
    watcher = Watcher(broker, f"{cfg.topic_prefix}/+/state")
    task = asyncio.create_task(link.run())
    while not link.connected:
        await asyncio.sleep(0.01)
    sent: dict[tuple[str, int], float] = {}
    for adv in advs:
        t0 = time.monotonic()
        update = devices.update(adv)
        if update.reading is not None and update.reading.frame is not None:
            out = publisher.reading(update.reading)
            if any(m.topic.endswith("/state") for m in out):
                sent[(adv.address, update.reading.frame.nonce)] = t0
            link.send(out)
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    link.stop()
    await task
    watcher.close()
    latencies = []
    for arrived, line in watcher.seen:
        obj = json.loads(line)
        key = (obj.get("address"), obj.get("nonce"))
        if key in sent:
            latencies.append((arrived - sent.pop(key)) * 1000)
    return latencies


def fmt(values: list[float], unit: str, digits: int = 0) -> str:
    return (
        f"min {min(values):,.{digits}f} / median {statistics.median(values):,.{digits}f} / "
        f"max {max(values):,.{digits}f} {unit}"
    )


def measure(runs: int) -> dict[str, list[float]]:
    base, base_keys = frames(100, 40)  # 4,000 readings of 100 devices
    mem_advs, mem_keys = readdress(frames(100, 1)[0], frames(100, 1)[1], 100)  # 10,000 devices
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp)) as broker:
        for _ in range(runs):
            t = throughput(broker, base, base_keys)
            for k, v in t.items():
                results.setdefault(k, []).append(v)
            results.setdefault("bytes_per_device", []).append(memory(mem_advs, mem_keys))
            lat = asyncio.run(_latency(broker, base[:600], base_keys))
            results.setdefault("latency_median_ms", []).append(statistics.median(lat))
            results.setdefault("latency_p99_ms", []).append(
                statistics.quantiles(lat, n=100)[98] if len(lat) > 10 else max(lat)
            )
    results["readings"] = [len(base)]
    results["devices"] = [len(base_keys)]
    return results


def main() -> None:
    from compare import add_options  # beside this script (as run: python benchmarks/…)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=3)
    add_options(parser)  # --compare-commit REV, --json
    args = parser.parse_args()
    runs = args.runs
    earlier = None
    if args.compare_commit:
        from compare import beside, earlier_tree, run_there

        with earlier_tree(args.compare_commit) as (tree, what):
            earlier = run_there(tree, Path(__file__).name, [str(runs), "--json"])
    r = measure(runs)
    if args.json:
        print(json.dumps(r))
        return
    print(
        f"serve → mosquitto, {runs} runs, {r['readings'][0]} readings of {r['devices'][0]} devices "
        f"per run, {statistics.median(r['published']):.0f} state messages (publish on change)"
    )
    print(f"  serve pipeline     : {fmt(r['readings_per_s'], 'readings/s')}")
    print(f"  CPU per reading    : {fmt(r['cpu_us_per_reading'], 'µs')} (decode+publish+send)")
    print(f"  floor: decode only : {fmt(r['floor_cpu_us'], 'µs CPU per reading')}")
    print(f"  peer: paho alone   : {fmt(r['peer_msgs_per_s'], 'msgs/s')}, "
          f"{fmt(r['peer_cpu_us_per_msg'], 'µs CPU per message')}")  # fmt: skip
    print(f"  memory, 10,000 devices: {fmt(r['bytes_per_device'], 'bytes per device')}")
    print(f"  latency adv → independent subscriber: median {fmt(r['latency_median_ms'], 'ms', 2)}")
    print(f"                                         p99    {fmt(r['latency_p99_ms'], 'ms', 2)}")
    if earlier is not None:
        beside(r, earlier, what)  # the earlier commit's were taken just before


if __name__ == "__main__":
    main()
