"""The board as the page and `/api/state` see it: the banks first, then each device's MQTT
state object (`mqtt/state.py`, so the two never drift apart) plus how old it is and whether it
is stale.

A suspect latest reading (replayed or forged frame, implausible values) never replaces the
last good values: the device shows those with `"suspect": "<reason>"`, as on MQTT; a change
pending confirmation shows those without it (`Board.shown_suspicion`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from victron_ble_bms.hub import Board, DeviceEntry
from victron_ble_bms.hub.board import suspicion
from victron_ble_bms.mqtt.state import state_object
from victron_ble_bms.safetext import plain

API_VERSION = 1


def device_object(board: Board, entry: DeviceEntry, now: float) -> dict[str, Any]:
    name = board.name(entry)
    if suspicion(entry.latest) is not None:  # not taken: the last good values stand
        obj = state_object(entry.good or entry.latest, name)
    else:
        obj = state_object(entry.latest, name)
    shown = board.shown_suspicion(entry)  # a pending change is quiet
    if shown is not None:
        obj["suspect"] = plain(shown)
    else:
        obj.pop("suspect", None)
    obj["keyed"] = entry.keyed
    obj["age_s"] = round(board.age_s(entry, now), 1)
    obj["stale"] = board.stale(entry, now)
    return obj


def snapshot(board: Board, now: float) -> dict[str, Any]:
    """Everything at once: what `GET /api/state` answers and a new viewer is sent first."""
    return {
        "version": API_VERSION,
        "stale_after_s": board.stale_after_s,
        "banks": board.bank_objects(),  # judged on the board (hub/board.py), as on MQTT
        "devices": [device_object(board, entry, now) for entry in board],
    }


def encode(obj: Any) -> str:
    """One line of JSON (no raw newline can end an SSE `data:` line early); NaN/inf → null."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # rare: walk the object only when a non-finite float is in it
        return json.dumps(_finite(obj), ensure_ascii=False, separators=(",", ":"))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
