"""A private, system-like `dbus-daemon` that the project starts and stops itself.

Used by the virtual BlueZ (docs/ecosystem.md §3.7): nothing touches the machine's real system bus,
no root is needed, and any bleak program sees our bus through `DBUS_SYSTEM_BUS_ADDRESS`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

_log = logging.getLogger(__name__)

# A system-*like* bus: type "system" so clients treat it as such, but the permissive policy of
# the stock session.conf (the stock system.conf denies sending to services without a policy
# file per service, which we do not install). No <user>, no <fork>, no pidfile: we own the
# process and its lifetime.
_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
"""


def _die_with_parent() -> None:
    """Linux: SIGTERM the daemon if we are killed before close() runs (no orphaned buses)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux/glibc: close() is then the only cleanup
        pass


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class DbusDaemonError(RuntimeError):
    """The private dbus-daemon is missing or did not start."""


class PrivateBus:
    """One `dbus-daemon` process with its config and socket in a temporary directory."""

    def __init__(self, *, executable: str | None = None, start_timeout: float = 10.0) -> None:
        self._executable = executable
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self.address: str = ""

    @staticmethod
    def find_executable() -> str | None:
        """Path of `dbus-daemon`, or None when the Debian package `dbus` is not installed."""
        return shutil.which("dbus-daemon")

    @property
    def export_line(self) -> str:
        """The shell line that points bleak programs in another shell at this bus."""
        return f"export DBUS_SYSTEM_BUS_ADDRESS={self.address}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        """Start the daemon; return its address (`unix:path=…,guid=…`)."""
        if self._process is not None:
            return self.address
        exe = self._executable or self.find_executable()
        if exe is None:
            raise DbusDaemonError(
                "dbus-daemon not found: install the Debian/Ubuntu package 'dbus' "
                "(sudo apt-get install dbus)"
            )
        self._tmpdir = Path(tempfile.mkdtemp(prefix="vbb-dbus-"))
        socket = self._tmpdir / "system_bus_socket"
        config = self._tmpdir / "system.conf"
        config.write_text(_CONFIG.format(socket=socket), encoding="utf-8")
        # --print-address writes the address on stdout once the socket listens; --nofork
        # keeps the daemon our child so terminate() really ends it.
        self._process = subprocess.Popen(  # noqa: S603 — fixed argv, no shell
            [exe, f"--config-file={config}", "--print-address", "--nofork"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 — only prctl, no locks taken
        )
        stdout = self._process.stdout
        if stdout is None:  # cannot happen with stdout=PIPE; keeps mypy honest
            raise DbusDaemonError("dbus-daemon started without a stdout pipe")
        os.set_blocking(stdout.fileno(), False)
        deadline = time.monotonic() + self._start_timeout
        buffer = b""
        while b"\n" not in buffer:
            chunk = stdout.read()
            if chunk:
                buffer += chunk
                continue
            if self._process.poll() is not None or time.monotonic() > deadline:
                err = self._process.stderr.read() if self._process.stderr else b""
                self.close()
                raise DbusDaemonError(
                    "dbus-daemon did not start: "
                    + (err.decode(errors="replace").strip() or "no address printed")
                )
            time.sleep(0.005)
        self.address = buffer.split(b"\n", 1)[0].decode().strip()
        _log.info("private dbus-daemon pid %s at %s", self._process.pid, self.address)
        return self.address

    def close(self) -> None:
        """Stop the daemon and delete its socket and config. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> PrivateBus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
