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
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from ...safetext import plain
from ..advertisement import AddressError, Advertisement, normalize_address
from .errors import CaptureError, CorruptRecord, UnknownFormat
from .hci import advertisement
from .lane import JSON_RSSI, SHORT_TIME, Lane, time_text
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

_CHUNK = 1 << 16  # bytes read at a time
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


class FieldError(ValueError):
    """A JSON-lines field of the wrong type or out of range (the line is skipped)."""


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if type(value) is float or type(value) is int:  # not bool, not str
        ts = float(value)
        if math.isfinite(ts):
            return ts
        raise FieldError(f"{key} {value!r} is not a finite number")
    if key not in obj:
        raise FieldError(f"no {key}")
    raise FieldError(f"{key} must be a number, not {type(value).__name__}")


def _rssi(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise FieldError(f"rssi must be a whole number of dBm, not {type(value).__name__}")
    if not -128 <= value <= 127:
        raise FieldError(f"rssi {value} is not a signal strength (-128..127 dBm)")
    return value


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise FieldError(f"{key} must be text, not {type(value).__name__}")
    if not value.isascii():
        # A lone surrogate ("\\ud800" in the file) cannot be written as UTF-8 anywhere
        # later: keep it visible as an escape instead.
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


_ADDRESSES: dict[str, str] = {}  # spelling as written → normalised; bounded below


def _address(value: Any) -> str:
    cached = _ADDRESSES.get(value) if type(value) is str else None
    if cached is not None:
        return cached
    if type(value) is not str:
        raise FieldError(f"address must be text, not {type(value).__name__}")
    try:
        address = normalize_address(value)
    except AddressError as exc:
        raise FieldError(str(exc)) from None
    if len(_ADDRESSES) >= 4096:
        _ADDRESSES.clear()
    _ADDRESSES[value] = address
    return address


_COMPANIES: dict[str, int] = {}  # "737" → 737, for the few company ids a file holds


def _company(k: str) -> int:
    company = _COMPANIES.get(k)
    if company is None:
        if not (k.isascii() and k.isdigit()) or int(k) > 0xFFFF:
            raise FieldError(f"company id {k[:20]!r} is not a number 0..65535")
        company = int(k)
        if len(_COMPANIES) >= 1024:
            _COMPANIES.clear()
        _COMPANIES[k] = company
    return company


def _manufacturer_data(value: Any) -> dict[int, bytes]:
    if not value:
        return {}
    if type(value) is not dict:
        raise FieldError("manufacturer_data must be an object")
    md: dict[int, bytes] = {}
    for k, v in value.items():
        if type(v) is not str:
            raise FieldError(f"manufacturer data must be hex text, not {type(v).__name__}")
        md[_company(k)] = bytes.fromhex(v)
    return md


def advertisement_from_json(obj: dict[str, Any]) -> Advertisement:
    """One JSON-lines object → an Advertisement; `ValueError` (a `FieldError` naming the
    field) for anything of the wrong type or out of range. Addresses are normalised, so
    'aa:bb:…' finds the key stored for 'AA:BB:…'."""
    get = obj.get
    ts, rssi, name, kind, origin = (
        get("ts"),
        get("rssi"),
        get("name"),
        get("address_type"),
        get("origin"),
    )
    if (
        type(ts) is float
        and ts - ts == 0.0  # finite
        and (type(rssi) is int and -128 <= rssi <= 127 or rssi is None)
        and (name is None or type(name) is str and name.isascii())
        and (kind is None or type(kind) is str and kind.isascii())
        and type(origin) is str
        and origin.isascii()
    ):  # what our writer writes: no further checks needed for these five
        return advertisement(
            ts,
            _address(get("address")),
            _manufacturer_data(get("manufacturer_data")),
            rssi,
            name,
            kind,
            origin or "jsonl",
        )
    return advertisement(
        _number(obj, "ts"),
        _address(get("address")),
        _manufacturer_data(obj.get("manufacturer_data")),
        _rssi(obj.get("rssi")),
        _text(obj, "name"),
        _text(obj, "address_type"),
        _text(obj, "origin") or "jsonl",
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


_decode = json.JSONDecoder().decode


def _loads(text: bytes) -> Any:
    """json.loads whose failures are all ValueError: ~1,000 nested brackets exhaust the
    parser's recursion (RecursionError), and no capture line nests more than 2 deep.
    Our files are UTF-8 (UnicodeDecodeError is a ValueError too)."""
    try:
        return _decode(text.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


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

    def parse(self, raw: bytes, offset: int, line: int) -> Advertisement | None:
        text = raw.strip()
        if not text:
            return None
        try:
            obj = _loads(text)
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
            reason = plain(exc, 120)
            err = CorruptRecord(
                f"bad line skipped: {reason}", path=self.path, offset=offset, line=line
            )
            if self.errors is None:
                raise err from exc
            self.errors.append(err)
            return None


def read_jsonl_file(
    f: BinaryIO,
    *,
    path: str = "",
    errors: list[CaptureError] | None = None,
    lane: Lane | None = None,
) -> Iterator[Advertisement]:
    """`read_jsonl` on a file opened in binary mode (used by `open_capture`).

    With a `lane` (lane.py), a line as our writer writes it (`{"ts":T,"address":…,"rssi":R,
    "name":…`, T the shortest text of a finite float, R an int or null as json.dumps writes
    them) is looked up by its text without T and R before it is parsed."""
    lines = _Lines(path, errors)
    parse = lines.parse
    offset = 0  # of the batch's first line
    number = 0  # lines before the batch
    # With a lane, once the header is read: the fast shape is tried first.
    fast = False
    pending = None  # the lane's key of the line going the slow way
    if lane is not None:
        packets, out, miss, flush_at = lane.packets, lane.out, lane.miss, lane.flush_at
    fast_line = _FAST_LINE.match
    read = f.read
    tail = b""  # the start of a line the next chunk ends
    while True:
        chunk = read(_CHUNK)
        data = tail + chunk if tail else chunk
        batch = data.split(b"\n") if chunk else []
        tail = batch.pop() if chunk else tail
        # A line's offset, for the slow way's messages: counted up to the line that needs it.
        seen, seen_offset = 0, offset
        for i, raw in enumerate(batch):  # each line without its newline
            if fast:
                m = fast_line(raw)
                if m is not None:
                    short_ts, other_ts, address, rssi, rest = m.groups()
                    rssi_text = JSON_RSSI.get(rssi)
                    ts_text = short_ts.decode() if short_ts is not None else time_text(other_ts)
                    if rssi_text is not None and ts_text is not None:
                        key = address + rest
                        entry = packets.get(key)
                        if entry is not None:
                            entry[3] += 1
                            if entry[0] is not None:
                                out.append(
                                    f"{entry[0]}{ts_text}{entry[1]}{rssi_text}{entry[2]}{entry[5]}"
                                )
                            continue
                        if miss(key, ts_text, rssi_text):
                            continue
                        if _plain_key(key):  # learnt: then `packets` holds only such keys
                            pending = key
            if lane is not None:
                lane.pending = pending
                pending = None
            seen_offset += sum(map(len, batch[seen:i])) + i - seen
            seen = i
            adv = parse(raw, seen_offset, number + i + 1)
            if lane is not None:
                fast = lines.header_seen
            if adv is not None:
                yield adv
        number += len(batch)
        offset += len(data) - len(tail)
        if lane is not None and len(out) >= flush_at:
            lane.flush()
        if not chunk:
            break
    if tail:
        # The last line, cut short by a crash or power loss: nothing to report, unless it
        # is complete JSON that merely lacks its newline.
        try:
            _loads(tail)
        except ValueError:
            return
        if lane is not None:
            lane.pending = None
        adv = parse(tail, offset, number + 1)
        if adv is not None:
            yield adv


# A line as our writer writes it, in pieces: the time (its text when SHORT_TIME says it is
# json.dumps's, else any text without a comma), the address's text, the RSSI's (checked against
# JSON_RSSI) and the rest. The lane's key is the line without time and RSSI: address + rest.
_FAST_LINE = re.compile(
    rb'\{"ts":(?:(' + SHORT_TIME + rb')|([^,]*))(,"address":"[^"]*"),"rssi":(-?[0-9]{1,3}|null)'
    rb'(,"name":.*)',
    re.S,
)


def _plain_key(key: bytes) -> bool:
    """The rest of a line names ts and rssi nowhere else, and has no escapes (a key spelled
    with escapes could be either): then the values cut out are the ones the line has."""
    return b'"ts"' not in key and b'"rssi"' not in key and b"\\" not in key


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
        number = 0
        pending = b""
        while True:
            raw = f.readline()
            if raw:
                pending += raw
                if not pending.endswith(b"\n"):
                    continue
                line, pending = pending, b""
                number += 1
                adv = lines.parse(line, offset, number)
                offset += len(line)
                if adv is not None:
                    yield adv
                continue
            if stop():
                return
            time.sleep(poll_s)
