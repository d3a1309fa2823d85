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
from .errors import CaptureError, UnknownFormat
from .jsonl import is_jsonl_capture, read_jsonl_file
from .pcap import PCAP_MAGICS, PCAPNG_SHB, read_pcap, read_pcapng

Reader = Callable[..., Iterator[Advertisement]]
READERS: dict[str, Reader] = {
    "btsnoop": read_btsnoop,
    "pcap": read_pcap,
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


class Capture:
    """An open capture file: iterate it for advertisements.

    Recoverable problems are collected in `errors` (when no list is given, the first one is
    raised). `position`/`size` give progress in bytes.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, errors: list[CaptureError] | None = None
    ) -> None:
        self.path = str(path)
        self.errors = errors
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

    @property
    def position(self) -> int:
        return 0 if self._file.closed else self._file.tell()

    def __iter__(self) -> Iterator[Advertisement]:
        if self._iter is None:
            self._iter = self._read()
        return self._iter

    def _read(self) -> Iterator[Advertisement]:
        # The file closes when the iteration ends, fails or is dropped (generator close).
        try:
            yield from READERS[self.format](self._file, path=self.path, errors=self.errors)
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
    path: str | os.PathLike[str], *, errors: list[CaptureError] | None = None
) -> Capture:
    """Open a capture of any supported format; iterate the result for `Advertisement`s."""
    return Capture(path, errors=errors)
