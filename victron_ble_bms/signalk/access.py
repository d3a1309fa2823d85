"""Getting write access to a Signal K server that has security on.

A token from the config file or VICTRON_BMS_SIGNALK_TOKEN is used as given. Without one, serve
asks the way a device without a keyboard does (Signal K specification, "Access Requests";
signalk-server's `/signalk/v1/access/requests`): it posts its clientId (a v4 UUID, kept) and a
description, the boat's admin approves it in the server's admin UI (Security → Access Requests),
and the request's `href` then hands out a token. That token, the clientId and a pending
request's href are kept in `signalk-access.json` beside the config file (0600 in a 0700
folder: the token is a secret) so a restart neither asks again nor loses a pending request.
Nothing here prints or logs a token.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any


class AccessStore:
    """`{"clientId": …, "servers": {"http://host:port": {"token": …, "href": …}}}`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or broken: ask again (the admin sees a new request)
        return doc if isinstance(doc, dict) else {}

    def _save(self, doc: dict[str, Any]) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def client_id(self) -> str:
        doc = self._load()
        value = doc.get("clientId")
        try:
            return str(uuid.UUID(str(value), version=4))
        except ValueError:
            doc["clientId"] = str(uuid.uuid4())
            self._save(doc)
            return str(doc["clientId"])

    def forget_client_id(self) -> None:
        doc = self._load()
        doc.pop("clientId", None)
        self._save(doc)

    def _server(self, origin: str) -> dict[str, Any]:
        servers = self._load().get("servers")
        entry = servers.get(origin) if isinstance(servers, dict) else None
        return entry if isinstance(entry, dict) else {}

    def token(self, origin: str) -> str | None:
        value = self._server(origin).get("token")
        return value if isinstance(value, str) and value else None

    def pending(self, origin: str) -> str | None:
        value = self._server(origin).get("href")
        return value if isinstance(value, str) and value.startswith("/") else None

    def update(self, origin: str, **values: str | None) -> None:
        doc = self._load()
        servers = doc.get("servers")
        if not isinstance(servers, dict):
            servers = doc["servers"] = {}
        entry = servers.get(origin)
        if not isinstance(entry, dict):
            entry = servers[origin] = {}
        for key, value in values.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
        self._save(doc)
