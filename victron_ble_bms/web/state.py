"""The board as the page and `/api/state` see it: the banks first, then each device's MQTT
state object (`mqtt/state.py`, so the two never drift apart) plus how old it is and whether it
is stale.

A suspect latest reading (replayed or forged frame, implausible values) never replaces the
last good values: the device shows those with `"suspect": "<reason>"`, as on MQTT.
"""

from __future__ import annotations

import json
import math
from typing import Any

from victron_ble_bms.banks import BankTracker, bank_object
from victron_ble_bms.hub import Board, DeviceEntry
from victron_ble_bms.hub.board import suspicion
from victron_ble_bms.mqtt.bank import declared_banks
from victron_ble_bms.mqtt.state import state_object
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.readings import Reading

API_VERSION = 1


def device_object(board: Board, entry: DeviceEntry, now: float) -> dict[str, Any]:
    name = board.name(entry)
    reason = suspicion(entry.latest)
    if reason is not None:
        obj = {**state_object(entry.good or entry.latest, name), "suspect": plain(reason)}
    else:
        obj = state_object(entry.latest, name)
    obj["keyed"] = entry.keyed
    obj["age_s"] = round(board.age_s(entry, now), 1)
    obj["stale"] = board.stale(entry, now)
    return obj


class Banks:
    """The banks declared in the keys file ([banks.NAME]), judged from the same readings as
    the board (`banks.BankTracker`): each bank's object is the one on its MQTT topic
    `<prefix>/bank/<name>/state` (`banks.bank_object`).

    A bank's staleness runs on the readings' clock (capture time when replaying), carried
    forward by serve's clock between readings — as the MQTT bank publisher does."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.tracker = BankTracker(declared_banks(board.keys), board.stale_after_s)
        self.heard_at: float | None = None

    def __bool__(self) -> bool:
        return bool(self.tracker)

    def reading(self, reading: Reading) -> bool:
        """Take a reading; True when a bank changed."""
        if not self.tracker:
            return False
        self.heard_at = self.board.clock()
        return bool(self.tracker.update(reading))

    def keys_changed(self) -> None:
        self.tracker.set_banks(declared_banks(self.board.keys))

    def objects(self, now: float) -> list[dict[str, Any]]:
        tracker = self.tracker
        if not tracker:
            return []
        at = tracker.now + (0.0 if self.heard_at is None else max(0.0, now - self.heard_at))
        return [bank_object(tracker.state(name, at)) for name in tracker.banks]


def snapshot(board: Board, now: float, banks: Banks | None = None) -> dict[str, Any]:
    """Everything at once: what `GET /api/state` answers and a new viewer is sent first."""
    return {
        "version": API_VERSION,
        "stale_after_s": board.stale_after_s,
        "banks": [] if banks is None else banks.objects(now),
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
