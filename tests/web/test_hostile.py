"""Names from the air are text: a capture whose devices advertise HTML and script as their
names, replayed by `serve --source capture FILE --http …`, shows those names literally and runs
nothing. A device that goes silent is greyed out as stale."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from victron_ble_bms.emulator import DeviceSpec, load_scenario
from victron_ble_bms.emulator.engine import Emulator
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyStore

from .conftest import Serve
from .test_page import open_page

KEYED_NAME = "<img src=x onerror=alert(1)>"
UNKEYED_NAME = "</h3><script>alert(2)</script><b onmouseover=alert(3)>x"
SILENT_AFTER_S = 3.0
BATTERY = "C0:FF:EE:00:00:01"
LYNX = "C0:FF:EE:00:00:02"


def hostile_capture(tmp_path: Path) -> tuple[Path, Path]:
    """90 s of a keyed battery and a Lynx (no key, heard only at first), both with hostile
    names; and a keys file for the battery that gives it no name (so the heard name shows)."""
    emu = Emulator(
        [DeviceSpec("lithium-12.8v-100ah", BATTERY), DeviceSpec("lynx-smart-bms-500", LYNX)],
        load_scenario("normal-day"),
        seed=7,
        speed=None,
        start_ts=time.time(),
    )
    path = tmp_path / "hostile.jsonl"
    with JsonlWriter(path, source="test") as writer:
        start = None
        for adv in emu.run(90):
            start = adv.ts if start is None else start
            if adv.address == BATTERY:
                writer.write(dataclasses.replace(adv, name=KEYED_NAME))
            elif adv.address == LYNX and adv.ts - start < 1.0:
                writer.write(dataclasses.replace(adv, name=UNKEYED_NAME))
    keys = tmp_path / "keys.toml"
    store = KeyStore(keys)
    store.add(BATTERY, emu.keys[BATTERY])
    store.save()
    return path, keys


def test_hostile_names_are_text_and_silent_devices_grey(
    browser: Any, tmp_path: Path, serves: list[Serve]
) -> None:
    capture, keys = hostile_capture(tmp_path)
    config = tmp_path / "serve.toml"
    config.write_text(f"[mqtt]\nstale_after_s = {SILENT_AFTER_S}\n")
    s = Serve(
        tmp_path, "--source", "capture", str(capture), "--keys", str(keys), "--config", str(config)
    )
    serves.append(s)
    s.wait_up()
    page, problems = open_page(browser, s.url)
    page.wait_for_function(
        "() => document.querySelectorAll('.card.device').length >= 2", timeout=15000
    )
    names = page.locator(".card.device .name").all_inner_texts()
    assert sorted(names) == sorted([KEYED_NAME, UNKEYED_NAME])  # literally, as text
    # Nothing was interpreted: no element came from a name, no script ran, no dialog opened.
    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("() => document.querySelectorAll('script').length") == 1  # app.js
    keyed = page.locator(".card.device", has_text="<img")
    assert keyed.locator(".cell").count() == 4  # decoded with its key: a 12.8 V battery
    unkeyed = page.locator(".card.device", has_text="<script>")
    assert "no key" in unkeyed.locator(".keymsg").inner_text()
    # The Lynx was heard only in the first second: greyed, and its age says so.
    unkeyed.locator("xpath=self::*[contains(@class, 'stale')]").wait_for(timeout=15000)
    assert "no reading for" in unkeyed.locator(".age").inner_text()
    assert "stale" not in (keyed.get_attribute("class") or "")
    unkeyed.hover()
    assert problems == []
    page.close()
