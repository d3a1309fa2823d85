"""Signal K: the batteries on the boat's own data hub (signalk-server), its instruments and alarms.

- `mapping` — pure: a decoded record → Signal K paths and SI values, `meta` (units, display
  names, the manuals' fixed thresholds as `zones`) and notifications for active codes;
- `publisher` — pure, with memory: the `hub.Board`'s devices → delta messages (what changed,
  codes that went, devices that went silent);
- `config` — the `[signalk]` table of serve's config file and the token's environment variable;
- `access` — a device access request and the token it earns, kept in a 0600 file;
- `link` — the server's WebSocket stream, reconnecting with back-off; `sink` — serve's sink.

Which paths are the Signal K specification's and which are ours is in the README ("Signal K").
"""

from .mapping import battery_ids, slug

__all__ = ["battery_ids", "slug"]
