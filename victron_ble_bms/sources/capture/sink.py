"""The file end of every capture writer (JSON lines, pcapng, pcap): whole records or nothing.

A recording that hits a full disk (or any write error) must not end in a traceback nor in a
file whose last record is half written: each record is written with unbuffered `os.write`
calls (as the writers flushed every record anyway), and when one fails the file is cut back
to the end of the last whole record and `RecordingError` says, in one line, what happened
and how many records the file holds. `RecordingError` is an `OSError`, so code that already
catches `OSError` around `write` (the live scanner) keeps working.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from victron_ble_bms.safetext import plain


class RecordingError(OSError):
    """Writing a capture failed; the file holds every record written before (`count`)."""

    def __init__(self, path: Path, count: int, cause: OSError) -> None:
        self.path = path
        self.count = count
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            what = "disk full" if cause.errno == errno.ENOSPC else "disk quota exceeded"
        else:
            what = f"cannot write ({cause.strerror or cause})"
        kept = (
            f"after {count} advertisement(s); the file holds all of them, intact"
            if count
            else "before anything was recorded"
        )
        self.message = f"{plain(path)}: {what} — recording stopped {kept}"
        super().__init__(cause.errno, self.message)

    def __str__(self) -> str:
        return self.message


class RecordSink:
    """A file written in whole records. `count` counts records, not the header."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._good = 0  # file size after the last whole record

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, data: bytes, *, record: bool = True) -> None:
        """Write `data` completely or not at all (as far as the file's contents go)."""
        fd = self._fd
        if fd is None:
            raise ValueError("write to a closed capture file")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):  # drop the partial record (not on /dev/full)
                os.ftruncate(fd, self._good)
            self.close()
            raise RecordingError(self.path, self.count, exc) from None
        self._good += len(data)
        if record:
            self.count += 1

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # nothing is buffered: nothing can be lost here
                os.close(fd)
