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
from collections.abc import Callable, Mapping
from typing import Any

from victron_ble_bms.protocol import COMPANY_ID, Record
from victron_ble_bms.protocol.crypto import KeyCipher, cipher_for

from ..frame_json import frame_object
from ..sources.advertisement import Advertisement
from ..sources.capture.lane import RSSI_TEXT, Entry, Lane

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
    __slots__ = ("head", "name", "plaintext", "cipher", "parts", "end", "high", "block", "hex")

    def __init__(
        self, head: bytes, name: str | None, plaintext: int, cipher: KeyCipher, parts: list[str]
    ) -> None:
        self.head = head  # bytes 0-4 and 7 and the length: everything but nonce and data
        self.name = name
        self.plaintext = plaintext
        self.cipher = cipher
        self.parts = parts  # 4 literal pieces around ts, rssi, nonce
        self.end = parts[3] + "\n"  # a lane entry's last piece (shared by all of them)
        self.high = -1  # `block` holds the ciphertexts of the nonces high << 8 … | 255
        self.block = b""
        self.hex = b""  # `block` as hex text (ASCII), made when first asked for

    def ciphertext(self, nonce: int) -> bytes:
        """The frame's data (from byte 8) that carries this device's template values under
        `nonce`: from one ECB call and one XOR per 256 nonces (crypto.KeyCipher.keystreams),
        as a device counts up. A frame whose data equals it repeats the template's values."""
        high = nonce >> 8
        if high != self.high:
            n = self.head[6] - 8
            plain = (self.plaintext.to_bytes(n, "little") + bytes(16 - n)) * 256
            stream = self.cipher.keystreams(high)
            self.block = (
                int.from_bytes(stream, "little") ^ int.from_bytes(plain, "little")
            ).to_bytes(4096, "little")
            self.hex = b""
            self.high = high
        at = (nonce & 0xFF) << 4
        return self.block[at : at + self.head[6] - 8]

    def ciphertext_hex(self, nonce: int) -> bytes:
        """`ciphertext(nonce)` as our JSON-lines writer writes it (lowercase hex)."""
        self.ciphertext(nonce)
        if not self.hex:
            self.hex = self.block.hex().encode("ascii")
        at = (nonce & 0xFF) << 5
        return self.hex[at : at + 2 * (self.head[6] - 8)]


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

    def template(self, adv: Advertisement) -> tuple[str, str, str, _Device] | None:
        """`adv`'s line in three pieces around its ts and rssi (and the device template they
        come from), when `cached` gives its line; else None."""
        if self.cached(adv) is None:
            return None
        device = self._devices[adv.address]
        data = adv.manufacturer_data[COMPANY_ID]
        p0, p1, p2, p3 = device.parts
        return p0, p1, f"{p2}{data[5] | (data[6] << 8)}", device

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


_LINE = object()  # an entry's effect: one line written the cached way
_MD_JSON = b'"manufacturer_data":{"737":"'  # our writer's Victron data (company 737 = 0x02E1)
_HEX = {f"{b:02x}".encode(): b for b in range(256)}  # a byte as our writer writes it


