"""What `serve` feeds: the sinks (MQTT, Signal K, the web page) and the board they read.

`serve` reads one source and hands every new reading to each sink (`Sink.reading`), ticks them
about once a second (`Sink.tick`) and runs each one's connection or server (`Sink.run`) until it
stops them (`Sink.stop`). A sink that shows the whole picture — every device, its age, later the
banks — reads the `Board`, which `serve` keeps once for all of them: one scanner, any number of
viewers. Nothing here does I/O; the sinks live beside their transport (`mqtt/sink.py`, …).
"""

from .board import Board, DeviceEntry
from .sink import Sink

__all__ = ["Board", "DeviceEntry", "Sink"]
