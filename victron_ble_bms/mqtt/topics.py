"""The topic contract (README "Home Assistant and MQTT"):

    <prefix>/<addr>/state          one JSON object per published reading (retained for devices
                                   in the keys file; emptied when the key is removed)
    <prefix>/<addr>/availability   "online" / "offline" (retained; offline once stale)
    <prefix>/bridge/availability   "online" / "offline" (retained; also the MQTT last will)
    <discovery_prefix>/device/<prefix_id>_<addr>/config   HA device discovery (retained)
    <prefix>/raw/<receiver-id>     raw advertisements of `serve --publish-raw` (not retained;
                                   format in receivers/formats.py)
    <prefix>/raw/<receiver-id>/availability   that receiver's "online" / "offline" (retained,
                                   its last will)

`<addr>` is the Bluetooth address as 12 lower-case hex digits (a macOS CoreBluetooth UUID, which
is not an address, becomes its 32 hex digits).
"""

from __future__ import annotations

import re

ONLINE = "online"
OFFLINE = "offline"

_NOT_ID = re.compile(r"[^a-z0-9_]+")


def node_id(address: str) -> str:
    """'AA:BB:CC:DD:EE:FF' → 'aabbccddeeff' (the address is normalised by the sources)."""
    return re.sub(r"[^0-9a-f]", "", address.lower())


def prefix_id(prefix: str) -> str:
    """A topic prefix as an id for HA object/unique ids: 'victron-ble-bms' → 'victron_ble_bms'."""
    return _NOT_ID.sub("_", prefix.lower()).strip("_") or "victron"


def state_topic(prefix: str, address: str) -> str:
    return f"{prefix}/{node_id(address)}/state"


def availability_topic(prefix: str, address: str) -> str:
    return f"{prefix}/{node_id(address)}/availability"


def bridge_availability_topic(prefix: str) -> str:
    return f"{prefix}/bridge/availability"


def discovery_object_id(prefix: str, address: str) -> str:
    return f"{prefix_id(prefix)}_{node_id(address)}"


def discovery_topic(discovery_prefix: str, object_id: str) -> str:
    return f"{discovery_prefix}/device/{object_id}/config"


def bridge_object_id(prefix: str) -> str:
    return f"{prefix_id(prefix)}_bridge"
