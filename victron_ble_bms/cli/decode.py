"""`victron-bms decode`: manufacturer data (hex) → the record, as a table or JSON."""

from __future__ import annotations

import argparse
import binascii

from victron_ble_bms.protocol import DecodeError, NotInstantReadout, decode

from .output import error, print_json, print_record


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="decode manufacturer data given as hex",
        description="Decode Victron manufacturer data (hex, with or without the e1 02 company "
        "id; spaces and colons allowed).",
    )
    p.add_argument("hex", nargs="+", metavar="HEX", help="manufacturer data in hex")
    p.add_argument("--key", required=False, help="the device's Instant Readout key (32 hex digits)")
    p.add_argument("--json", action="store_true", help="print one JSON object per frame")
    p.set_defaults(run=run)


def parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    return binascii.unhexlify(cleaned)


def run(args: argparse.Namespace) -> int:
    status = 0
    for text in args.hex:
        try:
            data = parse_hex(text)
        except (binascii.Error, ValueError):
            error(f"not hex: {text[:40]!r} (give the manufacturer data as hex digits)")
            status = 2
            continue
        try:
            record = decode(data, args.key)
        except NotInstantReadout as exc:
            error(str(exc))
            status = max(status, 1)
            continue
        except DecodeError as exc:
            if args.key is None and "no key" in str(exc):
                error("this frame is encrypted: give the device's key with --key")
            else:
                error(str(exc))
            status = max(status, 1)
            continue
        if args.json:
            print_json(record.to_dict())
        else:
            print_record(record)
    return status
