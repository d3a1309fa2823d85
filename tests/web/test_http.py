"""`serve --http` over plain HTTP (urllib, no browser): read-only, the security headers, the
token on a non-loopback address, and no key in any answer."""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from .conftest import Serve, demo_keys

ROUTES = ("/", "/api/state", "/events", "/app.js", "/style.css", "/manifest.webmanifest")


def request(
    url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request; for /events only the first chunk (the stream does not end)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        body = r.read1(65536) if path.startswith("/events") and r.status == 200 else r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


def test_read_only_with_security_headers(demo: Serve) -> None:
    for path in ROUTES:
        status, headers, _ = request(demo.url, path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, headers, _ = request(demo.url, path, method)
            assert status == 405, (method, path)
            assert "content-security-policy" in headers  # errors too
    assert request(demo.url, "/", "HEAD")[0] == 200
    assert request(demo.url, "/nothing-here")[0] == 404
    # DNS rebinding: a page elsewhere that points its own name at 127.0.0.1 is refused.
    assert request(demo.url, "/api/state", headers={"Host": f"evil.example:{demo.port}"})[0] == 421


def test_api_state_is_the_mqtt_state_plus_age_and_no_key(demo: Serve) -> None:
    status, headers, body = request(demo.url, "/api/state")
    assert headers["content-type"].startswith("application/json")
    state = json.loads(body)
    # The demo fleet's two BMSes, each with its batteries, are banks (serve declares them).
    assert [b["type"] for b in state["banks"]] == ["bank", "bank"] and state["devices"]
    for obj in state["devices"]:
        # The MQTT state topic's fields (mqtt/state.py), plus age and staleness.
        for key in ("address", "key_status", "worst_code", "code_details", "age_s", "stale"):
            assert key in obj
        assert obj["key_status"] == "ok" and obj["stale"] is False
    answers = b"".join(request(demo.url, path)[2] for path in ROUTES)
    for key in demo_keys().values():
        for shown in (key.hex(), key.hex().upper(), key.hex()[:12]):
            assert shown.encode() not in answers


def test_a_token_is_required_off_loopback(tmp_path: Path, serves: list[Serve]) -> None:
    s = Serve(tmp_path, "--source", "emulator", host="127.0.0.2")
    serves.append(s)
    s.wait_up()
    token_file = s.config_home / "victron-ble-bms" / "http-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    token = token_file.read_text().strip()
    assert len(token) >= 40
    assert f"{s.url}?token={token}" in s.stderr  # shown once, as a URL, when it was made
    for path in ("/", "/api/state", "/events"):
        assert request(s.url, path)[0] == 401
        assert request(s.url, path + "?token=" + token[:-1] + "x")[0] == 401
        assert request(s.url, path, headers={"Cookie": "vbms_token=wrong"})[0] == 401
        assert request(s.url, path, headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert request(s.url, path, headers={"Cookie": f"vbms_token={token}"})[0] == 200
    assert request(s.url, "/manifest.webmanifest")[0] == 200  # public: fetched without cookies
    status, headers, _ = request(s.url, f"/api/state?token={token}")
    assert status == 303 and headers["location"] == "/api/state"  # the token leaves the URL
    cookie = headers["set-cookie"]
    assert f"vbms_token={token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # Authenticated, still read-only.
    assert request(s.url, "/api/state", "POST", {"Authorization": f"Bearer {token}"})[0] == 405
    assert s.stop() == 0
    # The next start keeps the token and does not print it again (stderr is not a terminal).
    again = Serve(tmp_path, "--source", "emulator", host="127.0.0.2", port=s.port)
    serves.append(again)
    again.wait_up()
    assert token_file.read_text().strip() == token
    assert token not in again.stderr
    assert request(again.url, "/api/state", headers={"Authorization": f"Bearer {token}"})[0] == 200


def test_token_in_a_browser(browser: Any, tmp_path: Path, serves: list[Serve]) -> None:
    s = Serve(tmp_path, "--source", "emulator", host="127.0.0.2")
    serves.append(s)
    s.wait_up()
    token = (s.config_home / "victron-ble-bms" / "http-token").read_text().strip()
    context = browser.new_context()
    page = context.new_page()
    assert page.goto(s.url).status == 401
    page.goto(f"{s.url}?token={token}")
    assert page.url == s.url  # redirected: no token in the address bar
    page.wait_for_selector(".card.device")
    assert page.locator("#conn").inner_text() == "live"
    page.goto(s.url)  # the cookie from now on
    page.wait_for_selector(".card.device")
    context.close()


def test_refuses_to_start_with_a_token_others_can_read(tmp_path: Path) -> None:
    config = tmp_path / "xdg" / "victron-ble-bms"
    config.mkdir(parents=True, mode=0o700)
    token_file = config / "http-token"
    token_file.write_text("A" * 43 + "\n")
    os.chmod(token_file, 0o644)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    r = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "emulator",
         "--http", "0.0.0.0:1", "--duration", "5"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "readable by other users" in r.stderr and "A" * 43 not in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "emulator",
         "--http", "nonsense"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "--http 'nonsense'" in r.stderr
