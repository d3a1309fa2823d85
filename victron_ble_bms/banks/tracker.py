"""Banks over a stream of readings: the latest reading of each member, and the bank objects
that changed (`decode --format jsonl`, `scan --json`, `serve` write them).

    tracker = BankTracker(store.banks, stale_after_s=60.0)
    for reading in readings:
        for obj in tracker.update(reading):      # {"type": "bank", …} when a bank changed
            ...
    tracker.tick(now)                            # a member that fell silent is news too

"Changed" ignores the clock alone (`ts`, each member's `age_s`): a bank whose every value is
the same is not written again. Time is the readings' own (capture time when replaying).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from victron_ble_bms.sources.readings import KeyStatus, Reading

from .bank_json import bank_object
from .spec import BankSpec
from .state import BankState, bank_state

DEFAULT_STALE_S = 60.0  # as `serve`'s stale_after_s: a device silent this long is offline


def _json_lines(objs: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(obj, ensure_ascii=False) + "\n" for obj in objs]


def _unclocked(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("ts", "member_states")}
    # "stale (last heard 75 s ago)" changes every second: the texts are left out, the
    # members' statuses (and every value) stay in
    out["member_states"] = [
        {k: v for k, v in m.items() if k not in ("age_s", "detail")}
        for m in obj.get("member_states", ())
    ]
    out["reason"] = out["problems"] = None
    return out


def _trusted(reading: Reading) -> bool:
    record = reading.record
    return record is not None and not reading.suspect and not getattr(record, "implausible", ())


def member_reading(previous: Reading | None, reading: Reading) -> Reading:
    """The reading a member is judged by after `reading` arrives: a suspect one (replayed,
    forged, implausible, or a change not yet confirmed — sources/confirm.py) never replaces the
    member's last trusted values, as on every other output; with none yet, it stands, and the
    bank says so. A member heard only through suspect frames goes stale on its last good one."""
    if previous is not None and _trusted(previous) and not _trusted(reading):
        return previous
    return reading


class BankTracker:
    def __init__(self, banks: Mapping[str, BankSpec], stale_after_s: float = DEFAULT_STALE_S):
        self.stale_after_s = stale_after_s
        self._of: dict[str, list[str]] = {}  # member address → the banks it is in
        self._latest: dict[str, Reading] = {}
        self._last: dict[str, dict[str, Any]] = {}
        self.now = 0.0
        self.set_banks(banks)

    def set_banks(self, banks: Mapping[str, BankSpec]) -> None:
        """The declarations changed (keys file re-read): the members' readings are kept."""
        self.banks = dict(banks)
        self._of = {}
        for spec in self.banks.values():
            for address in spec.addresses:
                self._of.setdefault(address, []).append(spec.name)
        self._last = {n: v for n, v in self._last.items() if n in self.banks}

    def __bool__(self) -> bool:
        return bool(self.banks)

    def update(self, reading: Reading) -> list[dict[str, Any]]:
        """Take one reading; the objects of the banks it changed (usually none or one)."""
        address = reading.advertisement.address
        names = self._of.get(address)
        if names is None or reading.status is KeyStatus.NOT_VICTRON:
            return []
        self._latest[address] = member_reading(self._latest.get(address), reading)
        self.now = max(self.now, reading.advertisement.ts)
        return self._changed(names, self.now)

    def lines(self, reading: Reading) -> list[str]:
        """`update`, as JSON lines (with their newline) for `decode --format jsonl` and `scan
        --json`: the frame objects' serialization (ensure_ascii off)."""
        return _json_lines(self.update(reading))

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Every bank again at `now`: members that fell silent become stale."""
        self.now = max(self.now, now)
        return self._changed(list(self.banks), self.now)

    def tick_lines(self, now: float) -> list[str]:
        """`tick`, as JSON lines like `lines` (`scan --json`'s clock)."""
        return _json_lines(self.tick(now))

    def state(self, name: str, now: float | None = None) -> BankState:
        return bank_state(
            self.banks[name], self._latest, self.now if now is None else now, self.stale_after_s
        )

    def _changed(self, names: list[str], now: float) -> list[dict[str, Any]]:
        out = []
        for name in names:
            obj = bank_object(self.state(name, now))
            key = _unclocked(obj)
            if self._last.get(name) != key:
                self._last[name] = key
                out.append(obj)
        return out
