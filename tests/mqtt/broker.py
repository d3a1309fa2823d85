"""A real mosquitto broker for tests, and an independent subscriber (mosquitto_sub).

Stable API (the receivers branch merges this module; change it only by adding):

Fixtures (re-exported by tests/mqtt/conftest.py; other test folders import them from here and
re-export them in their own conftest.py, e.g. ``from tests.mqtt.broker import mqtt_broker``):

- ``mqtt_broker`` -> :class:`Broker`: anonymous listener on a free 127.0.0.1 port.
- ``mqtt_broker_auth`` -> :class:`Broker`: password file (``mosquitto_passwd``), anonymous
  access refused; ``broker.username`` / ``broker.password`` hold the one valid account.
- ``mqtt_broker_tls`` -> :class:`Broker`: TLS listener whose self-signed certificate (made with
  ``cryptography``) names ``broker.tls_name`` ("localhost" — so connecting to 127.0.0.1 is a
  name mismatch unless the client uses that name); ``broker.cafile`` trusts it.

Plain helpers (no fixture needed):

- ``Broker(tmp_dir, *, password=False, tls=False)`` with ``start()``, ``stop()``,
  ``restart()`` (same port, retained messages are lost: persistence is off), ``url`` /
  ``url_with_user`` (``mqtt://[user@]127.0.0.1:PORT``), ``host``, ``port``, ``log_text()``.
  Also a context manager (``with Broker(...) as b:``).
- ``subscribe(broker, topic="#") -> Subscriber`` (context manager): a ``mosquitto_sub`` process
  (an independent C client, not our aiomqtt/paho code) collecting :class:`Message`\\ s
  (``topic``, ``payload: str`` — "" for an empty payload, ``retain: bool``, ``qos``).
  ``sub.messages`` (a copy),
  ``sub.wait_for(predicate, timeout) -> Message`` (raises ``TimeoutError`` naming what was seen),
  ``sub.latest(topic) -> Message | None``, ``sub.topics()``.
- ``retained(broker, topic="#", timeout=1.0) -> dict[str, str]``: the broker's retained
  messages right now (topic -> payload), read by a fresh ``mosquitto_sub --retained-only``.
- ``publish(broker, topic, payload, retain=False)``: one message via ``mosquitto_pub``.

Everything lives in pytest's tmp dir (config, password file, certificates, log); persistence is
off, the listener binds to 127.0.0.1 only. Tests skip with a clear reason when the Debian packages
``mosquitto`` / ``mosquitto-clients`` are missing (scripts/test.sh installs them).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.ports import free_port

HOST = "127.0.0.1"


def _need(tool: str, package: str) -> str:
    sbin = Path("/usr/sbin") / tool  # mosquitto itself is in /usr/sbin, not on a user's PATH
    path = shutil.which(tool) or (str(sbin) if sbin.exists() else None)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian package '{package}'; scripts/test.sh has it)")
    return path


def make_self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed CA-style certificate for DNS ``name`` only; returns (certfile, keyfile)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(name)]
    with contextlib.suppress(ValueError):
        san = [x509.IPAddress(ipaddress.ip_address(name))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return certfile, keyfile


class Broker:
    """One mosquitto process on a free loopback port (see the module docstring)."""

    def __init__(self, tmp_dir: Path, *, password: bool = False, tls: bool = False) -> None:
        self.exe = _need("mosquitto", "mosquitto")
        self.dir = Path(tmp_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = free_port(HOST)
        self.username: str | None = None
        self.password: str | None = None
        self.tls = tls
        self.tls_name = "localhost"
        self.cafile: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.config = self.dir / "mosquitto.conf"
        self.logfile = self.dir / "mosquitto.log"
        lines = [
            f"listener {self.port} {HOST}",
            "persistence false",
            f"log_dest file {self.logfile}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",  # wait_subscribed: "<client> <qos> <filter>" per subscription
            "connection_messages true",
            # As root mosquitto would switch to user 'mosquitto', who cannot read pytest's tmp dir.
            "user root" if os.geteuid() == 0 else "",
        ]
        if password:
            self.username = "victron"
            self.password = "pw-" + secrets.token_hex(8)
            pwfile = self.dir / "passwd"
            tool = _need("mosquitto_passwd", "mosquitto")
            subprocess.run(  # noqa: S603
                [tool, "-b", "-c", str(pwfile), self.username, self.password],
                check=True,
                capture_output=True,
            )
            pwfile.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            certfile, keyfile = make_self_signed(self.dir, self.tls_name)
            self.cafile = certfile
            lines += [f"certfile {certfile}", f"keyfile {keyfile}"]
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def url_with_user(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen(  # noqa: S603
            [self.exe, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err} {self.log_text()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log_text()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def wait_subscribed(self, filters: Iterable[str], timeout: float = 60.0) -> None:
        """Until some client has subscribed to every one of `filters` (the broker's log says
        so), instead of sleeping a guessed time for a process to start: under load serve took
        longer than 2 s, and messages published before its subscriptions were lost."""
        wanted = list(filters)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if all(f" {f}" in text for f in wanted):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscription to {wanted} in {timeout:.0f} s")
            time.sleep(0.05)

    def client_args(self) -> list[str]:
        """Arguments for mosquitto_sub/mosquitto_pub to reach this broker as its valid user."""
        args = ["-h", self.tls_name if self.tls else HOST, "-p", str(self.port)]
        if self.username and self.password:
            args += ["-u", self.username, "-P", self.password]
        if self.tls and self.cafile:
            args += ["--cafile", str(self.cafile)]
        return args

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _text(payload: object) -> str:
    """%j gives the payload as a JSON string, and null for an empty payload."""
    if payload is None:
        return ""
    return payload if isinstance(payload, str) else json.dumps(payload)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool
    qos: int

    def json(self) -> object:
        return json.loads(self.payload)


class Subscriber:
    """mosquitto_sub on ``topic``, collecting every message in a reader thread."""

    def __init__(self, broker: Broker, topic: str = "#") -> None:
        self.broker = broker
        self.topic = topic
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._messages: list[Message] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        exe = _need("mosquitto_sub", "mosquitto-clients")
        # %j: one JSON object per message (topic, qos, retain, payload as an escaped string).
        self._proc = subprocess.Popen(  # noqa: S603
            [
                exe,
                *self.broker.client_args(),
                "-t",
                self.topic,
                "-F",
                "%j",
                "-q",
                "1",
                "-i",
                "test-sub-" + secrets.token_hex(4),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        # mosquitto_sub gives no "subscribed" signal: wait until the broker logs its connection.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "test-sub-" not in self.broker.log_text():
            time.sleep(0.02)
        time.sleep(0.1)

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            payload = obj.get("payload")
            msg = Message(
                topic=str(obj.get("topic")),
                payload=_text(payload),
                retain=bool(obj.get("retain")),
                qos=int(obj.get("qos", 0)),
            )
            with self._cond:
                self._messages.append(msg)
                self._cond.notify_all()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
        if self._thread is not None:
            self._thread.join(5)
        for stream in (self._proc.stdout, self._proc.stderr) if self._proc else ():
            if stream:
                stream.close()

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def topics(self) -> set[str]:
        return {m.topic for m in self.messages}

    def latest(self, topic: str) -> Message | None:
        for m in reversed(self.messages):
            if m.topic == topic:
                return m
        return None

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 15.0) -> Message:
        """The first message (old or new) matching ``predicate``; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for m in self._messages[seen:]:
                    if predicate(m):
                        return m
                seen = len(self._messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self._messages})[:20]
                    raise TimeoutError(f"no matching message in {timeout} s; topics seen: {topics}")
                self._cond.wait(left)

    def __enter__(self) -> Subscriber:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def subscribe(broker: Broker, topic: str = "#") -> Subscriber:
    return Subscriber(broker, topic)


