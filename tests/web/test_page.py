"""The page in a real headless Chromium, served by `serve --source emulator --http 127.0.0.1:P`:
what a person on the boat sees, read back from the rendered DOM."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import Serve, demo_keys


def api_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/state", timeout=5) as r:  # noqa: S310
        obj: dict[str, Any] = json.load(r)
    return obj


def open_page(browser: Any, url: str, **viewport: int) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport=viewport or {"width": 390, "height": 844})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(url)
    return page, problems


def test_demo_fleet_shows_cells_codes_and_remedies(browser: Any, demo: Serve) -> None:
    page, problems = open_page(browser, demo.url)
    fleet = len(demo_keys())  # seven devices
    page.wait_for_function(
        f"() => document.querySelectorAll('.card.device').length >= {fleet}", timeout=15000
    )
    # The 12.8 V/50 Ah battery runs flat within the first simulated minute.
    page.wait_for_selector("li.code[data-code='W-SL12']", timeout=45000)
    assert page.locator("#conn").inner_text() == "live"
    devices = {d["address"]: d for d in api_state(demo.url)["devices"]}
    cards = page.locator(".card.device")
    assert cards.count() == len(devices) == fleet
    warned = 0
    for i in range(cards.count()):
        card = cards.nth(i)
        obj = devices[card.get_attribute("data-address")]
        assert card.locator(".name").inner_text() == obj["name"]
        cells = [c for c in obj.get("cell_voltages_v") or () if c is not None]
        # One look at the card (a new reading may replace it between two looks).
        look = card.evaluate(
            """c => ({
                cells: [...c.querySelectorAll('.cell .cv')].map(e => e.textContent),
                lows: [...c.querySelectorAll('.cell.low .cv')].map(e => e.textContent),
                highs: [...c.querySelectorAll('.cell.high .cv')].map(e => e.textContent),
                summary: (c.querySelector('.spread') || {}).textContent,
            })"""
        )
        shown = [float(t) for t in look["cells"]]
        assert len(shown) == len(cells)  # every cell a bar: 4 on 12.8 V, 8 on 25.6 V
        for dom, api in zip(shown, cells, strict=True):
            assert abs(dom - api) < 0.05  # read a moment apart: the emulator moves on
        if len(set(shown)) > 1:
            lows = [float(t) for t in look["lows"]]
            highs = [float(t) for t in look["highs"]]
            # Marked where they stand out (at most half the cells); always named below.
            assert set(lows) <= {min(shown)} and set(highs) <= {max(shown)}
            assert lows or highs
            summary = look["summary"]
            assert f"Lowest {min(shown):.2f} V" in summary
            assert f"highest {max(shown):.2f} V" in summary
        for key, label in (
            ("allowed_to_charge", "Charging"),
            ("allowed_to_discharge", "Discharging"),
        ):
            if key in obj:
                words = {True: "allowed", False: "not allowed", None: "unknown"}[obj[key]]
                dd = card.locator(f"dt:text-is('{label}') + dd")
                assert dd.inner_text() == words
        for code in obj["code_details"] or ():
            item = card.locator(f"li.code[data-code='{code['id']}']")
            text = item.inner_text()
            assert code["title"] in text and code["explanation"] in text
            assert code["remedy"] in item.locator(".remedy").inner_text()
            warned += code["id"] == "W-SL12"
    # The demo fleet's 12.8 V/50 Ah battery is low: the manual's W-SL12, "Under voltage
    # warning (pre-alarm)" (Lithium Battery Smart manual §3.3), with what to do about it.
    assert warned == 1
    w = page.locator("li.code[data-code='W-SL12']")
    assert "Under voltage warning" in w.inner_text()
    assert "Recharge" in w.locator(".remedy").inner_text()
    # Problems first: the warned battery is the first card on the phone.
    assert page.locator(".card.device").first.locator("li.code[data-code='W-SL12']").count() == 1
    assert problems == []
    page.close()


def test_the_page_updates_without_reload(browser: Any, demo: Serve) -> None:
    page, problems = open_page(browser, demo.url)
    page.wait_for_selector(".card.device")
    page.evaluate("window.__loaded_once = true; window.__card = document.querySelector('.card')")
    # A new reading replaces a device's card: the old element leaves the document.
    page.wait_for_function("() => !document.contains(window.__card)", timeout=15000)
    ages = page.locator(".card.device .age").all_inner_texts()
    assert all(a == "just now" or a.endswith(" s ago") for a in ages), ages
    assert page.evaluate("window.__loaded_once") is True  # the same document: no reload
    assert problems == []
    page.close()


def test_night_mode_toggles_and_is_remembered(browser: Any, demo: Serve) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(demo.url)
    page.wait_for_selector(".card.device")

    def looks() -> tuple[str, str, str]:
        return page.evaluate(
            "[document.documentElement.dataset.theme,"
            " getComputedStyle(document.body).backgroundColor,"
            " getComputedStyle(document.querySelector('.card .name')).color]"
        )

    theme, background, _ = looks()
    assert theme == "day" and background != "rgb(0, 0, 0)"
    page.click("#mode")
    theme, background, name = looks()
    assert theme == "night" and background == "rgb(0, 0, 0)"
    r, g, b = (int(x) for x in name[name.index("(") + 1 : -1].split(","))
    assert r > 150 and g < 80 and b < 80, name  # red on black
    page.reload()
    page.wait_for_selector(".card.device")
    assert looks()[0] == "night"  # remembered (localStorage)
    page.click("#mode")
    assert looks()[0] == "day"
    context.close()


def test_connection_lost_and_back(browser: Any, tmp_path: Path, serves: list[Serve]) -> None:
    first = Serve(tmp_path, "--source", "emulator")
    serves.append(first)
    first.wait_up()
    page, _ = open_page(browser, first.url)
    page.wait_for_selector(".card.device")
    assert page.locator("#lost").is_hidden()
    first.stop()
    page.wait_for_selector("#lost", state="visible", timeout=10000)
    assert "Connection lost" in page.locator("#lost").inner_text()
    assert page.locator("#conn").inner_text() == "offline"
    assert page.locator(".card.device").count() > 0  # the last values stay on screen
    again = Serve(tmp_path, "--source", "emulator", port=first.port)
    serves.append(again)
    again.wait_up()
    page.wait_for_selector("#lost", state="hidden", timeout=15000)  # EventSource retries
    assert page.locator("#conn").inner_text() == "live"
    page.close()
