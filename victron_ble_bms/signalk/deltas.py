"""Signal K delta messages (specification: schemas/delta.json), as the publishers build them.

Every message has one update with a `$source` and a `timestamp`, and either `values` or `meta`;
a notification is a message of its own (a server re-labels the `$source` of values sent beside
a notification: docs/ecosystem.md §9). Each comes with a key for the link's outbox: a newer
message with the same key replaces a queued one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Delta = dict[str, Any]
Outgoing = tuple[tuple[str, str], Delta]  # (key, message)
SOURCE = "victron-ble-bms"
CONTEXT = "vessels.self"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(kind: str, items: list[tuple[str, Any]], ts: float, source: str) -> Delta:
    return {
        "context": CONTEXT,
        "updates": [
            {
                "$source": source,
                "timestamp": iso(ts),
                kind: [{"path": path, "value": value} for path, value in items],
            }
        ],
    }


def notification_message(path: str, value: dict[str, Any], ts: float) -> Outgoing:
    return (("notification", path), message("values", [(path, value)], ts, SOURCE))
