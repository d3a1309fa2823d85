"""What a real Home Assistant makes of `serve`'s MQTT discovery (run by scripts/ha_check.sh).

Runs inside the Debian trixie tree that ha_check.sh prepares, with that tree's Home Assistant
venv (its aiohttp is the HTTP/websocket client here). Starts a mosquitto, an unmodified Home
Assistant Core (onboarded over HTTP, the MQTT integration added through its config flow) and two
`victron-bms serve`s: the emulator demo (prefix victron-ble-bms-demo/<instance>) and a keyed
replay of an emulated parallel bank (prefix victron-ble-bms) whose keys file declares a second
bank with a member that never speaks. Then it compares every retained discovery document on the
broker (read with mosquitto_sub) with what Home Assistant reports through its own APIs
(websocket device and entity registries, REST states, its log file), stops each serve cleanly
and checks what the README promises for that. One line per check, a summary, status 1 on any
failure. Known answers are Home Assistant's; our code is only the thing under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp

DISCOVERY = "homeassistant"
KEYED_PREFIX = "victron-ble-bms"
DEMO_INSTANCE = "ha-check-demo"
KEYED_INSTANCE = "ha-check"
DEMO_PREFIX = f"victron-ble-bms-demo/{DEMO_INSTANCE}"
# A device in the keys file that is never heard, member of a declared bank: that bank can never
# be fully known, so its problem sensor must stay unknown (README "Topic contract").
SILENT = "C0:FF:EE:00:00:01"
SILENT_KEY = "00112233445566778899aabbccddeeff"
# Log lines that concern us: the MQTT integration, discovery, templates, our topics and ids.
OURS = re.compile(r"mqtt|discovery|template|victron|bms|bank|bridge|homeassistant/", re.I)


class Report:
    def __init__(self, quiet: bool = False) -> None:
        self.failed: list[str] = []
        self.passed = 0
        self.quiet = quiet

    def check(self, ok: bool, text: str) -> bool:
        if not self.quiet:
            print(("PASS  " if ok else "FAIL  ") + text, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(text)
        return ok

    def info(self, text: str) -> None:
        if not self.quiet:
            print("INFO  " + text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def retained(port: int, topics: Iterable[str], wait_s: float = 4.0) -> dict[str, str]:
    """Every retained message under `topics`, as an independent client sees it."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-v", "--retained-only"]
    for t in topics:
        args += ["-t", t]
    args += ["-W", str(max(1, round(wait_s)))]
    out = subprocess.run(args, capture_output=True, text=True, check=False).stdout  # noqa: S603
    found: dict[str, str] = {}
    for line in out.splitlines():
        topic, _, payload = line.partition(" ")
        found[topic] = payload
    return found


