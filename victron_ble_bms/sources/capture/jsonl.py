"""Our capture format: JSON lines, one advertisement per line after a header line.

    {"format": "victron-ble-bms-capture", "version": 1, "created": "…", "source": "emulator"}
    {"ts": 1700000000.25, "address": "AA:BB:CC:DD:EE:FF", "rssi": -60, "name": "…",
     "manufacturer_data": {"737": "1000e5a005…"}, "address_type": "public", "origin": "emulator"}

The writer writes every line whole (`sink.RecordSink`), so a crash or power loss loses at most
the line being written — the reader tolerates such a truncated last line — and a full disk
stops the recording with one clear `RecordingError`, every line before it intact.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from ..advertisement import Advertisement
from .errors import CaptureError, CorruptRecord, UnknownFormat
from .sink import RecordSink

__all__ = [
    "FORMAT",
    "VERSION",
    "CaptureError",
    "JsonlWriter",
    "advertisement_from_json",
    "advertisement_to_json",
    "follow_jsonl",
    "is_jsonl_capture",
    "read_jsonl",
    "read_jsonl_file",
]

FORMAT = "victron-ble-bms-capture"
VERSION = 1


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


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8")


class JsonlWriter:
    """Append advertisements to a capture file, one whole line each (`RecordSink`: a full
    disk stops the recording with `RecordingError`, every line before it intact)."""

    def __init__(self, path: str | os.PathLike[str], *, source: str = "", **header: Any) -> None:
        self.path = Path(path)
        self._sink = RecordSink(self.path)
        created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        head = {"format": FORMAT, "version": VERSION, "created": created, "source": source}
        head.update(header)
        self._sink.write(_line(head), record=False)

    @property
    def count(self) -> int:
        return self._sink.count

    def write(self, adv: Advertisement) -> None:
        self._sink.write(_line(advertisement_to_json(adv)))

    def close(self) -> None:
        self._sink.close()

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
    with Path(path).open("rb") as f:
        yield from read_jsonl_file(f, path=str(path), errors=errors)


class _Lines:
    """Parses lines one at a time, remembering whether the header has been seen."""

    def __init__(self, path: str, errors: list[CaptureError] | None) -> None:
        self.path = path
        self.errors = errors
        self.header_seen = False

    def parse(self, raw: bytes, offset: int) -> Advertisement | None:
        text = raw.strip()
        if not text:
            return None
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            if not self.header_seen:
                self.header_seen = True
                if obj.get("format") != FORMAT:
                    raise UnknownFormat(
                        f"not a {FORMAT} file (no header line)", path=self.path, offset=0
                    )
                if int(obj.get("version", 0)) > VERSION:
                    raise UnknownFormat(
                        f"capture version {obj.get('version')} is newer than this program "
                        f"reads ({VERSION})",
                        path=self.path,
                        offset=0,
                    )
                return None
            return advertisement_from_json(obj)
        except CaptureError:
            raise
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            err = CorruptRecord(f"bad line skipped: {exc}", path=self.path, offset=offset)
            if self.errors is None:
                raise err from exc
            self.errors.append(err)
            return None


def read_jsonl_file(
    f: BinaryIO, *, path: str = "", errors: list[CaptureError] | None = None
) -> Iterator[Advertisement]:
    """`read_jsonl` on a file opened in binary mode (used by `open_capture`)."""
    lines = _Lines(path, errors)
    offset = 0
    for raw in f:
        line_offset, offset = offset, offset + len(raw)
        if not raw.endswith(b"\n"):
            # The last line, cut short by a crash or power loss: nothing to report, unless it
            # is complete JSON that merely lacks its newline.
            try:
                json.loads(raw)
            except ValueError:
                return
        adv = lines.parse(raw, line_offset)
        if adv is not None:
            yield adv


def follow_jsonl(
    path: str | os.PathLike[str],
    *,
    errors: list[CaptureError] | None = None,
    poll_s: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Advertisement]:
    """Like `tail -f`: stream the file, then wait for lines appended to it, until `stop()`
    is true (or the caller stops iterating / presses Ctrl-C). Partial lines wait for their
    newline."""
    lines = _Lines(str(path), errors)
    with Path(path).open("rb") as f:
        offset = 0
        pending = b""
        while True:
            raw = f.readline()
            if raw:
                pending += raw
                if not pending.endswith(b"\n"):
                    continue
                line, pending = pending, b""
                adv = lines.parse(line, offset)
                offset += len(line)
                if adv is not None:
                    yield adv
                continue
            if stop():
                return
            time.sleep(poll_s)
