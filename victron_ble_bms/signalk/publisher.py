"""The board's batteries → Signal K delta messages. Pure (no I/O); it remembers what it sent.

Each message comes with a key: a newer message with the same key replaces a queued one, so the
link's outbox holds at most one values message per battery, one message per notification path
and one meta message per path, however long the server is away (`link.py`).

Rules:
- only devices of ours (in the keys — the user's file, or the emulator's) whose record is a
  battery's (`mapping.BATTERY_RECORDS`); a neighbour's devices never reach the boat's hub;
- values are the board's last trusted reading; `bms.keyStatus` and `bms.suspect` say what the
  latest frame was;
- a code's notification is raised when it appears and set to `normal` when a complete frame no
  longer has it. When the codes are unknown (partial frame, wrong key, no trusted reading) or the
  device is silent, no notification is touched: unknown is never an all-clear;
- a device silent for the board's `stale_after_s` gets its values set to null and a `noData`
  warning, cleared when it is heard again;
- notifications travel in messages of their own, never beside values (`deltas.py`);
- each bank declared in the keys file is a battery of its own (`banks.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from victron_ble_bms.hub.board import Board, DeviceEntry
from victron_ble_bms.mqtt.state import codes_of
from victron_ble_bms.protocol import Code
from victron_ble_bms.sources.readings import KeyStatus, Reading

from . import mapping as m
from .banks import BankPublisher
from .deltas import SOURCE, Delta, Outgoing, message, notification_message
from .leftover import NO_DATA, raised_by_us

__all__ = ["Delta", "Outgoing", "Publisher"]
_KEEP_WHEN_SILENT = {"name", "manufacturer.name", "manufacturer.model", "bms.keyStatus"}


class Publisher:
    def __init__(self, board: Board, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.board = board
        self.wall_clock = wall_clock
        self.ids: dict[str, str] = {}
        self.active: dict[str, dict[str, dict[str, Any]]] = {}  # address → code id → value sent
        self.paths: dict[str, set[str]] = {}  # address → relative value paths sent
        self.silent: set[str] = set()  # addresses whose noData warning is up
        self.meta_sent: set[str] = set()  # full paths, per connection
        self._refresh_ids()
        self.banks = BankPublisher(board, taken_ids=set(self.ids.values()), wall_clock=wall_clock)

    # --- what serve calls -----------------------------------------------------------------
    def keys_changed(self) -> list[Outgoing]:
        """Ids follow the keys file's names. A device that lost its key is no longer ours: its
        values become null (its notifications are left as they were: nothing is known). A
        renamed device's values under its old id become null too; its next reading fills the
        new one (its raised notifications are raised again there)."""
        old_ids = {address: self._id(address) for address in self.paths}
        self._refresh_ids()
        out: list[Outgoing] = []
        for address, old_id in old_ids.items():
            gone = address not in self.board.keys
            if gone or self._id(address) != old_id:
                nulls = self._nulls(address, old_id)
                # Keyed apart from the new id's values, so neither replaces the other queued.
                out += [(("values", f"{address}@{old_id}"), msg) for _key, msg in nulls]
            if gone:
                del self.paths[address]
                self.active.pop(address, None)
                self.silent.discard(address)
            elif self._id(address) != old_id:
                self.active.pop(address, None)  # raised again under the new id when heard
        return out + self.banks.keys_changed(set(self.ids.values()))

    def _refresh_ids(self) -> None:
        addresses = list(self.board.keys)
        self.ids = m.battery_ids({a: self.board.names(a) for a in addresses})

    def reading(self, reading: Reading) -> list[Outgoing]:
        """After the board took `reading`: its device's messages, and its banks'."""
        entry = self.board.get(reading.advertisement.address)
        out = [] if entry is None else self.device(entry)
        return out + self.banks.changed()

    def tick(self) -> list[Outgoing]:
        """Devices that went silent: values null, a noData warning."""
        out: list[Outgoing] = []
        now = self.board.clock()
        for entry in list(self.board.keyed.values()):
            address = entry.address
            if address in self.paths and address not in self.silent and self.board.stale(entry):
                self.silent.add(address)
                out += self._silent(entry, now)
        return out + self.banks.changed()

    def found_raised(self, tree: Any) -> None:
        """The server's `notifications.electrical.batteries` subtree, read on connecting: what
        our `$source` left raised there (an earlier run, or this one before an outage) counts
        as raised by us, so that a complete frame without the code sets it to `normal` and a
        device heard again clears a `noData` warning (`leftover.py`)."""
        by_id = {self._id(address): address for address in self.board.keys}
        for battery_id, notes in raised_by_us(tree, set(by_id)).items():
            address = by_id[battery_id]
            for name, value in notes.items():
                if name == NO_DATA:
                    self.silent.add(address)
                else:
                    self.active.setdefault(address, {}).setdefault(name, value)

    def connected(self) -> list[Outgoing]:
        """Everything, for a fresh connection: meta again, values, notifications up."""
        self.meta_sent.clear()
        out: list[Outgoing] = []
        for entry in list(self.board.keyed.values()):
            out += self.device(entry, resend=True)
            if entry.address in self.silent:
                out += self._silent(entry, self.board.clock())
        return out + self.banks.connected()

    # --- one device -----------------------------------------------------------------------
    def _id(self, address: str) -> str:
        return self.ids.get(address) or m.address_id(address)

    def _display(self, entry: DeviceEntry, product: str | None) -> str:
        return self.board.name(entry) or f"{product or 'Victron'} {entry.address}"

    def device(self, entry: DeviceEntry, *, resend: bool = False) -> list[Outgoing]:
        if not entry.keyed:
            return []
        good = entry.good
        latest = entry.latest
        record = good.record if good is not None else None
        record_type = (
            record.record_type
            if record is not None
            else latest.record.record_type
            if latest.record is not None
            else latest.frame.record_type
            if latest.frame is not None
            else None
        )
        if record_type not in m.BATTERY_RECORDS:
            return []
        address = entry.address
        battery_id = self._id(address)
        product = record.product if record is not None else None
        display = self._display(entry, product)
        ts = (good or latest).advertisement.ts
        codes: tuple[Code, ...] | None = None if record is None else codes_of(record)
        status = latest.status
        if latest.record is None and status is KeyStatus.OK:
            status = KeyStatus.UNDECODABLE
        items = m.identity(display, product)
        if record is not None:
            items += m.values(record)
        items += [
            ("bms.keyStatus", status.value),
            ("bms.suspect", self.board.shown_suspicion(entry)),
            ("bms.activeCodes", m.codes_text(codes)),
        ]
        out: list[Outgoing] = []
        if address in self.silent and not self.board.stale(entry):
            self.silent.discard(address)
            path = f"{m.NOTIFICATIONS}.{battery_id}.noData"
            out.append(self._notification(path, m.data_back(display), ts))
        rels = [rel for rel, _ in items]
        self.paths.setdefault(address, set()).update(rels)
        out += self._meta(battery_id, rels, display, record_type)
        out.append(
            (
                ("values", address),
                message("values", self._full(battery_id, items), ts, self._src(address)),
            )
        )
        if codes is not None:
            out += self._codes(entry, battery_id, display, codes, ts, resend)
        elif resend:  # codes unknown now: what was raised stays raised, on the new connection too
            for code_id, value in self.active.get(address, {}).items():
                out.append(self._notification(m.code_path(battery_id, code_id), value, ts))
        return out

    def _src(self, address: str) -> str:
        return f"{SOURCE}.{m.address_id(address)}"

    def _full(self, battery_id: str, items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return [(m.battery_path(battery_id, rel), value) for rel, value in items]

    def _meta(
        self, battery_id: str, rels: list[str], display: str, record_type: int | None
    ) -> list[Outgoing]:
        out: list[Outgoing] = []
        for rel, value in m.meta(rels, display, record_type):
            path = m.battery_path(battery_id, rel)
            if path not in self.meta_sent:
                self.meta_sent.add(path)
                meta = message("meta", [(path, value)], self.wall_clock(), SOURCE)
                out.append((("meta", path), meta))
        return out

    def _notification(self, path: str, value: dict[str, Any], ts: float) -> Outgoing:
        return notification_message(path, value, ts)

    def _codes(
        self,
        entry: DeviceEntry,
        battery_id: str,
        display: str,
        codes: tuple[Code, ...],
        ts: float,
        resend: bool,
    ) -> list[Outgoing]:
        sent = self.active.setdefault(entry.address, {})
        out: list[Outgoing] = []
        now_ids = set()
        for code in codes:
            now_ids.add(code.id)
            value = m.notification(code, display)
            if resend or sent.get(code.id) != value:
                sent[code.id] = value
                out.append(self._notification(m.code_path(battery_id, code.id), value, ts))
        for gone in [c for c in sent if c not in now_ids]:
            del sent[gone]
            value = m.cleared(gone, display)
            out.append(self._notification(m.code_path(battery_id, gone), value, ts))
        return out

    def _nulls(self, address: str, battery_id: str) -> list[Outgoing]:
        rels = sorted(self.paths.get(address, set()) - _KEEP_WHEN_SILENT)
        items = [(m.battery_path(battery_id, rel), None) for rel in rels]
        if not items:
            return []
        nulls = message("values", items, self.wall_clock(), self._src(address))
        return [(("values", address), nulls)]

    def _silent(self, entry: DeviceEntry, now: float) -> list[Outgoing]:
        battery_id = self._id(entry.address)
        good = entry.good
        product = good.record.product if good is not None and good.record is not None else None
        display = self._display(entry, product)
        path = f"{m.NOTIFICATIONS}.{battery_id}.noData"
        value = m.no_data(display, self.board.age_s(entry, now))
        return [
            *self._nulls(entry.address, battery_id),
            self._notification(path, value, self.wall_clock()),
        ]
