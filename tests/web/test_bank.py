"""Banks first: a parallel bank recorded by `victron-bms emulate --scenario parallel-bank`
(which writes the bank beside the capture in its keys file), replayed by `serve --source
capture … --http`, with one member cut from the recording after two seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Serve
from .test_page import api_state, open_page

SILENT_AFTER_S = 2.0


def bank_capture(tmp_path: Path) -> tuple[Path, Path, str]:
    capture = tmp_path / "bank.jsonl"
    subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "emulate", "--scenario", "parallel-bank",
         "--capture", str(capture), "--speed", "max", "--duration", "120"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    lines = capture.read_text().splitlines()
    body = [json.loads(x) for x in lines[1:]]
    start = body[0]["ts"]
    victim = next(o["address"] for o in body if o["name"].startswith("LI 12.8V"))
    kept = [o for o in body if not (o["address"] == victim and o["ts"] > start + SILENT_AFTER_S)]
    capture.write_text("\n".join([lines[0], *(json.dumps(o) for o in kept)]) + "\n")
    return capture, Path(f"{capture}.keys.toml"), victim


def test_the_bank_comes_first_and_a_silent_member_degrades_it(
    browser: Any, tmp_path: Path, serves: list[Serve]
) -> None:
    capture, keys, victim = bank_capture(tmp_path)
    config = tmp_path / "serve.toml"
    config.write_text(f"[mqtt]\nstale_after_s = {SILENT_AFTER_S}\n")
    s = Serve(
        tmp_path, "--source", "capture", str(capture), "--keys", str(keys), "--config", str(config)
    )
    serves.append(s)
    s.wait_up()
    page, problems = open_page(browser, s.url)
    page.wait_for_selector(".card.bank")
    # The bank's card is above every device's.
    assert page.evaluate("() => document.querySelector('.card').classList.contains('bank')")
    bank = page.locator(".card.bank")
    assert bank.get_attribute("data-bank") == "parallel-bank"
    assert "of 4 members heard" in bank.locator(".sub").inner_text()
    # Cut from the recording: the bank is degraded (never "ok"), naming the silent member.
    victim_name = next(d["name"] for d in api_state(s.url)["devices"] if d["address"] == victim)
    page.locator(".card.bank .reason", has_text=f"{victim_name}: stale").wait_for(timeout=20000)
    assert bank.locator(".verdict").inner_text().lower() == "degraded"
    state = api_state(s.url)
    assert [b["name"] for b in state["banks"]] == ["parallel-bank"]
    assert state["banks"][0]["type"] == "bank" and state["banks"][0]["verdict"] == "degraded"
    assert problems == []
    page.close()
