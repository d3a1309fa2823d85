"""The JSON object of one received frame, shared by every output that writes JSON (`decode
--format jsonl`, `scan --json`, the MQTT state topic), so they cannot drift apart."""

from __future__ import annotations

from typing import Any

from victron_ble_bms.protocol import Record


def frame_object(
    ts: float,
    address: str,
    rssi: int | None,
    name: str | None,
    record: Record | None,
    suspect: str | None = None,
) -> dict[str, Any]:
    """One decoded frame as JSON: `ts`, `address`, `rssi`, `name` and the record's fields —
    the shape `decode --format jsonl` and `scan --json` share. `suspect` (why the frame looks
    replayed, forged or implausible, `Reading.suspect`) is added only when set."""
    obj: dict[str, Any] = {"ts": ts, "address": address, "rssi": rssi}
    if name:
        obj["name"] = name
    if record is not None:
        obj.update(record.to_dict())
    if suspect is not None:
        obj["suspect"] = suspect
    return obj
