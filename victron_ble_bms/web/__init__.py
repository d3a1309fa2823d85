"""`serve --http HOST:PORT`: a live, read-only web page and JSON API for a phone on the boat.

One scanner, any number of viewers: the page and `/api/state` read the `hub.Board` that `serve`
keeps once; updates are pushed by Server-Sent Events, coalesced per viewer (only each device's
latest state waits for a slow phone), so viewers cost bounded memory and never slow decoding.
Safe by default: 127.0.0.1 unless told otherwise, a token on any other address (`auth.py`),
only GET/HEAD routes, no inline script, names from the air always shown as text.

`server.py` needs aiohttp (the `web` extra); nothing imported here does, so `serve` can check
its options without it.
"""

from .auth import Listen, ListenError, parse_listen
from .options import web_sink

__all__ = ["Listen", "ListenError", "parse_listen", "web_sink"]
