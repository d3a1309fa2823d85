"""Remote receivers: advertisements that other machines publish to MQTT, as a source.

Interface for `victron-bms serve --source mqtt` (mqtt branch)::

    from victron_ble_bms.receivers import Receivers, advertisements, DEFAULT_TOPICS

    tracker = Receivers(on_event=print_one_line)      # optional; bookkeeping you can read
    async for adv in advertisements(client, DEFAULT_TOPICS, receivers=tracker):
        reading = decode_advertisement(adv, keys)     # as for any other source
        state = frame_object(...) | tracker.state_fields(adv.address)

    async def advertisements(
        client_or_url: aiomqtt.Client | str | MqttConfig,  # client, "mqtt://…" or serve's cfg
        topics: Sequence[str] | None = DEFAULT_TOPICS,  # BTtoMQTT, gateways' LWT, our raw
        *,
        receivers: Receivers | None = None,
        clock: Callable[[], float] = time.time,
        first: Callable[[str], bool] | None = None,  # serve: keys.__contains__
    ) -> AsyncIterator[Advertisement]

* Yields only the FIRST copy of each transmission (same address + same Victron data, which
  includes the nonce) heard within `DUPLICATE_WINDOW_S`; `adv.origin` is "mqtt:bttomqtt" or
  "mqtt:raw", `adv.ts` the arrival time (BTtoMQTT carries none) or the raw message's `ts`.
* Given a client it subscribes to `topics` on it and ignores messages of other subscriptions;
  connection errors (aiomqtt.MqttError) propagate — the caller reconnects. Given a URL or
  serve's `MqttConfig` (pass `cfg`, not `str(cfg.broker)`: then the config file's password
  and cafile apply) it connects itself and reconnects with back-off (1, 2, 5, 10, 30 s).
* Connecting by itself (URL or config), it reads with MQTT 5 asking for packets of at most
  64 KiB (3.1.1 when the broker refuses 5), and its incoming queue puts gateways' status and
  addresses for which `first(address)` is true before known and new ones (intake.py): a flood
  of new addresses is bounded, rate-limited and cannot starve keyed devices.
* Malformed messages never raise: `tracker.counters.malformed` counts them and one line is
  logged on logger "victron_ble_bms.receivers" (each kind at most every 10 s).
* `tracker.state_fields(address)` → {"receiver": best-RSSI receiver for the latest frame,
  "receivers": {id: {"last_seen": ts, "rssi": dBm}}} to merge into the state JSON.
  `tracker.silent()` lists silent receivers; `on_event` gets one line when a receiver starts,
  goes silent (> `silent_after_s`, default 60 s) or comes back.

Our own raw format (`serve --publish-raw`): `raw_topic(prefix, receiver_id)` and
`encode_raw(adv) -> bytes` (see formats.py for the JSON); `RawForwarder` (forward.py) decides
what a receiver sends (each transmission once, bounded, never retained).
"""

from .formats import (
    MAX_PAYLOAD_BYTES,
    Heard,
    MessageError,
    encode_raw,
    parse_message,
    raw_topic,
)
from .forward import RawForwarder, ReceiverIdError, check_receiver_id, receiver_id_from_hostname
from .stream import (
    DEFAULT_TOPICS,
    advertisements,
    client_for,
    config_for,
    default_topics,
    reconnecting,
)
from .tracker import DUPLICATE_WINDOW_S, SILENT_AFTER_S, Receivers, RemoteDevice

__all__ = [
    "DEFAULT_TOPICS",
    "DUPLICATE_WINDOW_S",
    "MAX_PAYLOAD_BYTES",
    "SILENT_AFTER_S",
    "Heard",
    "MessageError",
    "RawForwarder",
    "ReceiverIdError",
    "Receivers",
    "RemoteDevice",
    "advertisements",
    "check_receiver_id",
    "client_for",
    "config_for",
    "default_topics",
    "encode_raw",
    "parse_message",
    "raw_topic",
    "receiver_id_from_hostname",
    "reconnecting",
]
