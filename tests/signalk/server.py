"""A real signalk-server from npm for tests: headless, on free loopback ports, its own config dir.

Installed by scripts/test.sh into ``~/.cache/victron-ble-bms/signalk`` (outside the git tree;
``VICTRON_BMS_SIGNALK_DIR`` overrides), pinned to 2.23.x: its package.json says
``engines.node >=20``, and later releases need Node 22 (2.32.0: ``engines.node >=22``), while
this machine's nodejs is 20 (Debian 12's own package is 18: too old, the tests then skip
saying so).

Started with ``SIGNALK_NODE_CONFIG_DIR`` (a tmp dir holding settings.json with ``mdns: false``),
``PORT`` / ``TCPSTREAMPORT`` / ``NMEA0183PORT`` on free ports, and plugins off. signalk-server
2.23 has no ``--no-plugins`` flag: its plugin loader reads ``DISABLEPLUGINS``
(dist/interfaces/plugins.js), which is what we set. ``security=True`` starts it with
``--securityenabled`` (tokensecurity, no users yet) and creates the first admin through the
server's own first-user route (``POST /skServer/enableSecurity``), as its admin UI does.

Everything is read back through the server's REST API (``/signalk/v1/api/vessels/self/…``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

HOST = "127.0.0.1"
VERSION_PIN = "~2.23.0"  # later releases need Node 22 (see the module docstring)


def install_dir() -> Path:
    default = Path.home() / ".cache" / "victron-ble-bms" / "signalk"
    return Path(os.environ.get("VICTRON_BMS_SIGNALK_DIR") or default)


def server_script() -> Path:
    script = install_dir() / "node_modules" / "signalk-server" / "bin" / "signalk-server"
    node = shutil.which("node")
    if not script.exists() or node is None:
        pytest.skip(
            f"signalk-server not installed in {install_dir()} (scripts/test.sh installs it: "
            f"npm install --prefix {install_dir()} signalk-server@{VERSION_PIN})"
        )
    version = subprocess.run(  # noqa: S603
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < 20:
        pytest.skip(f"signalk-server 2.23 needs Node >= 20 (engines), this node is {version!r}")
    return script


class SignalKServer:
    def __init__(self, tmp_dir: Path, *, security: bool = False) -> None:
        self.script = server_script()
        self.dir = Path(tmp_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.security = security
        self.port = free_port()
        self.admin_user = "admin"
        self.admin_password = "pw-" + os.urandom(6).hex()
        self.admin_token: str | None = None
        self.log = self.dir / "signalk-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        settings = {"interfaces": {}, "ssl": False, "pipedProviders": [], "mdns": False}
        (self.dir / "settings.json").write_text(json.dumps(settings))

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{HOST}:{self.port}/signalk/v1/stream"

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "SIGNALK_NODE_CONFIG_DIR": str(self.dir),
            "HOME": str(self.dir),  # nothing of ours in the real ~/.signalk
            "PORT": str(self.port),
            "TCPSTREAMPORT": str(free_port()),
            "NMEA0183PORT": str(free_port()),
            "DISABLEPLUGINS": "1",
        }
        args = ["node", str(self.script)] + (["--securityenabled"] if self.security else [])
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.dir
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"signalk-server exited at start: {self.log_text()[-2000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"{self.http}/signalk", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"signalk-server not up in {timeout} s: {self.log_text()}")
            time.sleep(0.2)
        if self.security:
            self.request(
                "POST",
                "/skServer/enableSecurity",
                {"userId": self.admin_user, "password": self.admin_password, "type": "admin"},
                token=None,
            )
            self.admin_token = self.login(self.admin_user, self.admin_password)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # --- REST ---------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http + path, data=data, method=method)  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def login(self, username: str, password: str) -> str:
        status, reply = self.request(
            "POST", "/signalk/v1/auth/login", {"username": username, "password": password}
        )
        assert status == 200, reply
        return str(reply["token"])

    def get(self, path: str) -> Any:
        """`/signalk/v1/api/vessels/self/<path>` (dots or slashes), or None when absent."""
        status, reply = self.request(
            "GET",
            "/signalk/v1/api/vessels/self/" + path.replace(".", "/"),
            token=self.admin_token,
        )
        return reply if status == 200 else None

    def pending_requests(self) -> list[dict[str, Any]]:
        status, reply = self.request(
            "GET", "/skServer/security/access/requests", token=self.admin_token
        )
        assert status == 200, reply
        return list(reply)

    def approve(self, client_id: str, permissions: str = "readwrite") -> None:
        status, reply = self.request(
            "PUT",
            f"/skServer/security/access/requests/{client_id}/approved",
            {"permissions": permissions, "expiration": "1y"},
            token=self.admin_token,
        )
        assert status == 200, reply

    def __enter__(self) -> SignalKServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def values(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A REST subtree → {relative dotted path: value} (meta left out)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict) and "value" in tree and ("$source" in tree or "timestamp" in tree):
        return {prefix: tree["value"]}
    if isinstance(tree, dict):
        for key, sub in tree.items():
            if key != "meta":
                out.update(values(sub, f"{prefix}.{key}" if prefix else key))
    return out


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise TimeoutError(f"{what} not seen in {timeout} s")
