"""Our capture format: JSON lines, one advertisement per line after a header line.

    {"format": "victron-ble-bms-capture", "version": 1, "created": "…", "source": "emulator"}
    {"ts": 1700000000.25, "address": "AA:BB:CC:DD:EE:FF", "rssi": -60, "name": "…",
     "manufacturer_data": {"737": "1000e5a005…"}, "address_type": "public", "origin": "emulator"}

The writer flushes every line, so a crash or power loss loses at most the line being written;
the reader tolerates such a truncated last line.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..advertisement import Advertisement

FORMAT = "victron-ble-bms-capture"
VERSION = 1


class CaptureError(Exception):
    """A capture file that cannot be read; the message names the file and byte offset."""


def advertisement_to_json(adv: Advertisement) -> dict[str, Any]:
    return {
        "ts": adv.ts,
        "address": adv.address,
        "rssi": adv.rssi,
        "name": adv.name,
        "manufacturer_data": {str(k): v.hex() for k, v in adv.manufacturer_data.items()},
        "address_type": adv.address_type,
        "origin": adv.origin,
    }


def advertisement_from_json(obj: dict[str, Any]) -> Advertisement:
    md = obj.get("manufacturer_data") or {}
    if not isinstance(md, dict):
        raise ValueError("manufacturer_data must be an object")
    return Advertisement(
        ts=float(obj["ts"]),
        address=str(obj["address"]),
        manufacturer_data={int(k): bytes.fromhex(v) for k, v in md.items()},
        rssi=None if obj.get("rssi") is None else int(obj["rssi"]),
        name=obj.get("name"),
        address_type=obj.get("address_type"),
        origin=str(obj.get("origin") or "jsonl"),
    )


class JsonlWriter:
    """Append advertisements to a capture file, one flushed line each."""

    def __init__(self, path: str | os.PathLike[str], *, source: str = "", **header: Any) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self.count = 0
        created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        head = {"format": FORMAT, "version": VERSION, "created": created, "source": source}
        head.update(header)
        self._write(head)

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._file.flush()

    def write(self, adv: Advertisement) -> None:
        self._write(advertisement_to_json(adv))
        self.count += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def is_jsonl_capture(head: bytes) -> bool:
    """Content sniffing: does the file start with our header line?"""
    first = head.lstrip()[:200]
    return first.startswith(b"{") and FORMAT.encode() in first


def read_jsonl(
    path: str | os.PathLike[str], *, errors: list[CaptureError] | None = None
) -> Iterator[Advertisement]:
    """Stream advertisements. A bad line is skipped (reported in `errors` when given, else
    raised); a truncated last line is expected after a crash and skipped quietly."""
    p = Path(path)
    with p.open("rb") as f:
        offset = 0
        first = True
        for raw in f:
            line_offset, offset = offset, offset + len(raw)
            complete = raw.endswith(b"\n")
            text = raw.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                if first:
                    first = False
                    if obj.get("format") != FORMAT:
                        raise CaptureError(f"{p}: not a {FORMAT} file (no header line at byte 0)")
                    if int(obj.get("version", 0)) > VERSION:
                        raise CaptureError(
                            f"{p}: capture version {obj.get('version')} is newer "
                            f"than this program reads ({VERSION})"
                        )
                    continue
                yield advertisement_from_json(obj)
            except CaptureError:
                raise
            except (ValueError, KeyError, TypeError) as exc:
                if not complete:  # last line cut short by a crash: nothing to report
                    return
                err = CaptureError(f"{p}: bad line at byte {line_offset}: {exc}")
                if errors is None:
                    raise err from exc
                errors.append(err)