class CaptureLane:
    """`decode --format jsonl`'s side of a capture reader's lane (sources/capture/lane.py).

    Entries are made from lines this module wrote the slow way (`learn`): a packet's line
    pieces, or, for a packet that gives no line, the `Reading` whose tally a repeat adds.
    A packet missing from the lane is taken here in one piece (`_miss`) when it is a device's
    next frame in a layout seen before (same bytes but nonce and data) and either its data
    is the device template's values encrypted under its nonce (`_Device.ciphertext`, 256
    nonces per ECB call) or the device has no key. Everything else goes the slow way, and is
    learnt from.
    """

    # Entries (each ~0.3 KB: its key, the text up to the nonce); then counts are folded and
    # the lane starts again.
    LIMIT = 1 << 15

    def __init__(
        self,
        lines: JsonLines,
        write: Callable[[str], object],
        tally: Callable[[object, int], None],
    ) -> None:
        self.lines = lines
        self.write = write
        self.tally = tally  # (effect, frames): _LINE, or a Reading
        self.lane = Lane(self._miss, self.flush)
        # key[:12] of an HCI report (event head + address) / a JSON line's text up to the
        # Victron nonce → (its layout, device template or None without a key, effect).
        self._layouts: dict[bytes, tuple[Any, ...]] = {}
        self._learnt: dict[bytes, Entry] = {}  # the entries `learn` made (bounded in `_put`)

    def flush(self) -> None:
        out = self.lane.out
        if out:
            self.write("".join(out))
            out.clear()

    def append(self, text: str) -> None:
        """Write `text` after what the reader wrote."""
        out = self.lane.out
        out.append(text)
        if len(out) >= self.lane.flush_at:
            self.flush()

    def fold(self) -> None:
        """Add the lane's counts to the tallies (and zero them)."""
        counts: dict[int, list[Any]] = {}  # by effect (Readings are not hashable)
        for entry in self.lane.packets.values():
            if entry[3]:
                effect = _LINE if entry[0] is not None else entry[4]
                tally = counts.get(id(effect))
                if tally is None:
                    counts[id(effect)] = [effect, entry[3]]
                else:
                    tally[1] += entry[3]
                entry[3] = 0
        for effect, times in counts.values():
            self.tally(effect, times)

    def _put(self, key: bytes, entry: Entry, *, learnt: bool = False) -> None:
        packets = self.lane.packets
        if len(packets) >= self.LIMIT:
            self.fold()
            packets.clear()
            # The entries learnt the slow way stay (a phone's few payloads, a device's first
            # frames): `_miss` makes the others again at a fraction of their cost.
            if len(self._learnt) > self.LIMIT // 4:
                self._learnt.clear()
            packets.update(self._learnt)
        packets[key] = entry
        if learnt:
            self._learnt[key] = entry

    def learn(self, adv: Advertisement, key: bytes, reading: object, wrote: bool) -> None:
        """The packet `key` gave `adv`, which the slow way tallied as `reading` and for which
        it wrote a line (`wrote`) or not."""
        if wrote:
            pieces = self.lines.template(adv)
            if pieces is None:
                return
            p0, p1, tail, device = pieces
            self._put(key, [p0, p1, tail, 0, _LINE, device.end], learnt=True)
            self._layout(adv, key, device, _LINE)
        else:
            self._put(key, [None, None, None, 0, reading, None], learnt=True)
            status = getattr(reading, "status", None)
            if status is not None and status.value == "no key":
                self._layout(adv, key, None, reading)

    def _layout(
        self, adv: Advertisement, key: bytes, device: _Device | None, effect: object
    ) -> None:
        data = adv.manufacturer_data.get(COMPANY_ID)
        if (
            data is None
            or not 8 < len(data) <= 24
            or data[0] != _INSTANT_READOUT
            or data[4] == _UNENCRYPTED
        ):
            return
        n = len(data) - 8
        if key[0] == 0x3E:  # an HCI report: the Victron data must be its last AD structure
            at = len(key) - len(data)
            if key[at:] != data or key[at - 4 : at] != bytes((len(data) + 3, 0xFF, 0xE1, 0x02)):
                return
            self._keep(
                key[:12],
                key[12 : at + 5],
                at + 5,
                data[7],
                len(key),
                n,
                device,
                effect,
            )
            return
        m = key.find(_MD_JSON)
        if m < 0 or key.count(b'"manufacturer_data"') != 1 or key.count(b'"737"') != 1:
            return
        h = m + len(_MD_JSON)
        q = h + 2 * len(data)
        if key[h:q] != data.hex().encode() or key[q : q + 1] != b'"':
            return
        self._keep(
            key[: h + 10],
            key[h + 14 : h + 16],
            h,
            key[q:],
            len(key),
            n,
            device,
            effect,
        )

    def _keep(self, key: bytes, *layout: Any) -> None:
        if len(self._layouts) >= self.LIMIT:  # a flood of addresses: bounded too
            self._layouts.clear()
        self._layouts[key] = layout

    def _miss(self, key: bytes, ts: str, rssi: str) -> bool:
        if key[0] == 0x3E:
            layout = self._layouts.get(key[:12])
            if layout is None:
                return False
            rest, at, check, size, n, device, effect = layout
            if len(key) != size or key[at + 2] != check or key[12:at] != rest:
                return False
            nonce = key[at] | (key[at + 1] << 8)
            if device is not None and key[at + 3 :] != device.ciphertext(nonce):
                return False
        else:
            m = key.find(_MD_JSON)
            if m < 0:
                return False
            h = m + len(_MD_JSON)
            layout = self._layouts.get(key[: h + 10])
            if layout is None:
                return False
            # (The same text up to the nonce: the same h.)
            check, _, tail, size, n, device, effect = layout
            if len(key) != size or key[h + 14 : h + 16] != check or key[h + 16 + 2 * n :] != tail:
                return False
            # The nonce in lowercase hex as our writer writes it (anything else: the slow way).
            low = _HEX.get(key[h + 10 : h + 12])
            high = _HEX.get(key[h + 12 : h + 14])
            if low is None or high is None:
                return False
            nonce = low | (high << 8)
            if device is not None:
                if device.high != high or not device.hex:
                    device.ciphertext_hex(nonce)
                at = low << 5
                if key[h + 16 : h + 16 + 2 * n] != device.hex[at : at + 2 * n]:
                    return False
            else:  # no key: any data of the layout's length is tallied alike
                try:
                    body = bytes.fromhex(key[h + 16 : h + 16 + 2 * n].decode("ascii"))
                except ValueError:
                    return False
                if len(body) != n:
                    return False
        packets = self.lane.packets
        if len(packets) >= self.LIMIT:
            self._put(key, [None, None, None, 0, None, None])  # folds and starts again
        if device is None:  # no key: the same tally whatever the nonce and data
            packets[key] = [None, None, None, 1, effect, None]
            return True
        p0, p1, p2, _ = device.parts
        tail_text = f"{p2}{nonce}"
        end = device.end
        packets[key] = [p0, p1, tail_text, 1, _LINE, end]
        self.lane.out.append(f"{p0}{ts}{p1}{rssi}{tail_text}{end}")
        return True


__all__ = ["RSSI_TEXT", "CaptureLane", "JsonLines"]
