"""The topic contract (README "Home Assistant and MQTT"):

    <prefix>/<addr>/state          one JSON object per published reading (retained for devices
                                   in the keys file; emptied when the key is removed)
    <prefix>/<addr>/availability   "online" / "offline" (retained; offline once stale)
    <prefix>/bridge/<instance>/availability   this `serve`'s "online" / "offline" (retained; also
                                   its MQTT last will) — one per instance, so several `serve`s
                                   share a broker without gating each other's entities
    <discovery_prefix>/device/<prefix_id>_<addr>/config   HA device discovery (retained; its
                                   `device.via_device` names the instance that owns it)
    <discovery_prefix>/device/<prefix_id>_bridge_<instance>/config   the instance as an HA device
    <prefix>/raw/<receiver-id>     raw advertisements of `serve --publish-raw` (not retained;
                                   format in receivers/formats.py)
    <prefix>/raw/<receiver-id>/availability   that receiver's "online" / "offline" (retained,
                                   its last will)

`<instance>` is the instance id (`serve --instance-id`, default: the host name): lower-case
letters, digits, '_' and '-'. A demo run (`--source emulator`) publishes under
`<prefix>-demo/<instance>` (`demo_prefix`), so its made-up devices never mix with real ones.

`<addr>` is the Bluetooth address as 12 lower-case hex digits (a macOS CoreBluetooth UUID, which
is not an address, becomes its 32 hex digits).
"""

from __future__ import annotations

import re

ONLINE = "online"
OFFLINE = "offline"

_NOT_ID = re.compile(r"[^a-z0-9_]+")
MAX_INSTANCE_ID = 48
_INSTANCE = re.compile(r"[a-z0-9_-]{1,48}")


class InstanceIdError(ValueError):
    """An instance id that cannot be one topic level and one part of HA object ids."""


def check_instance_id(text: str) -> str:
    """An instance id given by the user, unchanged, or `InstanceIdError` saying why not."""
    if not _INSTANCE.fullmatch(text):
        raise InstanceIdError(
            f"instance id {text[:60]!r}: 1–{MAX_INSTANCE_ID} lower-case letters, digits, "
            "'_' or '-' (it is one MQTT topic level and part of Home Assistant ids)"
        )
    return text


def instance_id_from_hostname(hostname: str) -> str:
    """The default instance id: the host name, lower-cased, anything else replaced by '-'."""
    text = re.sub(r"[^a-z0-9_-]+", "-", hostname.lower()).strip("-")[:MAX_INSTANCE_ID]
    return text.strip("-") or "serve"


def demo_prefix(prefix: str, instance: str) -> str:
    """Where a demo run (`--source emulator`) publishes: apart from real devices and from
    other instances' demos (the demo fleet has the same addresses everywhere)."""
    return f"{prefix}-demo/{instance}"


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


def bridge_availability_topic(prefix: str, instance: str) -> str:
    return f"{prefix}/bridge/{instance}/availability"


def discovery_object_id(prefix: str, address: str) -> str:
    return f"{prefix_id(prefix)}_{node_id(address)}"


def discovery_topic(discovery_prefix: str, object_id: str) -> str:
    return f"{discovery_prefix}/device/{object_id}/config"


def bridge_object_id(prefix: str, instance: str) -> str:
    return f"{prefix_id(prefix)}_bridge_{instance}"
