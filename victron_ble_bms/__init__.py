"""victron-ble-bms: Victron Instant Readout for batteries and BMSes.

The names here are the stable library API; importing them needs only `cryptography`.
"""

from .protocol import (
    COMPANY_ID,
    Code,
    DecodeError,
    Frame,
    InvalidKey,
    KeyMismatch,
    NotInstantReadout,
    Record,
    Severity,
    TruncatedFrame,
    UnsupportedRecord,
    decode,
    encode,
    parse_frame,
)
from .protocol.records import LynxSmartBmsRecord, SmartBmsRecord, SmartLithiumRecord

__version__ = "0.1.0"
__all__ = [
    "COMPANY_ID",
    "Code",
    "DecodeError",
    "Frame",
    "InvalidKey",
    "KeyMismatch",
    "LynxSmartBmsRecord",
    "NotInstantReadout",
    "Record",
    "Severity",
    "SmartBmsRecord",
    "SmartLithiumRecord",
    "TruncatedFrame",
    "UnsupportedRecord",
    "decode",
    "encode",
    "parse_frame",
]
