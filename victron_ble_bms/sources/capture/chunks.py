"""A capture file read in large chunks, for the readers' fast loops."""

from __future__ import annotations

from collections.abc import Callable

CHUNK = 1 << 16  # bytes read at a time


class Chunks:
    """The file read in large chunks: `read(n)` behaves like the file's (fewer bytes only at
    the end of the file), and `buf`/`pos` let a reader's fast loop (pcapng, btsnoop) walk
    whole records in place with `unpack_from`, one slice per packet instead of two reads and
    two slices. `len(buf)` never exceeds the largest read asked for (refills read at most
    max(n, CHUNK) bytes in all), so a record found whole in `buf` has a possible length."""

    __slots__ = ("_raw", "buf", "pos", "base")

    def __init__(self, raw: Callable[[int], bytes]) -> None:
        self._raw = raw
        self.buf = b""
        self.pos = 0  # next unread byte in buf
        self.base = 0  # file offset of buf[0]

    def read(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self._refill(n)
        data = self.buf[self.pos : self.pos + n]
        self.pos += len(data)
        return data

    def _refill(self, need: int) -> None:
        parts = [self.buf[self.pos :]]
        got = len(parts[0])
        want = max(need, CHUNK)
        while got < need:
            more = self._raw(want - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        self.base += self.pos
        self.pos = 0
        self.buf = b"".join(parts)
