"""Banks on Signal K (issue 20): each bank declared in the keys file is a battery of its own,
`electrical.batteries.<bankId>`, beside its members. Pure (no I/O).

The bank is judged once, on serve's board (`hub.Board.bank_objects`, `victron_ble_bms.banks`);
the values are the bank's: spec paths where the spec
has one — `voltage`, `current`, `temperature` (the warmest member), `capacity.stateOfCharge`,
`capacity.timeRemaining`, `capacity.dischargeSinceFull` (from the bank's SoC source) — and ours
under `bms.` (`BANK_PATHS`). A value no member gave is null.

One notification sums the bank up, `notifications.electrical.batteries.<bankId>.bank`: ok →
normal, warning → warn, alarm → alarm, degraded or unknown (a member silent, stale, keyless,
unreadable, partial, suspect) → alert — never normal while a member is not known. Its method is
["visual"] only: each member's own code notifications carry the sound, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from victron_ble_bms.hub.board import Board

from . import mapping as m
from .deltas import SOURCE, Outgoing, message, notification_message

BANK_PATHS: dict[str, tuple[str | None, str]] = {
    "bms.layout": (None, "parallel, series or series-parallel"),
    "bms.verdict": (None, "ok, warning, alarm, degraded (a member not fully known), unknown"),
    "bms.reason": (None, "the verdict in words"),
    "bms.membersExpected": (None, "members declared in the keys file"),
    "bms.membersHeard": (None, "members read in full or in part"),
    "bms.membersStale": (None, "members silent longer than stale_after_s"),
    "bms.voltageSpread": ("V", "between the members (parallel) or strings (series-parallel)"),
    "bms.cellVoltageMinAt": (None, "where the lowest cell is, e.g. 'House 2: cell 3'"),
    "bms.cellVoltageMaxAt": (None, "where the highest cell is"),
    "bms.blockingCharge": (None, "members not allowing charge ('' none; null unknown)"),
    "bms.blockingDischarge": (None, "members not allowing discharge ('' none; null unknown)"),
    "bms.imbalance": (None, "members out of balance with the others ('' none; null unknown)"),
}
_STATES = {"ok": "normal", "warning": "warn", "alarm": "alarm"}  # else: alert


def _names(value: list[str] | None) -> str | None:
    return None if value is None else ",".join(value)


def _codes(obj: Mapping[str, Any]) -> str | None:
    codes = obj.get("codes") or []
    if codes:
        return ",".join(f"{c['member']}: {c['id']}" for c in codes)
    return "" if obj.get("codes_complete") else None


def bank_values(obj: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A bank object (`banks.bank_object`) → (path relative to the battery, value)."""
    soc, ttg, consumed = obj.get("soc_pct"), obj.get("ttg_min"), obj.get("consumed_ah")
    t_max = obj.get("temperature_max_c")
    return [
        ("name", obj["name"]),
        ("voltage", obj.get("voltage_v")),
        ("current", obj.get("current_a")),
        ("temperature", None if t_max is None else round(t_max + m.KELVIN, 2)),
        ("capacity.stateOfCharge", None if soc is None else round(soc / 100.0, 4)),
        ("capacity.timeRemaining", None if ttg is None else ttg * 60),
        (
            "capacity.dischargeSinceFull",
            None if consumed is None else round(max(0.0, -consumed) * 3600.0, 1),
        ),
        ("bms.layout", obj.get("layout")),
        ("bms.verdict", obj.get("verdict")),
        ("bms.reason", obj.get("reason")),
        ("bms.membersExpected", obj.get("members")),
        ("bms.membersHeard", obj.get("members_heard")),
        ("bms.membersStale", obj.get("members_stale")),
        ("bms.voltageSpread", obj.get("voltage_spread_v")),
        ("bms.cellVoltageMin", obj.get("cell_voltage_min_v")),
        ("bms.cellVoltageMinAt", obj.get("cell_voltage_min_at")),
        ("bms.cellVoltageMax", obj.get("cell_voltage_max_v")),
        ("bms.cellVoltageMaxAt", obj.get("cell_voltage_max_at")),
        ("bms.allowedToCharge", obj.get("allowed_to_charge")),
        ("bms.allowedToDischarge", obj.get("allowed_to_discharge")),
        ("bms.blockingCharge", _names(obj.get("blocking_charge"))),
        ("bms.blockingDischarge", _names(obj.get("blocking_discharge"))),
        ("bms.imbalance", _names(obj.get("imbalance"))),
        ("bms.activeCodes", _codes(obj)),
    ]


def bank_notification(obj: Mapping[str, Any]) -> dict[str, Any]:
    state = _STATES.get(str(obj.get("verdict")), "alert")
    text = f"{obj['name']}: {obj.get('reason') or obj.get('verdict')}"
    if obj.get("imbalance_remedy"):
        text += f" Remedy: {obj['imbalance_remedy']}"
    return {"state": state, "method": [] if state == "normal" else ["visual"], "message": text}


def bank_ids(names: list[str], taken: set[str]) -> dict[str, str]:
    """Bank name → battery id: slugged, never one a device or another bank already has."""
    used = {t.lower() for t in taken}
    out: dict[str, str] = {}
    for name in sorted(names):
        base = m.slug(name) or "bank"
        candidate, n = base, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{base[: m.MAX_ID - 8]}Bank{n if n > 2 else ''}"
        used.add(candidate.lower())
        out[name] = candidate
    return out


class BankPublisher:
    """Each bank the board judges (`hub.Board`: one judgement for every sink) as a battery:
    its values and its summary notification, sent when the board says a bank changed."""

    def __init__(
        self,
        board: Board,
        *,
        taken_ids: set[str],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.board = board
        self.wall_clock = wall_clock
        self.ids = bank_ids(list(board.banks.banks), taken_ids)
        self.seen = -1  # the board's banks_version last sent
        self.notes: dict[str, dict[str, Any]] = {}  # name → the notification value last sent
        self.meta_sent: set[str] = set()

    def changed(self) -> list[Outgoing]:
        """After a reading or a tick: the banks again if the board's judgement changed."""
        if self.board.banks_version == self.seen:
            return []
        return self._send(force=False)

    def connected(self) -> list[Outgoing]:
        self.meta_sent.clear()
        return self._send(force=True)

    def keys_changed(self, taken_ids: set[str]) -> list[Outgoing]:
        self.ids = bank_ids(list(self.board.banks.banks), taken_ids)
        self.notes = {n: v for n, v in self.notes.items() if n in self.ids}
        return self._send(force=False)

    def _send(self, *, force: bool) -> list[Outgoing]:
        self.seen = self.board.banks_version
        if not self.board.banks:
            return []
        out: list[Outgoing] = []
        ts = self.wall_clock()
        for obj in self.board.bank_objects():
            name = obj["name"]
            bank_id = self.ids.get(name)
            if bank_id is None:
                continue
            items = bank_values(obj)
            for rel, value in m.meta([r for r, _ in items], name, None, own=BANK_PATHS):
                path = m.battery_path(bank_id, rel)
                if path not in self.meta_sent:
                    self.meta_sent.add(path)
                    out.append((("meta", path), message("meta", [(path, value)], ts, SOURCE)))
            full = [(m.battery_path(bank_id, rel), value) for rel, value in items]
            source = f"{SOURCE}.{bank_id}"
            out.append((("values", f"bank:{name}"), message("values", full, ts, source)))
            note = bank_notification(obj)
            if force or self.notes.get(name) != note:
                self.notes[name] = note
                out.append(notification_message(f"{m.NOTIFICATIONS}.{bank_id}.bank", note, ts))
        return out
