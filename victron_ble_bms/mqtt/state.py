"""The JSON object on `<prefix>/<addr>/state`.

It is `frame_json.frame_object` (the objects of `decode --format jsonl`) plus `key_status`, and a
few values computed here so Home Assistant templates stay trivial and cannot get them wrong:

- `cell_min_v`, `cell_max_v`, `cell_spread_mv` — for records with cells (a cell below or above
  the 7-bit range counts as its bound, docs/protocol.md §2.1);
- `allowed_to_charge`, `allowed_to_discharge` — true / false / null (not available);
- `power_w` — battery voltage × current (+ charging), for records with both;
- `worst_code` — the id of the worst active code, "none" when there is none, null when the
  codes are unknown (frame incomplete: never an all-clear, CONTRACTS.md protocol branch);
- `code_details` — every active code with its explanation and remedy (null when unknown).

Undecodable devices get `key_status` ("no key", "key mismatch", "undecodable") and `message`.
"""

from __future__ import annotations

from typing import Any

from victron_ble_bms.frame_json import frame_object
from victron_ble_bms.protocol import Code, Record
from victron_ble_bms.protocol.products import product_name
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.readings import KeyStatus, Reading, shown_suspect

_TRISTATE = {"yes": True, "no": False}


def codes_of(record: Record) -> tuple[Code, ...] | None:
    """The record's codes; None = unknown (protocol branch contract). Never raises."""
    try:
        codes: tuple[Code, ...] | None = record.codes
    except Exception:  # noqa: BLE001 - a record that cannot tell its codes: unknown, not clear
        return None
    return codes


def _derived(record: Record, obj: dict[str, Any]) -> None:
    low = getattr(record, "min_cell_v", None)
    if "cell_voltages_v" in obj:
        high = getattr(record, "max_cell_v", None)
        spread = getattr(record, "cell_spread_mv", None)
        obj["cell_min_v"] = low
        obj["cell_max_v"] = high
        obj["cell_spread_mv"] = spread
    for name in ("allowed_to_charge", "allowed_to_discharge"):
        io = obj.get("io")
        if isinstance(io, dict) and name in io:  # Lynx: tri-state IO bits
            obj[name] = _TRISTATE.get(io[name])
        elif hasattr(record, name):
            try:
                value = getattr(record, name)  # None: the flags were not received
            except Exception:  # noqa: BLE001 - flags not received: not available
                value = None
            # Never bool(None): unknown published as false turns HA's sensor off (issue 18).
            obj[name] = value if isinstance(value, bool) else None
    if hasattr(record, "power_w"):  # where voltage and current are both known (Lynx)
        try:
            obj["power_w"] = record.power_w
        except Exception:  # noqa: BLE001 - not computable: not available
            obj["power_w"] = None
    codes = codes_of(record)
    if codes is None:
        obj["codes"] = None
        obj["worst_code"] = None
        obj["code_details"] = None
    else:
        obj["worst_code"] = max(codes, key=lambda c: c.severity).id if codes else "none"
        obj["code_details"] = [
            {**c.to_dict(), "explanation": c.explanation, "remedy": c.remedy} for c in codes
        ]


def state_object(reading: Reading, name: str | None, message: str | None = None) -> dict[str, Any]:
    """The state JSON of one reading (see the module docstring)."""
    adv = reading.advertisement
    record = reading.record
    shown_name = plain(name) if name else None
    try:
        obj = frame_object(adv.ts, adv.address, adv.rssi, shown_name, record)
    except Exception:  # noqa: BLE001 - a record whose JSON fails is shown as undecodable
        obj = frame_object(adv.ts, adv.address, adv.rssi, shown_name, None)
        record = None
    obj["key_status"] = (
        reading.status.value
        if record is not None
        else (
            KeyStatus.UNDECODABLE.value if reading.status is KeyStatus.OK else reading.status.value
        )
    )
    if record is not None:
        _derived(record, obj)
    else:
        frame = reading.frame
        if frame is not None:
            obj["model_id"] = frame.model_id
            obj["product"] = product_name(frame.model_id)
            obj["record_type_id"] = frame.record_type
            obj["nonce"] = frame.nonce
        obj["message"] = plain(message or reading.error or reading.status.value)
    suspect = shown_suspect(reading, False)  # replay/forgery/implausible, a never-confirmed note
    if suspect:
        obj["suspect"] = plain(suspect)
    return obj
