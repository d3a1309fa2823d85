"""Dashboard under load, headless, in real time (issues 12 and 26: targets beside each figure).

    python benchmarks/dashboard.py [--seconds 10] [--runs 3] [--key-seconds 8]

Headless runs skip what a terminal costs (escape sequences, writing them):
benchmarks/dashboard_terminal.py runs the dashboard in tmux with a 500-device replay and
reads its CPU from /proc — the figures issue 26's targets are about.

Scenarios, each run `--runs` times (min / median / max):
  A  50 devices × 10 Hz: CPU share of one core (process time / wall time while the source runs).
     Since the source sends 100 groups of devices a second (each device on its own phase,
     GROUPS_PER_S) instead of 10 bursts, A measures about twice what it did (issue 26's ~7 %):
     the same code gives 6.4–6.6 % with 10 groups and 12–14.5 % with 100 (main, same session),
     the difference being more wake-ups of the source, timers and screen updates with a few
     cards each instead of one with many.
  B  500 devices × 1 Hz: p95 latency from a reading's arrival to the screen refresh that shows
     it (cards on screen; the others are painted when they scroll into view), and CPU per
     reading beside A's (same reading rate, 10× the cards). B's devices each change 10× less
     often, so fewer card repaints per reading: the cleaner check is A again with 450 more
     silent cards mounted after its 50 (same readings, same cards on screen): ~1 when the
     cost per reading does not depend on the number of cards.
  C  500 devices arriving at once: time until all 500 cards are mounted and painted.
  D  quit with 1,000 cards mounted.
  K  keys at 500 devices × 1 Hz (B's load) for `--key-seconds`: CPU per key = (process
     CPU during the keys − the mean of the equal quiet stretches before and after, same
     readings, no keys) / keys; p95 key→screen (the key posted to the app → the screen
     refresh after the card got focus). Four paths: moves among the cards in view (→ ↓ ← ↑
     every 0.25 s, a square: the two cards repaint); ↓ down the list every 0.25 s and ↓ held
     (20 a second, most of the list's 167 rows): the grid scrolls, each card coming into view
     is rendered; PageDown ×4, End, PageUp, Home every 0.25 s (a screen of cards at a time).
The floor beside A and B: the same readings decoded and applied to the fleet state with no
screen (what any UI must at least spend), measured in the same process. Clocks start when the
source starts (after the warm-up that mounts every card); CPU is counted until the last
readings are on screen. The run waits with plain sleeps (Pilot.pause would post a message to
every widget and force screen updates: a cost per card that a real run does not have).

Textual internals the dashboard relies on for speed (issue 26), each where the public API
has no equivalent: the compositor's map of the widgets painted last (`visible_widgets`, to
leave off-screen cards unpainted), redeclaring Screen's `focused` reactive without
repaint (a focus move repainted the whole screen), and clearing a card's own line cache
(`Widget._styles_cache`) before Textual renders the lines no card has finished yet (cards
share finished lines, DeviceCard.render_lines: its cache may hold lines from before the card
left the view). Tests count `Screen._refresh_layout`.
Relied on since (issue 26, public API used for what Textual does not promise): a card keeps
its look (DeviceCard._look_id) until `refresh()` without regions or `notify_style_update()`
(both overridden), i.e. it trusts that every style change refreshes the whole widget, as
Textual's own per-widget line cache does; two cards' looks are the same when their styles
compare equal (`RenderStyles.__eq__`, their rules) in the same grid at the same size; and a
card's top border for a new title is the one Textual finished for another title of the same
length and style with the text replaced, which assumes the title is drawn as it reads in one
segment (checked for each border: otherwise Textual renders it).
Public but "best left alone" (Textual's words): `Widget.arrange`, the grid's cached arrangement,
read to scroll a card into view without asking Textual for the region of a card out of view
(which places all 500 cards again). The run is wrapped in tui.gc_pace.fewer_collections, as
the CLI runs the dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402
from textual.events import DescendantFocus  # noqa: E402
from victron_ble_bms.tui.app import DashboardApp  # noqa: E402
from victron_ble_bms.tui.gc_pace import fewer_collections  # noqa: E402
from victron_ble_bms.tui.screens.devices import DeviceListScreen  # noqa: E402
from victron_ble_bms.tui.state import Fleet  # noqa: E402

from tests.tui import frames  # noqa: E402
from victron_ble_bms.protocol import encode  # noqa: E402
from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402
from victron_ble_bms.sources.devices import DevicesState  # noqa: E402
from victron_ble_bms.sources.keys import KeyStore  # noqa: E402
from victron_ble_bms.sources.readings import decode_advertisement  # noqa: E402


def fleet_of(devices: int, count: int = 10) -> tuple[KeyStore, list[tuple[str, list[bytes]]]]:
    """Keys and `count` frames per device with rising nonces, as a device sends them (cell 1
    steps by 10 mV, up through ten values and down again). Cycling the nonces too would make
    the device table flag every tenth frame as a replay; a 90 mV jump back to the first value
    would be an unconfirmed change (sources/confirm.py) every 10 s on every device, each
    showing a suspect mark for a second — a fleet of forgery targets, not a marina."""
    keys = KeyStore()
    out = []
    steps = [*range(10), *range(8, 0, -1)]  # 3.30 … 3.39 … 3.31 V
    recs = [frames.lithium((3.30 + v / 100, 3.31, 3.32, 3.33)) for v in steps]
    for i in range(devices):
        key = f"{i % 256:02x}" * 15 + f"{i // 256:02x}"
        address = f"D0:00:00:00:{i // 256:02X}:{i % 256:02X}"
        keys.add(address, key, name=f"Battery {i:04d}")
        out.append(
            (address, [encode(recs[n % len(recs)], key=key, nonce=n + 1, model_id=0xA0E5)
                       for n in range(count)])
        )  # fmt: skip
    return keys, out


# Groups of devices sent per second: 100, each device on its own phase, as a radio hears
# them (issue 26; 10 a second before, which let a frame catch a whole tenth at once).
GROUPS_PER_S = 100


class Paced:
    """`devices × rate` advertisements per second for `seconds`, in real time; with `active`,
    every device is heard once (its card mounted) and then only the first `active` advertise."""

    def __init__(
        self,
        payloads: list[tuple[str, list[bytes]]],
        rate: float,
        seconds: float,
        active: int | None = None,
    ):
        self.payloads, self.rate, self.seconds = payloads, rate, seconds
        self.active = payloads[:active] if active else payloads
        self.started = self.ended = 0.0
        self.cpu_started = 0.0
        self.sent = 0
        self.warm = asyncio.Event()  # set by the runner once every card is mounted

    async def __aiter__(self) -> AsyncIterator[Advertisement]:
        # Warm-up: every device once, so that mounting the cards (scenario C) is not counted
        # as steady-state load; the clocks start after it.
        for address, variants in self.payloads:
            yield Advertisement(time.time(), address, {0x02E1: variants[0]}, rssi=-60)
        await self.warm.wait()
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        # Each device on its own phase within the period, as real devices advertise (not all
        # 500 in one burst): `slices` groups per period, every slices-th device in a group, so
        # the cards on screen (the first in name order) are spread over the phases too.
        period = 1.0 / self.rate
        slices = max(1, round(GROUPS_PER_S * period))
        step = 0
        while time.perf_counter() - self.started < self.seconds:
            tick, part = divmod(step, slices)
            for address, variants in self.active[part::slices]:
                frame = variants[1 + tick % (len(variants) - 1)]
                yield Advertisement(time.time(), address, {0x02E1: frame}, rssi=-60)
                self.sent += 1
            step += 1
            delay = self.started + step * period / slices - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        self.ended = time.perf_counter()


class TimedApp(DashboardApp):
    """Stamps a device's first pending reading and the screen refresh after its frame. Only
    readings of cards on screen count: an off-screen card is painted when it scrolls in."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.pending_since: dict[str, float] = {}
        self.latencies: list[float] = []
        self.off_screen = 0  # readings handed to the screen for cards out of view

    def ingest(self, item: Advertisement) -> None:  # type: ignore[override]
        self.pending_since.setdefault(item.address, time.perf_counter())
        super().ingest(item)

    def _frame(self) -> None:
        starts, self.pending_since = self.pending_since, {}
        super()._frame()
        if not self.is_running or not self.screen_stack:
            return
        # Devices the frame deferred (repainted less than REPAINT_S ago) wait for a later one.
        for address in self._dirty:
            if address in starts:
                self.pending_since[address] = starts.pop(address)

        def painted() -> None:
            now = time.perf_counter()
            screen = self.device_list
            visible = screen.on_screen() if screen is not None else ()
            for address, t in starts.items():
                if screen is not None and screen.cards.get(address) in visible:
                    self.latencies.append(now - t)
                else:
                    self.off_screen += 1

        self.screen.call_after_refresh(painted)