def retained(broker: Broker, topic: str = "#", timeout: float = 1.0) -> dict[str, str]:
    """The retained messages the broker holds now (topic -> payload)."""
    exe = _need("mosquitto_sub", "mosquitto-clients")
    out = subprocess.run(  # noqa: S603
        [
            exe,
            *broker.client_args(),
            "-t",
            topic,
            "-F",
            "%j",
            "--retained-only",
            "-W",
            str(max(1, round(timeout))),
        ],
        capture_output=True,
        check=False,
    ).stdout
    result: dict[str, str] = {}
    for raw in out.splitlines():
        with contextlib.suppress(ValueError):
            obj = json.loads(raw)
            if obj.get("retain"):
                p = obj.get("payload")
                result[str(obj["topic"])] = _text(p)
    return result


def publish(broker: Broker, topic: str, payload: str | bytes, retain: bool = False) -> None:
    exe = _need("mosquitto_pub", "mosquitto-clients")
    data = payload.encode() if isinstance(payload, str) else payload
    args = [exe, *broker.client_args(), "-t", topic, "-s", "-q", "1"]
    if retain:
        args.append("-r")
    subprocess.run(args, input=data, check=True, capture_output=True)  # noqa: S603


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def mqtt_broker_auth(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "mosquitto-auth", password=True) as broker:
        yield broker


@pytest.fixture
def mqtt_broker_tls(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "mosquitto-tls", tls=True) as broker:
        yield broker


__all__ = [
    "Broker",
    "Message",
    "Subscriber",
    "make_self_signed",
    "mqtt_broker",
    "mqtt_broker_auth",
    "mqtt_broker_tls",
    "publish",
    "retained",
    "subscribe",
]
