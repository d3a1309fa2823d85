"""Per-device state for a live scan: what each device is, whether we can read it, how fresh.

Everything here works from the clear header (docs/protocol.md §1.1), so a device without a key is
still listed with its product and record type. The nonce is a 16-bit counter that goes up by
one per new reading (docs/protocol.md §1.1 "Nonce behaviour", §8.1). Anyone nearby can send a frame
with any header, and the one-byte key check lets random ciphertext through 1 time in 256, so a
frame is judged against the device's **established sequence**, never against the newest frame
(issue 9 item 5):

* same nonce, same bytes → a **repeat** (bleak reports every PropertiesChanged, RSSI-only ones
  too, docs/ecosystem.md §3.1) — not a new reading;
* a nonce a plausible step ahead of the sequence (`FORWARD_SLACK` plus twice the device's
  nonce rate times the time elapsed) → a new reading, the sequence moves on;
* a nonce between the last two accepted frames → the newest frame, which nothing confirmed,
  was ahead of the device (a forged frame): it is discarded from the sequence, this frame
  continues it — so one forged frame cannot make the genuine frames that follow look replayed;
* a nonce already accepted (the last `SEEN_BITS` are kept in one bit mask), the same nonce
  with other bytes, or any other nonce behind the sequence → **suspect** (replayed/forged);
* any other jump, forwards or backwards → **suspect** and a *candidate* sequence; it becomes
  the device's sequence (a device restart) only when `CONFIRM_FRAMES` frames continue it while
  the established sequence stays silent for `quiet_s` — a live genuine device clears it;
* a record whose values cannot be physically true (`Record.implausible`) → **suspect**
  ("wrong key or corrupt frame?"), and it does not move the sequence;
* a decoded frame whose values do not agree with the device's confirmed ones (`confirm.py`: a
  new code, a jump of a value) → **pending**, "unconfirmed change", until a frame with a fresh
  nonce agrees with it; it does not move the sequence either, so a forged frame never claims
  the nonce of the genuine frame that follows (issue 18 item 2). A frame shorter than its
  layout (a partial record) is never the device's state.

**Pending, then suspect.** Every genuine change arrives first in one unconfirmed frame, so
flagging that frame as suspect made every viewer say "unconfirmed change" for about a second
on every change. A pending frame is a suspect reading (`Reading.suspect` says why: its values
never replace the last good ones) with `Reading.pending` set, which viewers do not show while
they have the last good values (`readings.shown_suspect`). A change still unconfirmed
`PENDING_SUSPECT_S` after it arrived (on the frames' own clock), or pushed out by more than
`PENDING_MAX` newer unconfirmed changes, is shown: the device's next frame says which change
was never confirmed — as its `Reading.note` when it is a good frame (its values are the
device's; viewers show the note as `suspect`), else in its `suspect`. Confirming one change
settles the older ones (a value moved twice; the later one stands). A pending change of
measured values only, never repeated, is the device's own noise (a time-to-go swinging at
near-zero current): dropped quietly (`confirm.same_codes`). Partial, implausible, replayed and
out-of-sequence frames are shown as suspect at once, as before: a genuine device does not send
them.

The first frame of a device (or its first since it was evicted) is taken when it is complete and
plausible: a forger does not know the plaintext, so a random frame gives a plausible complete
record ~7 % of the time only, and the genuine device's next frames then take over (a jump from a
sequence that stays silent, `CONFIRM_FRAMES`); a partial first frame is not taken.

A suspect reading is still reported, with `Reading.suspect` saying why, but it never replaces
`DeviceState.last_decoded`, the last good values.

The table is an LRU bounded by `max_devices`, so a flood of random addresses cannot grow memory;
each device costs a fixed few hundred bytes plus its last two readings (see benchmarks/scanner.py).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from victron_ble_bms.protocol import (
    COMPANY_ID,
    LAYOUTS,
    DecodeError,
    Frame,
    NotInstantReadout,
    Record,
    decode,
    parse_frame,
)
from victron_ble_bms.protocol.crypto import KeyLike
from victron_ble_bms.protocol.envelope import (
    PRODUCT_ADVERTISEMENT,
    UNENCRYPTED,
    encrypted_frame,
)
from victron_ble_bms.protocol.products import product_name

from .advertisement import Advertisement
from .confirm import PENDING_MAX, agree, payload_key, same_codes, with_wire
from .readings import (
    NO_KEY_PREFIX,
    KeyStatus,
    Reading,
    decode_advertisement,
    decode_parsed,
    no_key_reading_lazy,
    ok_reading,
    ok_reading_lazy,
)

_OK = KeyStatus.OK
_NO_KEY = KeyStatus.NO_KEY

NONCE_MODULO = 1 << 16  # 2-byte counter (docs/protocol.md §1.1 bytes 5-6)
_NONCE_MASK = NONCE_MODULO - 1
REPLAY_WINDOW = 60  # DBS src/ble-dbus.c seqnr_window (docs/protocol.md §1.1): wording of messages
SEEN_BITS = 64  # accepted nonces remembered behind the newest one (one int per device)
_SEEN_MASK = (1 << SEEN_BITS) - 1
FORWARD_SLACK = 64  # nonce steps always plausible ahead of the sequence (lost frames)
NONCE_RATE_HZ = 1.0  # a device counts about one nonce per second (docs/protocol.md §1.1)
CONFIRM_FRAMES = 2  # frames that must continue a jump before it becomes the sequence
QUIET_MIN_S = 2.0  # ...while the established sequence stays silent at least this long
QUIET_MAX_S = 30.0
# A busy marina holds thousands of devices (issue 12): 16,384 entries keep replay tracking for
# all of them at a few MB (bytes per device: benchmarks/scanner.py).
DEFAULT_MAX_DEVICES = 16_384
# Devices update about once a second (docs/protocol.md §1.1: consecutive nonces ~1 s apart); a mean
# interval between new readings this long means most updates are being lost (docs/ecosystem.md
# §3.3, controller duplicate filtering).
DEFAULT_SLOW_INTERVAL_S = 5.0
SLOW_MIN_READINGS = 3  # intervals needed before calling a device slow
_EWMA = 0.3  # weight of the newest interval in the update-interval average
_KEEP = 1 - _EWMA  # ...and of the average so far

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently *set* key beyond `limit` entries: for every
    per-address structure next to the device table (issue 9 item 10)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)


# How a reading held back by the confirmation rule (sources/confirm.py) begins its `suspect`:
# a viewer can drop the mark once the change is confirmed (it was the device's own).
UNCONFIRMED_CHANGE = "unconfirmed change of values or codes"
# How long a change may stay pending before it is shown as suspect. The delay from a genuine
# change's first frame to its confirming frame, over all 23 bundled captures (issue 18): min
# 0.95 s, median 1.00 s, max 2.95 s — one advertising interval, up to two frames lost. 5 s is
# that maximum plus two more lost frames; a forged change is shown at most ~6 s after it came.
PENDING_SUSPECT_S = 5.0
NEVER_CONFIRMED = "a change of values or codes was never confirmed by the device"


class Outcome(enum.Enum):
    NEW = "new"  # a new reading (decoded or not)
    REPEAT = "repeat"  # same nonce and bytes: bleak re-reported it
    SUSPECT = "suspect"  # new, but looks replayed, forged or implausible (module docstring)
    PENDING = "pending"  # new, a change not confirmed yet (module docstring): values held back
    IGNORED = "ignored"  # not a Victron Instant Readout advertisement


# Record → its implausibility reasons. Records are frozen (hashable, `wire` excluded) and a
# device's values change slowly, so most frames hit; bounded, cleared when full.
_PLAUSIBILITY: dict[Record, tuple[str, ...]] = {}
_PLAUSIBILITY_LIMIT = 4096


def _implausible(record: Record) -> tuple[str, ...]:
    try:
        return _PLAUSIBILITY[record]
    except KeyError:
        reasons = record.implausible
        if len(_PLAUSIBILITY) >= _PLAUSIBILITY_LIMIT:
            _PLAUSIBILITY.clear()
        _PLAUSIBILITY[record] = reasons
        return reasons
    except TypeError:  # an unhashable value (never for decoded records): no cache
        return record.implausible


class _Verdict(enum.Enum):
    FIRST = 1  # the first frame of a device starts its sequence
    ACCEPT = 2  # a plausible step ahead
    DISPUTE = 3  # between the last two accepted: the newest was ahead of the device
    ADOPT = 4  # a candidate jump confirmed: the device restarted
    SUSPECT = 5  # replayed / forged: the sequence is unchanged
    CANDIDATE = 6  # a jump, suspect until confirmed


@dataclass(slots=True)
class DeviceState:
    """What we know about one address. Mutable: the table updates it in place."""

    address: str
    first_seen: float
    last_seen: float = 0.0  # time of the last advertisement, repeats included
    name: str | None = None
    model_id: int | None = None
    record_type: int | None = None
    key_status: KeyStatus = KeyStatus.NO_KEY
    error: str | None = None  # why there is no record (no key, mismatch …)
    last_reading: Reading | None = None  # the last *new* reading (suspect ones included)
    last_decoded: Reading | None = None  # the last good reading with a record (never suspect)
    rssi: int | None = None
    readings: int = 0  # new readings
    repeats: int = 0
    suspicious: int = 0
    suspicion: str | None = None  # the last replay/forgery/implausibility explanation
    nonce: int | None = None  # newest nonce of the established sequence
    _seen: int = 0  # bit i: nonce - i was accepted (SEEN_BITS of them)
    _seq_ts: float | None = None  # when the newest frame of the sequence arrived
    _prev: int | None = None  # the accepted nonce before `nonce` (to judge disputes)
    _prev_ts: float | None = None
    _cand: int | None = None  # a jump waiting for confirmation: its newest nonce
    _cand_ts: float = 0.0
    _cand_count: int = 0  # frames that continued it
    _data: bytes = b""
    _head_data: bytes = b""  # the frame of the sequence's newest nonce
    _payload: int | None = None  # `confirm.payload_key` of `last_decoded`
    _pend: list[tuple[int, int, float]] | None = None  # unconfirmed changes: key, nonce, time
    _pend_lost: int = 0  # unconfirmed changes pushed out of `_pend` by newer ones
    interval_s: float | None = None  # EWMA of the time between new readings
    nonce_step: float | None = None  # EWMA of the nonce increase between new readings

    @property
    def product(self) -> str | None:
        if self.model_id is None:
            return None
        return product_name(self.model_id) or f"unknown product 0x{self.model_id:04X}"

    @property
    def record_name(self) -> str | None:
        if self.record_type is None:
            return None
        layout = LAYOUTS.get(self.record_type)
        return layout.name if layout is not None else f"0x{self.record_type:02X}"

    @property
    def rate_hz(self) -> float | None:
        """New readings per second as received."""
        return None if not self.interval_s else 1.0 / self.interval_s

    def age(self, now: float) -> float | None:
        """Seconds since the last new reading."""
        # The newest frame of the sequence is the last new reading: every good reading moves
        # the sequence (`_advance`, then `_timing`), nothing else does.
        return None if self._seq_ts is None else max(0.0, now - self._seq_ts)

    def slow(self, threshold_s: float = DEFAULT_SLOW_INTERVAL_S) -> bool:
        """Updates arrive far below the device's ~1 Hz (needs a few readings to say)."""
        return (
            self.readings > SLOW_MIN_READINGS
            and self.interval_s is not None
            and self.interval_s >= threshold_s
        )

    # --- the nonce sequence (module docstring) ------------------------------------------------
    def _allowance(self, elapsed: float) -> int:
        """How far ahead a genuine nonce can plausibly be after `elapsed` seconds."""
        rate = NONCE_RATE_HZ
        if self.nonce_step and self.interval_s:
            rate = max(rate, self.nonce_step / self.interval_s)
        return FORWARD_SLACK + int(max(0.0, elapsed) * 2 * rate)

    def _quiet_s(self) -> float:
        if self.interval_s is None:
            return QUIET_MIN_S
        return min(QUIET_MAX_S, max(QUIET_MIN_S, 2 * self.interval_s))

    def _judge(self, nonce: int, ts: float) -> tuple[_Verdict, str | None]:
        head = self.nonce
        if head is None or self._seq_ts is None:
            return _Verdict.FIRST, None
        ahead = (nonce - head) & _NONCE_MASK
        if ahead == 0:
            return _Verdict.SUSPECT, (
                f"nonce {nonce} reused with different data: possible forged or replayed frame"
            )
        if ahead <= self._allowance(ts - self._seq_ts):
            return _Verdict.ACCEPT, None
        back = (head - nonce) & _NONCE_MASK
        if back < SEEN_BITS and (self._seen >> back) & 1:
            return _Verdict.SUSPECT, f"nonce {nonce} was already received: replayed frame"
        prev = self._prev
        if prev is not None and self._prev_ts is not None:
            after_prev = (nonce - prev) & _NONCE_MASK
            if 0 < after_prev < ((head - prev) & _NONCE_MASK) and after_prev <= self._allowance(
                ts - self._prev_ts
            ):
                return _Verdict.DISPUTE, None
        cand = self._cand
        if cand is not None:
            step = (nonce - cand) & _NONCE_MASK
            if 0 < step <= self._allowance(ts - self._cand_ts):
                if self._cand_count + 1 >= CONFIRM_FRAMES and ts - self._seq_ts >= self._quiet_s():
                    return _Verdict.ADOPT, None
                return _Verdict.CANDIDATE, (
                    f"nonce {nonce} continues a jump from {head}; the device's sequence "
                    "still stands until more frames confirm it (restart, or replayed frames?)"
                )
        if back <= REPLAY_WINDOW:
            reason = f"nonce went back from {head} to {nonce}: possible replayed frame"
        elif back < ahead:
            reason = (
                f"nonce went back from {head} to {nonce}: replayed frame or a device "
                "restart (accepted once following frames confirm it)"
            )
        else:
            reason = (
                f"nonce jumped ahead from {head} to {nonce}: possible forged frame "
                "(accepted once following frames confirm it)"
            )
        return _Verdict.CANDIDATE, reason

    def _advance(self, verdict: _Verdict, nonce: int, ts: float) -> None:
        """Move the sequence as `verdict` says (called only for good readings)."""
        head = self.nonce
        if verdict is _Verdict.ACCEPT and head is not None:
            ahead = (nonce - head) & _NONCE_MASK
            self._seen = ((self._seen << ahead) | 1) & _SEEN_MASK if ahead < SEEN_BITS else 1
            self._prev, self._prev_ts = head, self._seq_ts
        elif verdict is _Verdict.DISPUTE and head is not None:
            back = (head - nonce) & _NONCE_MASK
            self._seen = ((self._seen >> back) | 1) if back < SEEN_BITS else 1
            self.suspicion = (
                f"frame with nonce {head} was ahead of the device's sequence and was "
                "discarded (possible forged frame)"
            )
        elif verdict is _Verdict.CANDIDATE:
            if self._cand is not None and 0 < (nonce - self._cand) & _NONCE_MASK:
                self._cand_count += 1
            else:
                self._cand_count = 0
            self._cand, self._cand_ts = nonce, ts
            return
        else:  # FIRST, ADOPT: a new sequence
            self._seen, self._prev, self._prev_ts = 1, None, None
        self.nonce, self._seq_ts = nonce, ts
        self._cand = None
        self._cand_count = 0


