"""The README's screenshots of the web page (docs/web-phone.png, docs/web-desktop.png), from a
real run of `victron-bms serve --source emulator --http 127.0.0.1:PORT` seen by Debian's
chromium through Playwright:

    python scripts/web_screenshots.py [OUTDIR]          the demo fleet, phone/night/desktop
    python scripts/web_screenshots.py --bank [OUTDIR]   a recorded parallel bank, phone
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bank_source(tmp: Path) -> list[str]:
    """The emulator's parallel-bank scenario recorded (with its bank, as `emulate` writes it
    beside the capture), to replay through serve: a bank on the page."""
    capture = tmp / "bank.jsonl"
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "victron_ble_bms", "emulate", "--scenario", "parallel-bank",
         "--capture", str(capture), "--speed", "max", "--duration", "240"],
        check=True, capture_output=True,
    )  # fmt: skip
    return ["--source", "capture", str(capture), "--keys", f"{capture}.keys.toml"]


def main() -> None:
    bank = "--bank" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--bank"]
    out = Path(args[0]) if args else ROOT / "docs"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp)}
    source = bank_source(tmp) if bank else ["--source", "emulator"]
    serve = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "victron_ble_bms", "serve", *source, "--http", f"127.0.0.1:{port}"],
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "api/state", timeout=2).read()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(4)  # every device of the demo fleet heard at least once
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            shots = [
                ("web-phone.png", {"width": 390, "height": 844}, 2, "day"),
                ("web-phone-night.png", {"width": 390, "height": 844}, 2, "night"),
                ("web-desktop.png", {"width": 1280, "height": 800}, 1, "day"),
            ]
            if bank:
                shots = [("web-bank-phone.png", {"width": 390, "height": 844}, 2, "day")]
            for name, viewport, scale, theme in shots:
                page = browser.new_page(viewport=viewport, device_scale_factor=scale)
                page.goto(url)
                page.wait_for_selector(".card.bank" if bank else ".card.device")
                if theme == "night":
                    page.click("#mode")
                time.sleep(1.5)
                if not bank and viewport["width"] < 600:
                    # Banks come first; the phone shot shows the first device with an active
                    # code (the demo's W-SL12) at the top, as a person scrolls to it.
                    page.eval_on_selector(
                        ".card.device:has(li.code)",
                        "card => { card.scrollIntoView(); window.scrollBy(0, -64); }",
                    )
                    time.sleep(0.3)
                path = out / name
                page.screenshot(path=str(path))
                page.close()
                print(f"{path} {path.stat().st_size // 1024} kB")
            browser.close()
    finally:
        serve.terminate()
        serve.wait(20)


if __name__ == "__main__":
    main()