async def run_load(
    devices: int, rate: float, seconds: float, active: int | None = None, banks: int = 0
) -> dict[str, float]:
    keys, payloads = fleet_of(devices, int(rate * seconds) + 3)
    for b in range(banks):  # banks of five of the devices each (benchmarks/dashboard_bank.py)
        keys.add_bank(f"bank {b}", {"members": [a for a, _ in payloads[5 * b : 5 * b + 5]]})
    source = Paced(payloads, rate, seconds, active)
    app = TimedApp(source, keys=keys, toasts=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await mounted(app, devices)
        await pilot.pause(0.5)
        app.latencies.clear()
        app.off_screen = 0
        source.warm.set()
        # Plain sleeps while measuring: Pilot.pause posts a message to every widget on the
        # screen and forces a screen update, a cost per card that no real run has.
        while not source.ended:
            await asyncio.sleep(0.1)
        # The CPU count ends once the last readings are on screen (the frames still pending
        # when the source stops are part of its cost), the wall clock when the source stops.
        while app._dirty or app._frame_pending:
            await asyncio.sleep(0.01)
        await drawn(app)
        cpu = time.process_time() - source.cpu_started
        await pilot.pause(0.3)
    wall = source.ended - source.started
    lat = sorted(app.latencies) or [float("nan")]
    return {
        "cpu_share": 100 * cpu / wall,
        "cpu_per_reading_us": 1e6 * cpu / max(1, source.sent),
        "p95_ms": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "median_ms": 1000 * statistics.median(lat),
        "readings": source.sent,
        "timed": len(app.latencies),
        "off_screen": app.off_screen,
        "frames": app.frames,
    }


class KeyTimedList(DeviceListScreen):
    """Stamps the screen refresh after a card takes the focus a key sent it."""

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        # Textual calls the base class's handler too (it walks the MRO): no super() here.
        app = self.app
        if isinstance(app, KeyTimedApp) and app.key_sent is not None:
            t0, app.key_sent = app.key_sent, None
            self.call_after_refresh(lambda: app.key_latencies.append(time.perf_counter() - t0))


class KeyTimedApp(DashboardApp):
    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.key_sent: float | None = None
        self.key_latencies: list[float] = []

    def get_default_screen(self) -> DeviceListScreen:
        self.device_list = KeyTimedList()
        return self.device_list


# name: (keys sent in turn, seconds between keys); as benchmarks/dashboard_terminal.py
KEY_PATTERNS = {
    "in view": (["right", "down", "left", "up"], 0.25),
    "down the list": (["down"], 0.25),
    "held ↓": (["down"], 0.05),
    "PgDn/End/Home": (["pagedown"] * 4 + ["end", "pageup", "home"], 0.25),
}
PAGE_PATTERNS = {"PgDn/End/Home"}  # page keys, not arrow keys (key_targets)


async def run_keys(devices: int, seconds: float, pattern: str) -> dict[str, float]:
    """CPU per arrow key and key→screen latency, with `devices` × 1 Hz readings flowing."""
    stretch = seconds
    keys, payloads = fleet_of(devices, int(3 * stretch) + 6)
    source = Paced(payloads, 1.0, 3 * stretch + 2)
    app = KeyTimedApp(source, keys=keys, toasts=False)
    cycle, every = KEY_PATTERNS[pattern]
    async with app.run_test(size=(160, 50)) as pilot:
        await mounted(app, devices)
        await pilot.pause(0.5)
        source.warm.set()
        await asyncio.sleep(1.0)  # the readings' steady state

        async def quiet() -> float:
            cpu0 = time.process_time()
            await asyncio.sleep(stretch)
            return time.process_time() - cpu0

        before = await quiet()
        cpu0, sent, t_end = time.process_time(), 0, time.perf_counter() + stretch
        while time.perf_counter() < t_end:
            app.key_sent = time.perf_counter()
            app.post_message(events.Key(cycle[sent % len(cycle)], None))
            sent += 1
            await asyncio.sleep(every)
        burst = time.process_time() - cpu0
        after = await quiet()
    lat = sorted(app.key_latencies) or [float("nan")]
    return {
        "ms_per_key": 1000 * (burst - (before + after) / 2) / sent,
        "keys": sent,
        "moved": len(app.key_latencies),
        "p95_ms": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "median_ms": 1000 * statistics.median(lat),
        "quiet_cpu_share": 100 * (before + after) / 2 / stretch,
    }


def floor_cpu_per_reading(devices: int, readings: int) -> float:
    """µs per reading for what the app does before the screen: the device table judging the
    frame (decode included) and the fleet state update — no Textual."""
    count = readings // devices + 1
    keys, payloads = fleet_of(devices, count)
    fleet, judge = Fleet(), DevicesState(keys)
    advs = [
        Advertisement(float(n), address, {0x02E1: variants[n]}, rssi=-60)
        for n in range(count)
        for address, variants in payloads
    ]
    t0 = time.process_time()
    for adv in advs:
        update = judge.update(adv)
        fleet.update(update.reading or decode_advertisement(adv, keys))
    return 1e6 * (time.process_time() - t0) / len(advs)


async def mounted(app: DashboardApp, devices: int) -> None:
    """Until `devices` cards are mounted and the screen has been painted with them."""
    while app.device_list is None or len(app.device_list.cards) < devices:
        await asyncio.sleep(0.005)
    while not all(c.is_mounted for c in app.device_list.cards.values()):
        await asyncio.sleep(0.005)
    await drawn(app)


async def drawn(app: DashboardApp) -> None:
    """Until the screen has been refreshed with what the app has handed it."""
    done = asyncio.Event()
    app.screen.call_after_refresh(done.set)
    await done.wait()


async def run_mount(devices: int) -> tuple[float, float]:
    keys, payloads = fleet_of(devices)
    arrived = asyncio.Event()

    async def burst() -> AsyncIterator[Advertisement]:
        await arrived.wait()
        for address, variants in payloads:
            yield Advertisement(time.time(), address, {0x02E1: variants[0]}, rssi=-60)

    app = DashboardApp(burst(), keys=keys, toasts=False, tick_s=None)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(0.2)
        t0, cpu0 = time.perf_counter(), time.process_time()
        arrived.set()
        await mounted(app, devices)
        return time.perf_counter() - t0, time.process_time() - cpu0


async def run_quit(devices: int) -> float:
    keys, payloads = fleet_of(devices)

    async def burst() -> AsyncIterator[Advertisement]:
        for address, variants in payloads:
            yield Advertisement(time.time(), address, {0x02E1: variants[0]}, rssi=-60)

    app = DashboardApp(burst(), keys=keys, toasts=False, tick_s=None)
    ctx = app.run_test(size=(160, 50))
    pilot = await ctx.__aenter__()
    while app.device_list is None or len(app.device_list.cards) < devices:
        await pilot.pause(0.05)
    await pilot.pause(0.5)
    t0 = time.perf_counter()
    await pilot.press("q")
    await ctx.__aexit__(None, None, None)
    return time.perf_counter() - t0


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    s = sorted(values)
    return "/".join(fmt.format(v) for v in (s[0], statistics.median(s), s[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--key-seconds", type=float, default=8.0)
    a = ap.parse_args()
    with fewer_collections():  # as `victron-bms dashboard` runs the app
        run_all(a)


def run_all(a: argparse.Namespace) -> None:
    results: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    for run in range(a.runs):
        small = asyncio.run(run_load(50, 10.0, a.seconds))
        big = asyncio.run(run_load(500, 1.0, a.seconds))
        crowd = asyncio.run(run_load(500, 10.0, a.seconds, active=50))
        add("A cpu %", small["cpu_share"])
        add("A µs/reading", small["cpu_per_reading_us"])
        add("A floor µs/reading", floor_cpu_per_reading(50, 5000))
        add("B cpu %", big["cpu_share"])
        add("B p95 ms", big["p95_ms"])
        add("B median ms", big["median_ms"])
        add("B µs/reading", big["cpu_per_reading_us"])
        add("B floor µs/reading", floor_cpu_per_reading(500, 5000))
        add("B/A per reading", big["cpu_per_reading_us"] / small["cpu_per_reading_us"])
        add("A500 µs/reading", crowd["cpu_per_reading_us"])
        add("A500/A per reading", crowd["cpu_per_reading_us"] / small["cpu_per_reading_us"])
        wall, cpu = asyncio.run(run_mount(500))
        add("C mount 500 s", wall)
        add("C mount 500 cpu s", cpu)
        add("D quit 1000 s", asyncio.run(run_quit(1000)))
        moves = {p: asyncio.run(run_keys(500, a.key_seconds, p)) for p in KEY_PATTERNS}
        for p, k in moves.items():
            add(f"K {p} ms/key", k["ms_per_key"])
            add(f"K {p} p95 ms", k["p95_ms"])
            add(f"K {p} median ms", k["median_ms"])
        print(f"run {run + 1}: A {small}, B {big}, A500 {crowd}, K {moves}", file=sys.stderr)

    r = results
    print(f"dashboard benchmark, {a.runs} runs of {a.seconds:g} s (min/median/max)")
    print(
        f"A 50 dev × 10 Hz  CPU share of one core  {spread(r['A cpu %'])} %"
        "   target: stays ~7 % (issue 26; ≤ 30 %, issue 12)"
    )
    print(
        f"  CPU per reading {spread(r['A µs/reading'], '{:.0f}')} µs   "
        f"floor (decode + state, no screen) {spread(r['A floor µs/reading'], '{:.0f}')} µs"
    )
    print(f"B 500 dev × 1 Hz  CPU share of one core  {spread(r['B cpu %'])} %   target ≤ 10 %")
    print(
        f"  p95 reading→screen (cards on screen)  {spread(r['B p95 ms'])} ms"
        "  target < 100 ms"
        f"   (median {spread(r['B median ms'])} ms)"
    )
    print(
        f"  CPU per reading {spread(r['B µs/reading'], '{:.0f}')} µs   "
        f"floor {spread(r['B floor µs/reading'], '{:.0f}')} µs   "
        f"B/A (10× the cards, same reading rate) {spread(r['B/A per reading'], '{:.2f}')}"
        "   target ≈ 1 (independent of the number of cards)"
    )
    print(
        f"  A's readings with 450 more (silent) cards mounted: "
        f"{spread(r['A500 µs/reading'], '{:.0f}')} µs per reading, "
        f"× A {spread(r['A500/A per reading'], '{:.2f}')}   target ≈ 1 (only the cards differ)"
    )
    mount, quit_ = spread(r["C mount 500 s"], "{:.2f}"), spread(r["D quit 1000 s"], "{:.2f}")
    mount_cpu = spread(r["C mount 500 cpu s"], "{:.2f}")
    print(f"C 500 cards mounted and painted   {mount} s wall, {mount_cpu} s CPU   target < 1 s")
    print(f"D quit with 1,000 cards           {quit_} s   (issue 9: 57 s)")
    for p in KEY_PATTERNS:
        keys, cpu_target, p95_target = key_targets(p)
        print(
            f"K 500 dev × 1 Hz, {keys} {p + ':':<15} CPU per key "
            f"{spread(r[f'K {p} ms/key'])} ms{cpu_target}"
            f"p95 key→screen {spread(r[f'K {p} p95 ms'])} ms{p95_target}"
            f"(median {spread(r[f'K {p} median ms'])} ms)"
        )


def key_targets(pattern: str) -> tuple[str, str, str]:
    """What a key pattern's line says beside its figures: issue 26's targets are per arrow key;
    a page key brings a screen of cards (~12) at once and has none (its figures are shown)."""
    if pattern in PAGE_PATTERNS:
        return "page keys ", "   (a screen of cards a key: no target)   ", "   "
    return "arrow keys", "   target ≤ 10 ms   ", "   target < 50 ms   "


if __name__ == "__main__":
    main()
