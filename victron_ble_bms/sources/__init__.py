"""I/O: where advertisements come from (live BLE, capture files, the emulator) — one shape.

Every source yields `Advertisement` values; `readings.decode_advertisement` turns one into a
`Reading` with the decoded record or the reason there is none.
"""

from .advertisement import Advertisement, normalize_address
from .readings import KeyStatus, Reading, decode_advertisement

__all__ = ["Advertisement", "KeyStatus", "Reading", "decode_advertisement", "normalize_address"]
