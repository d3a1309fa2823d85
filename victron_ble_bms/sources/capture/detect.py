"""Open any capture we read, recognised by its content (never by its file name)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ..advertisement import Advertisement
from .btsnoop import MAGIC as BTSNOOP_MAGIC
from .btsnoop import read_btsnoop
from .errors import CaptureError, CorruptCapture, UnknownFormat
from .jsonl import is_jsonl_capture, read_jsonl_file
from .lane import Lane
from .pcap import PCAP_MAGICS, PCAPNG_SHB, read_pcap, read_pcapng

Reader = Callable[..., Iterator[Advertisement]]
READERS: dict[str, Reader] = {
    "btsnoop": read_btsnoop,
    "pcap": read_pcap,
    "pcapng": read_pcapng,
    "jsonl": read_jsonl_file,
}
# The readers that take a `lane` (lane.py).
LANE_FORMATS: dict[str, Reader] = {
    "btsnoop": read_btsnoop,
    "pcapng": read_pcapng,
    "jsonl": read_jsonl_file,
}


def detect_format(head: bytes) -> str | None:
    """'btsnoop', 'pcap', 'pcapng', 'jsonl' or None, from the first bytes of a file."""
    if head.startswith(BTSNOOP_MAGIC):
        return "btsnoop"
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head.startswith(PCAPNG_SHB):
        return "pcapng"
    if is_jsonl_capture(head):
        return "jsonl"
    return None


def _unknown_hint(head: bytes) -> str:
    if not head:
        return "the file is empty"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed; decompress it first (gunzip)"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive (an Android bug report?); extract the btsnoop_hci.log first"
    return (
        "it is not btsnoop, pcap, pcapng or a victron-ble-bms JSON-lines capture "
        "(the format is recognised by content, not by the file name)"
    )


class ErrorLog(list[CaptureError]):
    """The problems met while reading one capture, in file order. Appending one also copies
    it to the caller's list and calls the caller's callback, so a consumer can report each
    problem the moment the reader skips it (between the frames before and after it)."""

    def __init__(
        self,
        also: list[CaptureError] | None = None,
        on_error: Callable[[CaptureError], None] | None = None,
    ) -> None:
        super().__init__()
        self._also = also
        self._on_error = on_error

    def append(self, err: CaptureError) -> None:
        super().append(err)
        if self._also is not None:
            self._also.append(err)
        if self._on_error is not None:
            self._on_error(err)


class Capture:
    """An open capture file: iterate it for advertisements.

    Skipping is part of the reader, so every consumer (decode, record --from, the dashboard's
    replay, serve) skips and reports the same way: a record that cannot be parsed is skipped
    (`CorruptRecord`), a file cut short or broken beyond repair ends the iteration quietly
    (`TruncatedCapture`/`CorruptCapture`), and each of these is appended to `errors` (and given
    to `on_error` at once, and appended to the caller's `errors` list if one was passed).
    Iterating raises `CaptureError` only when nothing can be read at all (unsupported link
    type). `strict=True` raises the first problem instead (tests, tools that must not skip).
    `position`/`size` give progress in bytes; `complete` is true when nothing was skipped.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        errors: list[CaptureError] | None = None,
        on_error: Callable[[CaptureError], None] | None = None,
        strict: bool = False,
    ) -> None:
        self.path = str(path)
        self.errors: ErrorLog = ErrorLog(errors, on_error)
        self._strict = strict
        try:
            self._file: BinaryIO = Path(path).open("rb")
        except OSError as exc:
            raise CaptureError(f"cannot open: {exc.strerror or exc}", path=self.path) from exc
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            head = self._file.read(512)
            self._file.seek(0)
        except OSError as exc:
            self._file.close()
            raise CaptureError(f"cannot read: {exc.strerror or exc}", path=self.path) from exc
        fmt = detect_format(head)
        if fmt is None:
            self._file.close()
            raise UnknownFormat(_unknown_hint(head), path=self.path, offset=0)
        self.format = fmt
        self._iter: Iterator[Advertisement] | None = None
        # Set before iterating, for a consumer that writes text (lane.py); the formats that
        # can use one take it (LANE_FORMATS), the others ignore it.
        self.lane: Lane | None = None

    @property
    def complete(self) -> bool:
        """True when every record so far was read (nothing skipped, nothing cut short)."""
        return not self.errors

    @property
    def skipped(self) -> int:
        """How many problems were skipped so far (each is one line in `errors`)."""
        return len(self.errors)

    @property
    def position(self) -> int:
        return 0 if self._file.closed else self._file.tell()

    def __iter__(self) -> Iterator[Advertisement]:
        if self._iter is None:
            self._iter = self._read()
        return self._iter

    def _read(self) -> Iterator[Advertisement]:
        # The file closes when the iteration ends, fails or is dropped (generator close).
        sink = None if self._strict else self.errors
        try:
            if self.lane is not None and self.format in LANE_FORMATS:
                yield from LANE_FORMATS[self.format](
                    self._file, path=self.path, errors=sink, lane=self.lane
                )
            else:
                yield from READERS[self.format](self._file, path=self.path, errors=sink)
        except OSError as exc:  # EIO, a file on a vanished USB stick …
            err = CorruptCapture(f"cannot read: {exc.strerror or exc}", path=self.path)
            if sink is None:
                raise err from None
            sink.append(err)
        finally:
            self._file.close()

    def __next__(self) -> Advertisement:
        return next(iter(self))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_capture(
    path: str | os.PathLike[str],
    *,
    errors: list[CaptureError] | None = None,
    on_error: Callable[[CaptureError], None] | None = None,
    strict: bool = False,
) -> Capture:
    """Open a capture of any supported format; iterate the result for `Advertisement`s.
    Corrupt records are skipped and reported (see `Capture`); raises `CaptureError` when the
    file cannot be opened or is no capture we read."""
    return Capture(path, errors=errors, on_error=on_error, strict=strict)
