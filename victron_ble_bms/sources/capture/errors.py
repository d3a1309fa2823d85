"""One error hierarchy for capture files: every message names the file and the byte offset
(JSON lines: the line number and its byte offset).

`CaptureError` is the only thing the readers raise (the mutation fuzzer in
tests/captures checks that). Errors that lose one record (`CorruptRecord`) are collected in
the capture's `errors` list and reading goes on; `CorruptCapture` ends what can be read of
the file (it is collected too); `UnknownFormat`/`UnsupportedLinkType` mean nothing can be read.
"""

from __future__ import annotations


class CaptureError(Exception):
    """A capture file that cannot be (fully) read."""

    def __init__(
        self, message: str, *, path: str = "", offset: int | None = None, line: int | None = None
    ) -> None:
        parts = [path] if path else []
        if line is not None:
            parts.append(f"line {line}")
        elif offset is not None:
            parts.append(f"byte {offset}")
        where = ": ".join(parts)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.offset = offset
        self.line = line  # 1-based, for line-oriented formats (our JSON lines)
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


class ExportError(CaptureError):
    """One advertisement cannot be written in the export format (e.g. a macOS device UUID has
    no Bluetooth address for a pcapng HCI event); it is skipped and writing goes on."""
