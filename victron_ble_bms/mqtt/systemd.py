"""The systemd unit for `victron-bms serve` (contrib/victron-bms.service is this text with the
defaults; `victron-bms serve --print-systemd-unit` fills in this machine's paths and options).

Hardening keeps what serve needs and nothing else: AF_UNIX for the system D-Bus (BlueZ is reached
over D-Bus, never raw HCI sockets, so no capabilities and no AF_BLUETOOTH), AF_INET/AF_INET6 for
the broker, read-only home for the keys and config files. The broker password goes in the
EnvironmentFile (mode 0600), never on the ExecStart line, which `systemctl status` shows.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

UNIT_TEMPLATE = """\
# victron-bms serve: Victron BLE batteries/BMSes → MQTT (Home Assistant discovery).
# Install: sudo cp victron-bms.service /etc/systemd/system/ && sudo systemctl daemon-reload
#          sudo systemctl enable --now victron-bms
# Broker password (optional): VICTRON_BMS_MQTT_PASSWORD=… in {env_file} (chmod 600).
[Unit]
Description=Victron BLE batteries and BMSes to MQTT (victron-bms serve)
Documentation=https://github.com/victron-ble-bms/victron-ble-bms#home-assistant-and-mqtt
Wants=network-online.target bluetooth.target
After=network-online.target bluetooth.target

[Service]
Type=exec
User={user}
{groups}ExecStart={exec_start}
EnvironmentFile=-{env_file}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=10s
TimeoutStopSec=20s
# serve bounds its own memory; this is the backstop.
MemoryMax=512M
UMask=0077

# Hardening. D-Bus (AF_UNIX) stays open: BlueZ is reached through the system bus.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources

[Install]
WantedBy=multi-user.target
"""

DEFAULT_ENV_FILE = "/etc/victron-bms/serve.env"


def unit_text(
    executable: str,
    args: Sequence[str],
    *,
    user: str = "victron",
    env_file: str = DEFAULT_ENV_FILE,
    bluetooth_group: bool = True,
) -> str:
    """The unit with `ExecStart=<executable> serve <args>` (quoted for systemd).

    BlueZ's D-Bus policy lets members of group `bluetooth` talk to org.bluez; the unit adds
    the group unless `bluetooth_group` is False (a missing group would stop the unit from
    starting, so `serve --print-systemd-unit` leaves it out where the group does not exist)."""
    exec_start = " ".join(_quote(a) for a in [executable, "serve", *args])
    groups = "SupplementaryGroups=bluetooth\n" if bluetooth_group else ""
    return UNIT_TEMPLATE.format(user=user, groups=groups, exec_start=exec_start, env_file=env_file)


def group_exists(name: str) -> bool:
    try:
        import grp
    except ImportError:  # not POSIX
        return False
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _quote(arg: str) -> str:
    # systemd's ExecStart quoting is close to the shell's for plain words and quoted strings;
    # '%' and '$' are systemd specifiers / variables and must be doubled.
    quoted = shlex.quote(arg)
    if quoted.startswith("'"):
        quoted = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quoted.replace("%", "%%").replace("$", "$$")
