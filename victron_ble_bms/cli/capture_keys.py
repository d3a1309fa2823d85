"""The keys file a recording names in its own header (issue 25 item 6).

`emulate --capture` and `record` write their test keys beside the recording and name them in
its header line (`"keys": "run.jsonl.keys.toml"`, relative to the recording). When `decode` is
given no `--keys`, it uses that file — and says so in its first line — instead of the user's
own keys file. Only a plain relative `.toml` name beside or below the recording is followed: a
capture is a file anyone can make, and must not point `decode` at other files.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePath

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.capture.jsonl import is_jsonl_capture

HEADER_BYTES = 4096


def _named(path: str) -> str | None:
    """The header's "keys" value of a JSON-lines recording, or None."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(HEADER_BYTES)
    except OSError:
        return None  # decode reports the unreadable file itself
    if not is_jsonl_capture(first):
        return None
    try:
        header = json.loads(first)
    except ValueError:
        return None
    keys = header.get("keys") if isinstance(header, dict) else None
    return keys if isinstance(keys, str) and keys else None


def _acceptable(name: str) -> bool:
    p = PurePath(name)
    return not p.is_absolute() and ".." not in p.parts and p.suffix == ".toml" and "\\" not in name


def keys_from_headers(files: list[str]) -> tuple[str | None, str | None]:
    """(keys file to use, the line to print first), both None when no recording names one.

    Several recordings naming different files: none is chosen (the line says so)."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for path in files:
        name = _named(path)
        if name is None:
            continue
        candidate = Path(path).parent / name
        if _acceptable(name) and candidate.is_file():
            found.setdefault(str(candidate), path)
        else:
            missing.append(f"{plain(name)} (named by {plain(path)})")
    if len(found) == 1:
        ((keys, capture),) = found.items()
        return keys, (
            f"keys from {plain(keys)}, named in the header of {plain(capture)} "
            "(--keys FILE to use another)"
        )
    if len(found) > 1:
        return None, (
            "the recordings name different keys files ("
            + ", ".join(plain(k) for k in found)
            + "); using the default keys file — pass --keys FILE to choose"
        )
    if missing:
        return None, f"keys file {missing[0]} not found or not usable; using the default keys file"
    return None, None
