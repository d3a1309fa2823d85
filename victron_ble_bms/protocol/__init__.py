"""The protocol core: pure, no I/O. Bytes in, typed records out, and back."""

from .codec import decode, decode_frame, decode_plaintext, encode, encode_plaintext, record_class
from .codes import Code, Severity
from .crypto import mask_key, normalize_key
from .envelope import COMPANY_ID, Frame, parse_frame
from .errors import (
    DecodeError,
    InvalidKey,
    KeyMismatch,
    NotInstantReadout,
    TruncatedFrame,
    UnsupportedRecord,
)
from .fields import EncodeError, Field, Kind, Layout
from .layouts import LAYOUTS
from .records import (
    RECORD_CLASSES,
    LynxSmartBmsRecord,
    Record,
    SmartBmsRecord,
    SmartLithiumRecord,
)

__all__ = [
    "COMPANY_ID",
    "LAYOUTS",
    "RECORD_CLASSES",
    "Code",
    "DecodeError",
    "EncodeError",
    "Field",
    "Frame",
    "InvalidKey",
    "KeyMismatch",
    "Kind",
    "Layout",
    "LynxSmartBmsRecord",
    "NotInstantReadout",
    "Record",
    "Severity",
    "SmartBmsRecord",
    "SmartLithiumRecord",
    "TruncatedFrame",
    "UnsupportedRecord",
    "decode",
    "decode_frame",
    "decode_plaintext",
    "encode",
    "encode_plaintext",
    "mask_key",
    "normalize_key",
    "parse_frame",
    "record_class",
]