class HomeAssistant:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post(self, path: str, body: Any = None, timeout: float = 60) -> Any:
        async with self.session.post(
            self.base + path,
            json=body if body is not None else {},
            headers=self._headers(),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as r:
            text = await r.text()
            if r.status >= 400:
                raise RuntimeError(f"POST {path}: HTTP {r.status}: {text[:300]}")
            return json.loads(text) if text else None

    async def get(self, path: str) -> Any:
        async with self.session.get(self.base + path, headers=self._headers()) as r:
            text = await r.text()
            if r.status >= 400:
                raise RuntimeError(f"GET {path}: HTTP {r.status}: {text[:300]}")
            return json.loads(text)

    async def wait_up(self, timeout_s: float) -> None:
        """Until HA answers: before onboarding its onboarding view, after it the API (the
        onboarding views are gone once onboarding is done)."""
        path = "/api/" if self.token else "/api/onboarding"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                async with self.session.get(self.base + path, headers=self._headers()) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Home Assistant did not answer within {timeout_s:.0f} s")
            await asyncio.sleep(2)

    async def onboard(self) -> None:
        client_id = self.base + "/"
        user = await self.post(
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "ha-check",
                "username": "ha-check",
                "password": "ha-check-password",
                "language": "en",
            },
        )
        async with self.session.post(
            self.base + "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": user["auth_code"],
                "client_id": client_id,
            },
        ) as r:
            self.token = (await r.json())["access_token"]
        await self.post("/api/onboarding/core_config")
        await self.post("/api/onboarding/analytics")
        await self.post(
            "/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": client_id + "?auth_callback=1"},
        )

    async def add_mqtt(self, broker_port: int) -> dict[str, Any]:
        # The first time, Home Assistant installs the integration's requirements (paho-mqtt).
        step = await self.post("/api/config/config_entries/flow", {"handler": "mqtt"}, timeout=900)
        for _ in range(4):
            if step.get("type") != "form" and step.get("type") != "menu":
                break
            flow = f"/api/config/config_entries/flow/{step['flow_id']}"
            if step["type"] == "menu":
                step = await self.post(flow, {"next_step_id": "broker"})
            else:
                step = await self.post(flow, {"broker": "127.0.0.1", "port": broker_port})
        return dict(step)

    async def ws(self, *requests: dict[str, Any]) -> list[Any]:
        async with self.session.ws_connect(self.base + "/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json()).get("type") != "auth_ok":
                raise RuntimeError("websocket authentication failed")
            results = []
            for n, req in enumerate(requests, 1):
                await ws.send_json({"id": n, **req})
                while True:
                    msg = await ws.receive_json()
                    if msg.get("id") == n and msg.get("type") == "result":
                        break
                if not msg.get("success"):
                    raise RuntimeError(f"{req['type']}: {msg.get('error')}")
                results.append(msg["result"])
            return results

    async def snapshot(self) -> tuple[list[Any], list[Any], dict[str, Any]]:
        devices, entities = await self.ws(
            {"type": "config/device_registry/list"}, {"type": "config/entity_registry/list"}
        )
        states = {s["entity_id"]: s for s in await self.get("/api/states")}
        return devices, entities, states


# --- what a component's state should be, from the raw JSON serve published ------------------

_GET = re.compile(r"value_json\.get\('([^']+)'\)")
_IO = re.compile(r"io\.get\('([^']+)'\)")
_INDEX = re.compile(r"l\[(\d+)\]")


def raw_value(cmp: dict[str, Any], payload: str | None) -> tuple[bool, Any]:
    """(known, value): the value serve published for this component, and whether it is one
    (not null, missing or not available). Read from the template's first key, plainly."""
    if payload is None:
        return False, "no retained state"
    template = cmp.get("value_template")
    if template is None:  # a plain payload (availability)
        return payload not in ("", "None"), payload
    try:
        doc = json.loads(payload)
    except ValueError:
        return False, f"not JSON: {payload[:60]!r}"
    keys = _GET.findall(template)
    if not keys or not isinstance(doc, dict):
        return False, "template reads no key"
    value = doc.get(keys[0])
    io = _IO.search(template)
    index = _INDEX.search(template)
    if io:
        value = value.get(io.group(1)) if isinstance(value, dict) else None
        return value in ("yes", "no"), value
    if index:
        i = int(index.group(1))
        value = value[i] if isinstance(value, list) and len(value) > i else None
        return isinstance(value, int | float) and not isinstance(value, bool), value
    if keys[0] == "key_status":  # "Data status": known whenever key_status is a status
        return isinstance(value, str), value
    return value is not None, value


def same(state: str, value: Any) -> bool | None:
    """Whether HA's state shows the value serve sent (None: not comparable plainly)."""
    if isinstance(value, bool):
        return state == ("on" if value else "off")
    if value in ("yes", "no"):  # a Lynx IO bit
        return state == ("on" if value == "yes" else "off")
    if isinstance(value, int | float):
        try:
            return abs(float(state) - value) < 1e-6
        except ValueError:
            return False
    if isinstance(value, str):
        return state == value
    return None


def bank_problem_expected(raw: Any) -> str:
    """What HA should show for a bank's problem binary sensor, from the bank's JSON."""
    return {True: "on", False: "off"}.get(raw, "unknown") if isinstance(raw, bool) else "unknown"


# --- the run ----------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="ha-check-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.report = Report()
        self.mqtt_port = free_port()
        self.ha_port = free_port()

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(  # noqa: S603
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def stop(self, name: str, timeout_s: float = 30) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def close(self) -> None:
        for name in list(self.procs)[::-1]:
            self.stop(name)

    # -- set-up -------------------------------------------------------------------------------

    def start_broker(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.start("mosquitto", ["mosquitto", "-c", str(conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.mqtt_port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("mosquitto did not start")

    def start_ha(self, fresh: bool = True) -> Path:
        config = self.dir / "ha"
        config.mkdir(exist_ok=not fresh)
        (config / "configuration.yaml").write_text(
            "homeassistant:\n  name: ha-check\n  time_zone: UTC\n  unit_system: metric\n"
            "  latitude: 0\n  longitude: 0\n  elevation: 0\n  country: NL\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.ha_port}\n"
            "api:\nconfig:\nonboarding:\n"
            "logger:\n  default: info\n"
        )
        env = dict(os.environ, UV_NATIVE_TLS="1")
        env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        self.start("hass", [self.args.hass, "-c", str(config)], env)
        return config / "home-assistant.log"

    def make_capture(self) -> tuple[Path, Path]:
        capture = self.dir / "bank.jsonl"
        subprocess.run(  # noqa: S603
            [
                self.args.victron_bms,
                "emulate",
                "--scenario",
                "parallel-bank",
                "--advertise",
                "none",
                "--capture",
                str(capture),
                "--duration",
                "3600",
                "--speed",
                "max",
                "--seed",
                "1",
            ],
            check=True,
            capture_output=True,
        )
        keys = Path(str(capture) + ".keys.toml")
        text = keys.read_text()
        # The scenario's bank loses one battery to a second bank, beside a member never heard
        # (a member in two banks would make both unknown: a misdeclared bank).
        line = re.search(r"^members = (\[.*\])$", text, re.M)
        soc = re.search(r'^soc_source = "(.*)"$', text, re.M)
        assert line is not None and soc is not None  # noqa: S101 - the scenario has a bank
        members = json.loads(line.group(1))
        moved = next(m for m in members if m != soc.group(1))
        members.remove(moved)
        text = text.replace(line.group(0), f"members = {json.dumps(members)}")
        keys.write_text(
            text
            + f'\n[devices."{SILENT}"]\nkey = "{SILENT_KEY}"\nname = "silent battery"\n'
            + '\n[banks.with-silent-member]\nlayout = "parallel"\n'
            + f"members = {json.dumps([moved, SILENT])}\n"
        )
        return capture, keys

    def start_serves(self, capture: Path, keys: Path) -> None:
        mqtt = f"mqtt://127.0.0.1:{self.mqtt_port}"
        empty = self.dir / "serve.toml"
        empty.write_text("")
        common = ["serve", "--mqtt", mqtt, "--config", str(empty)]
        self.start(
            "serve-demo",
            [
                self.args.victron_bms,
                *common,
                "--source",
                "emulator",
                "--instance-id",
                DEMO_INSTANCE,
            ],
        )
        self.start(
            "serve-keyed",
            [
                self.args.victron_bms,
                *common,
                "--source",
                "capture",
                str(capture),
                "--keys",
                str(keys),
                "--instance-id",
                KEYED_INSTANCE,
            ],
        )

    # -- checks -------------------------------------------------------------------------------

    def configs(self) -> dict[str, dict[str, Any]]:
        found = retained(self.mqtt_port, [f"{DISCOVERY}/#"])
        out = {}
        for topic, payload in found.items():
            if payload:
                out[topic] = json.loads(payload)
        return out

    def check_log(self, log: Path, since: int, when: str) -> None:
        text = log.read_text(errors="replace") if log.exists() else ""
        lines = text.splitlines()[since:]
        bad, other = [], []
        for i, line in enumerate(lines):
            if " WARNING " not in line and " ERROR " not in line and " CRITICAL " not in line:
                continue
            # A traceback's lines follow its message: judge them together.
            block = [line] + [
                follow for follow in lines[i + 1 : i + 30] if not re.match(r"\d{4}-\d\d-", follow)
            ]
            (bad if OURS.search("\n".join(block)) else other).append(line)
        self.report.check(
            not bad,
            f"Home Assistant's log {when}: {len(bad)} warning/error line(s) about MQTT, discovery, "
            "templates or our topics/entities",
        )
        for line in bad[:40]:
            print("      " + line[:400])
        for line in other[:20]:
            self.report.info("other log line (not ours): " + line[:300])

    def check_discovery(
        self,
        configs: dict[str, dict[str, Any]],
        devices: list[Any],
        entities: list[Any],
        states: dict[str, Any],
        raw: dict[str, str],
    ) -> None:
        by_ident = {}
        for dev in devices:
            for domain, ident in dev.get("identifiers", []):
                if domain == "mqtt":
                    by_ident[ident] = dev
        by_unique = {e["unique_id"]: e for e in entities if e.get("platform") == "mqtt"}
        n_entities = 0
        unknown_null: list[str] = []
        for topic, cfg in sorted(configs.items()):
            dev_cfg = cfg.get("device") or cfg.get("dev") or {}
            ident = (dev_cfg.get("identifiers") or [None])[0]
            dev = by_ident.get(ident)
            name = dev_cfg.get("name")
            if not self.report.check(dev is not None, f"{topic}: HA device {name!r}"):
                continue
            assert dev is not None  # noqa: S101
            via = dev_cfg.get("via_device")
            if via:
                parent = by_ident.get(via)
                self.report.check(
                    parent is not None and dev.get("via_device_id") == parent["id"],
                    f"  {name!r} is connected via HA device {via!r}",
                )
            cmps = cfg.get("components") or cfg.get("cmps") or {}
            missing, wrong_dev, unavailable, bad_unknown = [], [], [], []
            for cid, cmp in cmps.items():
                ent = by_unique.get(cmp.get("unique_id"))
                if ent is None:
                    missing.append(cid)
                    continue
                n_entities += 1
                if ent.get("device_id") != dev["id"]:
                    wrong_dev.append(cid)
                state = states.get(ent["entity_id"], {}).get("state")
                known, value = raw_value(cmp, raw.get(cmp.get("state_topic", "")))
                if state is None or state == "unavailable":
                    unavailable.append(f"{ent['entity_id']}={state}")
                elif state == "unknown":
                    if known or value == "template reads no key":
                        bad_unknown.append(f"{ent['entity_id']} (serve sent {value!r})")
                    else:
                        unknown_null.append(f"{ent['entity_id']} ({value!r})")
            self.report.check(
                not missing and not wrong_dev,
                f"  {name}: {len(cmps) - len(missing)}/{len(cmps)} entities registered on it"
                + (f"; missing {missing}" if missing else "")
                + (f"; on another device {wrong_dev}" if wrong_dev else ""),
            )
            self.report.check(
                not unavailable,
                f"  {name}: none unavailable{': ' + ', '.join(unavailable) if unavailable else ''}",
            )
            self.report.check(
                not bad_unknown,
                f"  {name}: unknown only where serve sent no value"
                + (": " + ", ".join(bad_unknown) if bad_unknown else ""),
            )
        self.report.info(f"{len(configs)} discovery documents, {n_entities} entities in HA")
        for item in unknown_null:
            self.report.info(f"unknown, serve sent no value: {item}")

    async def check_values(self, configs: dict[str, dict[str, Any]], ha: HomeAssistant) -> None:
        """Each entity's state against the value serve sent, read just before and just after
        it (values move at most once a second): a mismatch counts only when it stays through
        three tries."""
        suspects: set[str] | None = None
        compared = 0
        detail: dict[str, str] = {}
        for _ in range(3):
            before = retained(self.mqtt_port, [f"{KEYED_PREFIX}/#", f"{DEMO_PREFIX}/#"], 1)
            states = {s["entity_id"]: s["state"] for s in await ha.get("/api/states")}
            after = retained(self.mqtt_port, [f"{KEYED_PREFIX}/#", f"{DEMO_PREFIX}/#"], 1)
            _, entities = await ha.ws(
                {"type": "config/device_registry/list"}, {"type": "config/entity_registry/list"}
            )
            by_unique = {e["unique_id"]: e["entity_id"] for e in entities}
            wrong: set[str] = set()
            compared = 0
            for cfg in configs.values():
                for cmp in cfg["components"].values():
                    entity = by_unique.get(cmp["unique_id"])
                    template = cmp.get("value_template", "")
                    # Derived states (a worst code, a list of names, "suspect") are not plain.
                    if entity is None or not _GET.search(template) or "join" in template:
                        continue
                    if re.search(r"'(codes|key_status|worst_code)'", template):
                        continue
                    topic = cmp["state_topic"]
                    results = []
                    for raw in (before, after):
                        known, value = raw_value(cmp, raw.get(topic))
                        results.append(same(states.get(entity, ""), value) if known else None)
                    if all(r is None for r in results):
                        continue
                    compared += 1
                    if not any(results):
                        wrong.add(entity)
                        detail[entity] = (
                            f"{entity}: HA {states.get(entity)!r}, serve sent "
                            f"{raw_value(cmp, after.get(topic))[1]!r}"
                        )
            suspects = wrong if suspects is None else suspects & wrong
            if not suspects:
                break
            await asyncio.sleep(2)
        self.report.check(
            not suspects,
            f"{compared} entities with a plain value show exactly what serve sent"
            + (": " + "; ".join(detail[e] for e in sorted(suspects or ())) if suspects else ""),
        )

    def check_banks(
        self,
        configs: dict[str, dict[str, Any]],
        entities: list[Any],
        states: dict[str, Any],
        raw: dict[str, str],
    ) -> None:
        by_unique = {e["unique_id"]: e for e in entities if e.get("platform") == "mqtt"}
        seen_unknown = False
        banks = [c for c in configs.values() if "_bank_" in c["device"]["identifiers"][0]]
        self.report.check(len(banks) >= 3, f"{len(banks)} bank devices (demo's, keyed, silent)")
        for cfg in banks:
            cmp = cfg["components"]["problem"]
            ent = by_unique.get(cmp["unique_id"])
            doc = json.loads(raw.get(cmp["state_topic"], "{}") or "{}")
            want = bank_problem_expected(doc.get("problem"))
            got = states.get(ent["entity_id"], {}).get("state") if ent else None
            seen_unknown |= want == "unknown" and got == "unknown"
            self.report.check(
                got == want,
                f"bank {cfg['device']['name']!r} problem: HA {got!r}, expected {want!r} from the "
                f"bank's problem={doc.get('problem')!r} (verdict {doc.get('verdict')!r}: "
                f"{doc.get('reason')!r})",
            )
        self.report.check(
            seen_unknown, "a bank with a member never heard: problem unknown, not off"
        )

    async def run(self) -> None:
        r = self.report
        self.start_broker()
        log = self.start_ha()
        capture, keys = self.make_capture()
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            ha = HomeAssistant(session, self.ha_port)
            await ha.wait_up(self.args.start_timeout)
            await ha.onboard()
            version = (await ha.get("/api/config"))["version"]
            r.info(f"Home Assistant {version} on Python {sys.version.split()[0]}")
            result = await ha.add_mqtt(self.mqtt_port)
            if not r.check(
                result.get("type") == "create_entry",
                f"MQTT integration added: {result.get('type')}",
            ):
                print("      " + json.dumps(result)[:400])
                return
            await asyncio.sleep(3)
            log_start = len(log.read_text(errors="replace").splitlines()) if log.exists() else 0
            self.start_serves(capture, keys)
            r.info(f"serves running; waiting {self.args.settle:.0f} s for states")
            await asyncio.sleep(self.args.settle)
            for name in ("serve-demo", "serve-keyed"):
                r.check(self.procs[name].poll() is None, f"{name} still running")
            configs = self.configs()
            raw = retained(self.mqtt_port, [f"{KEYED_PREFIX}/#", f"{DEMO_PREFIX}/#"], wait_s=3)
            devices, entities, states = await ha.snapshot()
            demo = {t: c for t, c in configs.items() if DEMO_INSTANCE in json.dumps(c["device"])}
            keyed = {t: c for t, c in configs.items() if t not in demo}
            r.info(f"discovery on the broker: {len(demo)} demo, {len(keyed)} keyed documents")
            r.check(len(demo) >= 5 and len(keyed) >= 5, "both serves published discovery")
            self.check_discovery(configs, devices, entities, states, raw)
            self.check_banks(configs, entities, states, raw)
            await self.check_values(configs, ha)

            # Home Assistant restarted while serve runs: every device and entity back, none
            # unavailable (retained discovery and states, README "Topic contract").
            r.check(self.stop("hass") == 0, "Home Assistant stopped for a restart")
            self.check_log(log, log_start, "until its restart")
            log.rename(log.with_suffix(".log.1"))
            self.start_ha(fresh=False)
            await ha.wait_up(self.args.start_timeout)
            await asyncio.sleep(20)
            devices, entities, states = await ha.snapshot()
            raw = retained(self.mqtt_port, [f"{KEYED_PREFIX}/#", f"{DEMO_PREFIX}/#"], wait_s=3)
            self.report, outer = Report(quiet=True), r
            try:
                self.check_discovery(configs, devices, entities, states, raw)
            finally:
                self.report, inner = outer, self.report
            r.check(
                not inner.failed,
                f"after an HA restart: all {inner.passed + len(inner.failed)} checks of the "
                "devices and entities above pass again"
                + ("; failed: " + "; ".join(inner.failed[:10]) if inner.failed else ""),
            )

            # Clean stop of the keyed serve: its devices stay, every entity unavailable, its
            # bridge's status off (README: available while the bridge and the device are).
            r.check(self.stop("serve-keyed") == 0, "keyed serve stopped cleanly (status 0)")
            await asyncio.sleep(5)
            devices, entities, states = await ha.snapshot()
            self.check_after_stop(keyed, devices, entities, states)

            # Clean stop of the demo: its devices removed from Home Assistant.
            r.check(self.stop("serve-demo") == 0, "demo serve stopped cleanly (status 0)")
            await asyncio.sleep(8)
            devices, entities, states = await ha.snapshot()
            idents = {i for d in devices for dom, i in d["identifiers"] if dom == "mqtt"}
            left = [
                c["device"]["name"]
                for c in demo.values()
                if c["device"]["identifiers"][0] in idents
            ]
            r.check(
                not left,
                f"demo stopped: its {len(demo)} devices removed from HA"
                + (f"; left {left}" if left else ""),
            )
            uniques = {c["unique_id"] for cfg in demo.values() for c in cfg["components"].values()}
            left_e = [e["entity_id"] for e in entities if e.get("unique_id") in uniques]
            r.check(not left_e, f"demo stopped: its entities removed ({len(left_e)} left)")
            left_s = [e for e in left_e if e in states]
            r.check(not left_s, f"demo stopped: no states left ({len(left_s)})")
            r.check(
                not retained(self.mqtt_port, [f"{DEMO_PREFIX}/#"], wait_s=2),
                "demo stopped: no retained topics under its prefix",
            )
            self.check_log(log, 0, "since its restart")

    def check_after_stop(
        self,
        keyed: dict[str, dict[str, Any]],
        devices: list[Any],
        entities: list[Any],
        states: dict[str, Any],
    ) -> None:
        idents = {i for d in devices for dom, i in d["identifiers"] if dom == "mqtt"}
        by_unique = {e["unique_id"]: e for e in entities if e.get("platform") == "mqtt"}
        gone = [
            c["device"]["name"]
            for c in keyed.values()
            if c["device"]["identifiers"][0] not in idents
        ]
        self.report.check(
            not gone,
            f"keyed serve stopped: its {len(keyed)} devices stay"
            + (f"; gone {gone}" if gone else ""),
        )
        still, bridge_status = [], []
        for cfg in keyed.values():
            for cmp in cfg["components"].values():
                ent = by_unique.get(cmp["unique_id"])
                if ent is None:
                    continue
                state = states.get(ent["entity_id"], {}).get("state")
                if "availability" not in cmp:  # the bridge's own status
                    bridge_status.append(f"{ent['entity_id']}={state}")
                    if state != "off":
                        still.append(f"{ent['entity_id']}={state}")
                elif state != "unavailable":
                    still.append(f"{ent['entity_id']}={state}")
        self.report.check(
            not still,
            "keyed serve stopped: every entity unavailable, the bridge status off"
            + (f"; not so: {still[:10]}" if still else f" ({', '.join(bridge_status)})"),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hass", default="hass")
    parser.add_argument("--victron-bms", default="victron-bms")
    parser.add_argument("--settle", type=float, default=90, help="seconds of serving before checks")
    parser.add_argument("--start-timeout", type=float, default=600)
    args = parser.parse_args()
    run = Run(args)

    def stop(signum: int, _frame: Any) -> None:  # never leave HA, mosquitto or serve behind
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    print(f"work directory {run.dir} (mosquitto :{run.mqtt_port}, HA :{run.ha_port})")
    try:
        asyncio.run(run.run())
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - a failed check, too
        run.report.check(False, f"the check could not finish: {type(exc).__name__}: {exc}")
    finally:
        run.close()
    r = run.report
    n = r.passed + len(r.failed)
    if r.failed:
        print(f"FAIL: {len(r.failed)} of {n} checks failed (logs in {run.dir})")
        return 1
    print(f"PASS: all {n} checks passed (logs in {run.dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
