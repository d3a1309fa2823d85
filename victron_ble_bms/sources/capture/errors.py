"""One error hierarchy for capture files: every message names the file and the byte offset.

`CaptureError` is the only thing the readers raise (the mutation fuzzer in
tests/captures checks that). Errors that lose one record (`CorruptRecord`) are collected in
the caller's `errors` list and reading goes on; the others end the file.
"""

from __future__ import annotations


class CaptureError(Exception):
    """A capture file that cannot be (fully) read."""

    def __init__(self, message: str, *, path: str = "", offset: int | None = None) -> None:
        where = path
        if offset is not None:
            where = f"{path}: byte {offset}" if path else f"byte {offset}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.offset = offset
        self.reason = message


class UnknownFormat(CaptureError):
    """The content is none of the formats we read (detection is by content, not extension)."""


class UnsupportedLinkType(CaptureError):
    """A btsnoop datalink or pcap link type we do not read."""


class CorruptCapture(CaptureError):
    """The file structure is broken; nothing after `offset` can be read reliably."""


class TruncatedCapture(CorruptCapture):
    """The file ends in the middle of a record (e.g. the capture was still being written)."""


class CorruptRecord(CaptureError):
    """One record could not be parsed; it was skipped and reading went on."""
