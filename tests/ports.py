"""A free TCP port for a server a test starts (mosquitto, signalk-server, `serve --web`)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on `host` and nothing holds now. Another process could
    take it before the server binds it; on a test machine that has not been seen."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
