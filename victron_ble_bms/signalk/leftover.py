"""Notifications an earlier run of ours left raised on the server.

A Signal K server keeps a notification's last state for as long as it runs. If `serve` stops
(a reboot, a crash, a new version) while a code is raised, and the code is gone when it starts
again, nobody would ever set it back to `normal`: the boat's hub would show the alarm until
the server restarts. So on every connection the link reads the server's
`notifications.electrical.batteries` subtree (REST, `/signalk/v1/api/vessels/self/…`) and the
publisher takes each code that carries our `$source` and is not `normal` as raised by us: the
device's next complete frame then clears it if the code has gone (and raises it on as it is if
not). Nothing is cleared on silence or on unknown codes — unknown is never an all-clear.

The subtree comes from the network: only battery ids that are ours now and code ids of the
catalogue (`protocol.codes`) are taken, and no more than `LIMIT` of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from victron_ble_bms.protocol.codes import lookup

from .deltas import SOURCE

LIMIT = 10_000
NO_DATA = "noData"


def _ours(node: Any) -> dict[str, Any] | None:
    """The value of a notification leaf sent by us and not `normal`, else None."""
    if not isinstance(node, Mapping):
        return None
    source = node.get("$source")
    value = node.get("value")
    if not isinstance(source, str) or not (source == SOURCE or source.startswith(SOURCE + ".")):
        return None
    if not isinstance(value, Mapping) or value.get("state") in (None, "normal"):
        return None
    return dict(value)


def raised_by_us(tree: Any, battery_ids: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """battery id → notification name (a code id, or `noData`) → its value, for what our
    `$source` left raised under `battery_ids`."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not isinstance(tree, Mapping):
        return out
    taken = 0
    for battery_id, branch in tree.items():
        if battery_id not in battery_ids or not isinstance(branch, Mapping):
            continue
        for name, node in branch.items():
            if not isinstance(name, str) or (name != NO_DATA and lookup(name) is None):
                continue
            value = _ours(node)
            if value is None:
                continue
            out.setdefault(battery_id, {})[name] = value
            taken += 1
            if taken >= LIMIT:
                return out
    return out