@dataclass(frozen=True, slots=True)
class Update:
    """What one advertisement did to the table."""

    outcome: Outcome
    device: DeviceState | None
    reading: Reading | None = None
    status_changed: bool = False  # key status differs from the previous new reading
    suspicion: str | None = None


_IGNORED = Update(Outcome.IGNORED, None)
_NEW = Outcome.NEW
_make_update = Update
_HEADER = 8


def _make_new(dev: DeviceState, reading: Reading) -> Update:
    return Update(_NEW, dev, reading)


class DevicesState:
    """The device table: `update(adv)` for every advertisement; bounded LRU by address."""

    def __init__(
        self,
        keys: Mapping[str, KeyLike],
        *,
        max_devices: int = DEFAULT_MAX_DEVICES,
        replay_window: int = REPLAY_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_devices < 1:
            raise ValueError("max_devices must be at least 1")
        self._keys = keys
        self._max_devices = max_devices
        self.replay_window = replay_window
        self.clock = clock
        self._devices: OrderedDict[str, DeviceState] = OrderedDict()
        self._get = self._devices.get
        self._move_to_end = self._devices.move_to_end
        self._evicted = 0  # devices `_add` dropped to stay within max_devices
        # `update(adv)` for every advertisement: the hot path, which hands every other frame
        # to the general one (`_update`).
        self.update: Callable[[Advertisement], Update] = self._update_py

    @property
    def max_devices(self) -> int:
        return self._max_devices

    @max_devices.setter
    def max_devices(self, bound: int) -> None:
        """A new bound, for the devices added from now on (each evicts the least recently
        heard one while the table is over it)."""
        if bound < 1:
            raise ValueError("max_devices must be at least 1")
        self._max_devices = bound

    @property
    def evicted(self) -> int:
        """Devices dropped to stay within `max_devices`."""
        return self._evicted

    @property
    def keys(self) -> Mapping[str, KeyLike]:
        """The stored keys by address (read on every frame; fixed for the table's life)."""
        return self._keys

    def __len__(self) -> int:
        return len(self._devices)

    def __iter__(self) -> Iterator[DeviceState]:
        return iter(list(self._devices.values()))

    def __contains__(self, address: object) -> bool:
        return address in self._devices

    def get(self, address: str) -> DeviceState | None:
        return self._devices.get(address)

    def _update_py(self, adv: Advertisement) -> Update:
        # Hot path: the next frame of a known device, a small step ahead of its sequence, with
        # its key and decoded to plausible values, or without a key as before — what nearly
        # every new advertisement is. It is the general path's ACCEPT (`FORWARD_SLACK` ≤
        # `_allowance`) of such a reading, done in one piece on plain ints; anything else
        # (repeats included) goes to `_update`. Same record type byte as the device's (an
        # encrypted one: never 0xFF) and the same key status, so neither changes.
        data = adv.manufacturer_data.get(COMPANY_ID)
        address = adv.address
        dev = self._get(address)
        if dev is None:
            return self._first(adv, data)
        if (
            type(data) is not bytes
            or len(data) <= _HEADER
            or data[0] != PRODUCT_ADVERTISEMENT
            or data[4] != dev.record_type
        ):
            return self._update(adv, data)
        head = dev.nonce
        if head is None:
            return self._update(adv, data)
        nonce = data[5] | (data[6] << 8)
        ahead = (nonce - head) & _NONCE_MASK
        # A repeat (same bytes as the device's last frame) is never a step ahead: if that frame
        # was accepted its nonce is `head`; if it was not, it was implausible (anything else
        # in this range is accepted) and is found so again below — `_update` counts the repeat.
        if not 0 < ahead <= FORWARD_SLACK:
            return self._update(adv, data)
        key = self._keys.get(address)
        if key is None:  # a neighbour's device: its sequence is tracked all the same
            if dev.key_status is not _NO_KEY:
                return self._update(adv, data)
            reading = no_key_reading_lazy(adv, data, NO_KEY_PREFIX + address)
            dev.error = reading.error
        else:
            if dev.key_status is not _OK:
                return self._update(adv, data)
            # The payload the device confirmed (most frames: a device repeats its values over
            # many nonces): the same values, so the confirmed record, without decoding; a
            # change, a wrong key, a cut frame → the general path (confirm.py).
            good = dev.last_decoded
            if good is None or dev._payload is None or dev._pend is not None:
                return self._update(adv, data)  # a change pending: settled by the general path
            pkey = payload_key(data, key)
            if pkey != dev._payload:
                return self._update(adv, data, pkey)
            reading = dev.last_decoded = ok_reading_lazy(adv, data, with_wire(good.record, data))  # type: ignore[arg-type]
        self._move_to_end(address)
        ts = dev.last_seen = adv.ts
        rssi = adv.rssi
        if rssi is not None:
            dev.rssi = rssi
        name = adv.name
        if name:
            dev.name = name
        dev._data = dev._head_data = data
        dev.model_id = data[2] | (data[3] << 8)
        dev.readings += 1
        dev.last_reading = reading
        # _advance(ACCEPT) and _timing, inline
        dev._seen = ((dev._seen << ahead) | 1) & _SEEN_MASK
        last = dev._prev_ts = dev._seq_ts  # also the last new reading's time (`age`)
        dev._prev = head
        dev.nonce = nonce
        dev._seq_ts = ts
        if dev._cand is not None:
            dev._cand = None
            dev._cand_count = 0
        if last is not None and ts > last:
            mean = dev.interval_s
            dev.interval_s = ts - last if mean is None else _KEEP * mean + _EWMA * (ts - last)
        step = dev.nonce_step
        dev.nonce_step = float(ahead) if step is None else _KEEP * step + _EWMA * ahead
        return _make_new(dev, reading)

    def _first(self, adv: Advertisement, data: bytes | None) -> Update:
        """A device's first frame (or its first since it was evicted): `_update`'s FIRST verdict
        for a good, plausible reading or one without a key, in one piece. At a place with more
        devices than the table holds, that is every frame of the ones beyond it; anything
        else → `_update`."""
        if (
            type(data) is not bytes
            or len(data) <= _HEADER
            or data[0] != PRODUCT_ADVERTISEMENT
            or data[4] == UNENCRYPTED
        ):
            return self._update(adv, data)
        key = self._keys.get(adv.address)
        if key is None:
            reading = no_key_reading_lazy(adv, data, NO_KEY_PREFIX + adv.address)
        else:
            try:
                record = decode(data, key)
            except Exception:  # MISMATCH, UNDECODABLE …: said by the general path
                return self._update(adv, data)
            if record.missing_fields or _implausible(record):
                return self._update(adv, data)  # flagged suspect there
            reading = ok_reading_lazy(adv, data, record)
        dev = self._add(adv)
        ts = dev.last_seen = adv.ts
        if adv.rssi is not None:
            dev.rssi = adv.rssi
        if adv.name:
            dev.name = adv.name
        dev._data = dev._head_data = data
        dev.model_id = data[2] | (data[3] << 8)
        dev.record_type = data[4]
        dev.key_status = reading.status
        dev.error = reading.error
        dev.readings = 1
        dev.last_reading = reading
        if key is not None:
            dev.last_decoded = reading
            dev._payload = payload_key(data, key)
        # _advance(FIRST): a new sequence; no interval or nonce step yet (`_timing`)
        dev._seen = 1
        dev.nonce = data[5] | (data[6] << 8)
        dev._seq_ts = ts
        return _make_update(_NEW, dev, reading, True, None)

    def _update(
        self, adv: Advertisement, data: bytes | None, pkey_found: int | None = None
    ) -> Update:
        """Every other advertisement: new devices, repeats, jumps, failures (module doc).
        `pkey_found`: the frame's `payload_key` with this device's key, when the caller has
        it (a changed payload; not worked out twice)."""
        if data is None:
            return _IGNORED
        if (
            type(data) is bytes
            and len(data) > _HEADER
            and data[0] == PRODUCT_ADVERTISEMENT
            and data[4] != UNENCRYPTED
        ):  # the common case, read in place after the repeat check (same result as parse_frame)
            frame: Frame | None = None
            in_place = True
        else:
            in_place = False
            try:
                frame = parse_frame(data)
            except NotInstantReadout:
                return _IGNORED
            except DecodeError:
                frame = None  # Victron data but cut short: still a device, "undecodable"
        devices = self._devices
        address = adv.address
        dev = devices.get(address)
        if dev is None:
            dev = self._add(adv)
        else:
            devices.move_to_end(address)
        dev.last_seen = adv.ts
        if adv.rssi is not None:
            dev.rssi = adv.rssi
        if adv.name:
            dev.name = adv.name
        if data == dev._data or (data == dev._head_data and dev.nonce is not None):
            # the same bytes again, or the sequence's newest frame re-reported after another
            # (a forged one) came between: a repeat, not a nonce reused
            dev.repeats += 1
            return _make_update(Outcome.REPEAT, dev, None, False, None)
        dev._data = data
        if in_place:
            frame = encrypted_frame(data)
        if frame is None:
            return self._record(dev, decode_advertisement(adv, self._keys), None)
        nonce = frame.nonce
        dev.model_id = frame.model_id
        dev.record_type = frame.record_type
        verdict, suspicion = dev._judge(nonce, adv.ts)
        head = dev.nonce
        ahead = verdict is _Verdict.ACCEPT and head is not None
        step = (nonce - (head or 0)) & _NONCE_MASK if ahead else None
        key = self._keys.get(address)
        if key is None or not in_place:
            pkey = None
        else:
            pkey = pkey_found if pkey_found is not None else payload_key(data, key)
        good = dev.last_decoded
        if pkey is not None and pkey == dev._payload and good is not None:
            reading = ok_reading(adv, frame, with_wire(good.record, data))  # type: ignore[arg-type]
        else:
            reading = decode_parsed(adv, frame, data, key)
        record = reading.record
        implausible = _implausible(record) if record is not None else ()
        if implausible:  # values that cannot be true do not move the sequence either
            why = f"implausible values ({'; '.join(implausible)}): wrong key or corrupt frame?"
            suspicion = why if suspicion is None else f"{suspicion}; {why}"
        elif suspicion is None:
            confirmed: int | None = None
            if record is not None:
                suspicion, confirmed = self._confirmation(dev, record, pkey, verdict, nonce, adv.ts)
            if suspicion is None:
                last = dev._seq_ts
                dev._advance(verdict, nonce, adv.ts)
                dev._head_data = data
                self._timing(dev, adv.ts, last, step)
                if record is not None:
                    dev._payload = pkey
                if confirmed is not None:  # the pending frame's nonce is the device's too
                    back = (nonce - confirmed) & _NONCE_MASK
                    if back < SEEN_BITS:
                        dev._seen |= 1 << back
        elif verdict is _Verdict.CANDIDATE:
            dev._advance(verdict, nonce, adv.ts)
        if dev._pend is not None:
            return self._settle(dev, dev._pend, reading, suspicion, adv.ts)
        return self._record(dev, reading, suspicion)

    def _settle(
        self,
        dev: DeviceState,
        pend: list[tuple[int, int, float]],
        reading: Reading,
        suspicion: str | None,
        ts: float,
    ) -> Update:
        """`_record` for a device with unconfirmed changes: pending (quiet) while they are
        young; the frame after one outlived `PENDING_SUSPECT_S` (or was pushed out) is suspect,
        saying so (module docstring)."""
        expired = [p for p in pend if ts - p[2] > PENDING_SUSPECT_S]
        if expired:
            pend[:] = [p for p in pend if ts - p[2] <= PENDING_SUSPECT_S]
        # A change of measured values only, never repeated, is the device's own noise; a
        # change of codes or states that the device never repeated is shown (module docstring).
        good, known = dev.last_decoded, dev._payload
        old = [
            p
            for p in expired
            if good is None
            or good.record is None
            or known is None
            or not same_codes(good.record, p[0], known)
        ]
        lost = dev._pend_lost
        if not pend:
            dev._pend = None
        if old or lost:
            dev._pend_lost = 0
            why = (
                f"{NEVER_CONFIRMED} (nonce {old[0][1]}, {ts - old[0][2]:.1f} s ago): forged or "
                "corrupt frame?"
                if old
                else f"{NEVER_CONFIRMED}: {lost} unconfirmed change(s) in a row, pushed out by "
                "newer ones (forged frames?)"
            )
            if suspicion is None and reading.record is not None:
                # A good frame: the device's state, as any other, carrying the note.
                done = self._record(dev, dataclasses.replace(reading, note=why), None)
                dev.suspicious += 1
                dev.suspicion = why
                return _make_update(done.outcome, dev, done.reading, done.status_changed, why)
            return self._record(dev, reading, why if suspicion is None else f"{suspicion}; {why}")
        if suspicion is not None and suspicion.startswith(UNCONFIRMED_CHANGE):
            return self._record(dev, reading, suspicion, pending=True)
        return self._record(dev, reading, suspicion)

    @staticmethod
    def _confirmation(
        dev: DeviceState,
        record: Record,
        pkey: int | None,
        verdict: _Verdict,
        nonce: int,
        ts: float,
    ) -> tuple[str | None, int | None]:
        """Whether a decoded, plausible frame in sequence is the device's state (confirm.py):
        (None, None) yes; (None, nonce) yes, confirming the pending frame with that nonce;
        (why, None) no — shown, unconfirmed, and kept pending."""
        missing = record.missing_fields
        if missing:
            return (
                f"partial frame ({len(missing)} of {len(record.LAYOUT.fields)} fields not "
                "received): shown as partial, never as the device's state or codes",
                None,
            )
        if pkey is None or verdict is _Verdict.FIRST:  # unencrypted; a first frame (docstring)
            return None, None
        known = dev._payload
        pend = dev._pend
        if known is not None and (pkey == known or agree(record, pkey, known)):
            if pend is not None:  # a pending change this frame agrees with too: confirmed
                # (a value a count or two past the tolerance, then back within both)
                pend[:] = [p for p in pend if not (p[0] == pkey or agree(record, pkey, p[0]))]
                if not pend:
                    dev._pend = None
            return None, None
        if pend is not None:
            for other, at, since in pend:
                step = (nonce - at) & _NONCE_MASK
                if 0 < step <= dev._allowance(ts - since) and (
                    other == pkey or agree(record, pkey, other)
                ):
                    dev._pend = None
                    return None, at
        else:
            pend = dev._pend = []
        pend.append((pkey, nonce, ts))
        if len(pend) > PENDING_MAX:
            del pend[0]
            dev._pend_lost += 1
        return (
            UNCONFIRMED_CHANGE + ": taken as the device's state once a frame with a fresh "
            "nonce agrees (a forged frame never does)",
            None,
        )

    def _record(
        self, dev: DeviceState, reading: Reading, suspicion: str | None, *, pending: bool = False
    ) -> Update:
        changed = dev.readings == 0 or reading.status is not dev.key_status
        dev.key_status = reading.status
        dev.error = reading.error
        dev.readings += 1
        if suspicion is not None:
            reading = dataclasses.replace(reading, suspect=suspicion, pending=pending)
            dev.last_reading = reading
            if pending:  # not (yet) a suspicion: counted and said only if it stays unconfirmed
                return _make_update(Outcome.PENDING, dev, reading, changed, None)
            dev.suspicious += 1
            dev.suspicion = suspicion
            return _make_update(Outcome.SUSPECT, dev, reading, changed, suspicion)
        dev.last_reading = reading
        if reading.record is not None:
            dev.last_decoded = reading
        return _make_update(_NEW, dev, reading, changed, None)

    def _add(self, adv: Advertisement) -> DeviceState:
        devices = self._devices
        dev = devices[adv.address] = DeviceState(adv.address, adv.ts)  # positional: a third cheaper
        if len(devices) > self._max_devices:
            devices.popitem(last=False)
            self._evicted += 1
        return dev

    @staticmethod
    def _timing(dev: DeviceState, ts: float, last: float | None, step: int | None) -> None:
        """The update-interval and nonce-step averages, after a new reading at `ts`; `last`:
        the one before (the sequence's newest frame before `_advance`)."""
        if last is not None and ts > last:
            interval = ts - last
            dev.interval_s = (
                interval if dev.interval_s is None else _KEEP * dev.interval_s + _EWMA * interval
            )
        if step is not None:
            dev.nonce_step = (
                float(step) if dev.nonce_step is None else _KEEP * dev.nonce_step + _EWMA * step
            )

    def slow_devices(self, threshold_s: float = DEFAULT_SLOW_INTERVAL_S) -> list[DeviceState]:
        return [d for d in self._devices.values() if d.slow(threshold_s)]
