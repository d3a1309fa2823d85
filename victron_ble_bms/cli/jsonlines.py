"""`decode --format jsonl` at the speed of reading: a per-device cache of the serialized line.

A battery repeats its values for minutes (99.8 % of the frames of a day's capture carry the
plaintext the device sent before); only the time, the RSSI and the nonce change. So for each
device we keep the last decrypted plaintext (with the clear header around it) and the JSON
line it produced, split where ts, rssi and nonce go. A frame whose header and plaintext equal
the device's last ones is written by filling in those three values; anything else goes the
full way (decode_advertisement → frame_object → json.dumps) and becomes the new template.

Exactness: the template is made by the same json.dumps call as the uncached line, with
sentinels for the three values, and is kept only if filling it back in reproduces that very
line byte for byte. ts is written the way json.dumps writes it (float repr) and only finite
floats take the cached way. Nothing here interprets the record: a new plaintext, header byte,
key, name or length always misses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from victron_ble_bms.protocol import COMPANY_ID, Record
from victron_ble_bms.protocol.crypto import KeyCipher, cipher_for

from ..jsonform import frame_object
from ..sources.advertisement import Advertisement

MAX_DEVICES = 4096  # bound on the cache (a busy marina); cleared when full
_INSTANT_READOUT = 0x10
_UNENCRYPTED = 0xFF
# Sentinels json.dumps writes as "\u0000ts\u0000" etc.; no real value serializes to them
# (a name that contains one makes the template ambiguous, and it is then not cached).
_SENTINELS = {"ts": "\x00ts\x00", "rssi": "\x00rssi\x00", "nonce": "\x00nonce\x00"}
_float_repr = float.__repr__


def dumps(obj: dict[str, Any]) -> str:
    """The one serialization of a frame object for JSON lines (as before: ensure_ascii off)."""
    return json.dumps(obj, ensure_ascii=False)


class _Device:
    __slots__ = ("head", "name", "plaintext", "cipher", "parts")

    def __init__(
        self, head: bytes, name: str | None, plaintext: int, cipher: KeyCipher, parts: list[str]
    ) -> None:
        self.head = head  # bytes 0-4 and 7 and the length: everything but nonce and data
        self.name = name
        self.plaintext = plaintext
        self.cipher = cipher
        self.parts = parts  # 4 literal pieces around ts, rssi, nonce


def _head(data: bytes) -> bytes:
    return data[:5] + data[7:8] + bytes((len(data),))


class JsonLines:
    """Lines of `decode --format jsonl`; `cached(adv)` is the fast way, `full(...)` the other."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = keys
        self._devices: dict[str, _Device] = {}

    def cached(self, adv: Advertisement) -> str | None:
        """The line for `adv` if it repeats its device's last decoded values, else None."""
        device = self._devices.get(adv.address)
        if device is None:
            return None
        data = adv.manufacturer_data.get(COMPANY_ID)
        head = device.head
        if (
            data is None
            or len(data) != head[6]
            or data[:5] != head[:5]
            or data[7] != head[5]
            or adv.name != device.name
        ):
            return None
        ts = adv.ts
        if type(ts) is not float or ts - ts != 0.0:  # not a finite float: the full way
            return None
        nonce = data[5] | (data[6] << 8)
        stream = device.cipher.keystream(nonce)
        if (
            int.from_bytes(data[8:], "little") ^ int.from_bytes(stream[: len(data) - 8], "little")
            != device.plaintext
        ):
            return None
        rssi: object = adv.rssi
        if rssi is None:
            rssi = "null"
        elif type(rssi) is not int:  # written by json.dumps, not by us
            return None
        p0, p1, p2, p3 = device.parts
        return f"{p0}{_float_repr(ts)}{p1}{rssi}{p2}{nonce}{p3}"

    def full(self, adv: Advertisement, name: str, record: Record) -> str:
        """The line for a freshly decoded record (exactly as before); remembers it as the
        device's template when the frame is one the cached way can recognise."""
        obj = frame_object(adv.ts, adv.address, adv.rssi, name, record)
        line = dumps(obj)
        if not (record.partial or record.implausible):  # those are counted frame by frame
            self._remember(adv, obj, line)
        return line

    def _remember(self, adv: Advertisement, obj: dict[str, Any], line: str) -> None:
        data = adv.manufacturer_data.get(COMPANY_ID)
        key = self._keys.get(adv.address)
        if (
            data is None
            or key is None
            or not 8 < len(data) <= 24
            or data[0] != _INSTANT_READOUT
            or data[4] == _UNENCRYPTED
            or type(adv.ts) is not float
            or not (adv.rssi is None or type(adv.rssi) is int)
        ):
            return
        nonce = data[5] | (data[6] << 8)
        if obj.get("nonce") != nonce or "ts" not in obj or "rssi" not in obj:
            return
        marked = dict(obj)
        for field, sentinel in _SENTINELS.items():
            marked[field] = sentinel
        text = dumps(marked)
        pieces: list[str] = []
        rest = text
        for field in ("ts", "rssi", "nonce"):
            token = json.dumps(_SENTINELS[field])
            before, found, rest = rest.partition(token)
            if not found or text.count(token) != 1:
                return
            pieces.append(before)
        pieces.append(rest)
        cipher = cipher_for(bytes(key))
        n = len(data) - 8
        stream = cipher.keystream(nonce)
        plaintext = int.from_bytes(data[8:], "little") ^ int.from_bytes(stream[:n], "little")
        device = _Device(_head(data), adv.name, plaintext, cipher, pieces)
        rssi = "null" if adv.rssi is None else str(adv.rssi)
        again = pieces[0] + _float_repr(adv.ts) + pieces[1] + rssi + pieces[2]
        if again + str(nonce) + pieces[3] != line:  # the safety net: never a different byte
            return
        if len(self._devices) >= MAX_DEVICES:
            self._devices.clear()
        self._devices[adv.address] = device
