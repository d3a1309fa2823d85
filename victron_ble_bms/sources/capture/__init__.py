"""Capture files: our JSON-lines format, btsnoop, pcap and pcapng.

for adv in open_capture("btsnoop_hci.log"):   # format recognised by content
    ...
"""

from .detect import Capture, detect_format, open_capture
from .errors import (
    CaptureError,
    CorruptCapture,
    CorruptRecord,
    TruncatedCapture,
    UnknownFormat,
    UnsupportedLinkType,
)
from .export import PcapngWriter, PcapWriter, export_pcapng
from .jsonl import JsonlWriter, follow_jsonl, read_jsonl
from .sink import RecordingError

__all__ = [
    "Capture",
    "CaptureError",
    "CorruptCapture",
    "CorruptRecord",
    "JsonlWriter",
    "PcapWriter",
    "PcapngWriter",
    "RecordingError",
    "TruncatedCapture",
    "UnknownFormat",
    "UnsupportedLinkType",
    "detect_format",
    "export_pcapng",
    "follow_jsonl",
    "open_capture",
    "read_jsonl",
]
