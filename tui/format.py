"""Text for the screens: values with units, the main values of each device kind, and the
manual's explanation of each balancer state. No textual here.

Everything is built as `rich.text.Text` (styled spans), never as markup: names, addresses and
labels come from the air or from files (anyone nearby can broadcast `[@click=app.quit]`), and
`outside()` is the one way such text enters a screen — `safetext.plain` for control and bidi
characters, then a `Text` that nothing parses.
"""

from __future__ import annotations

from rich.text import Text

from victron_ble_bms.protocol import (
    LynxSmartBmsRecord,
    Record,
    SmartBmsRecord,
    SmartLithiumRecord,
)
from victron_ble_bms.protocol.codes import Severity
from victron_ble_bms.protocol.enums import BalancerStatus, CellBound
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.readings import KeyStatus

# Lithium Battery Smart manual §5.2.2 "How to monitor cell balancing status" (the four states the
# VictronConnect app shows), in our words.
BALANCER_EXPLANATIONS: dict[BalancerStatus, str] = {
    BalancerStatus.UNKNOWN: (
        "The battery is new or has not been charged for 30 days. Charge it: the balance is "
        "determined once the battery is above 13.8 V (27.2 V for 25.6 V batteries)."
    ),
    BalancerStatus.BALANCING: (
        "The battery is balancing its cells now (this happens in absorption, at about 3.50 V per "
        "cell). It will show 'balanced' when done."
    ),
    BalancerStatus.BALANCED: (
        "All cells are balanced: the optimal state; the cells charge and discharge evenly."
    ),
    BalancerStatus.IMBALANCE: (
        "Balancing did not finish at the last charge, or cells differ by more than 0.1 V. "
        "Charge fully; with a severe imbalance restart the charger several times, because "
        "balancing only happens in absorption and stops at float."
    ),
}
BALANCER_SOURCE = "Lithium Battery Smart manual §5.2.2"

SEVERITY_STYLE: dict[Severity, str] = {
    Severity.WARNING: "yellow",
    Severity.ALARM: "red",
    Severity.ERROR: "magenta",
}

STATUS_TEXT: dict[KeyStatus, Text] = {
    KeyStatus.OK: Text("key ok", style="green"),
    KeyStatus.NO_KEY: Text("no key — add key ⏎", style="yellow"),
    KeyStatus.MISMATCH: Text("key mismatch — new key? ⏎", style="red"),
    KeyStatus.UNDECODABLE: Text("undecodable", style="magenta"),
    KeyStatus.NOT_VICTRON: Text("not Instant Readout", style="dim"),
}

# When a frame lacks the fields the codes come from (protocol contract: `Record.codes is None`).
CODES_UNKNOWN = "codes unknown (frame incomplete)"

DASH = "—"


def outside(value: object, style: str = "") -> Text:
    """Text from outside (a name, an address, a label, a file name): shown literally."""
    return Text(plain(value), style=style, no_wrap=False)


def styled(text: str, style: str = "") -> Text:
    return Text(text, style=style)


def volts(v: float | None, digits: int = 2) -> str:
    return DASH if v is None else f"{v:.{digits}f} V"


def cell(v: float | CellBound | None) -> str:
    if v is None:
        return DASH
    if isinstance(v, CellBound):
        return f"{v} V"
    return f"{v:.2f} V"


def amps(a: float | None) -> str:
    return DASH if a is None else f"{a:+.1f} A"


def celsius(t: float | None) -> str:
    return DASH if t is None else f"{t:.0f} °C"


def percent(p: float | None) -> str:
    return DASH if p is None else f"{p:.1f} %"


def yes_no(flag: bool | None) -> Text:
    if flag is None:  # not received (partial frame)
        return Text("unknown", style="bold")
    return Text("yes", style="green") if flag else Text("no", style="red")


def balance(status: BalancerStatus | None) -> Text:
    if status is None:
        return Text(DASH)
    style = {
        BalancerStatus.BALANCED: "green",
        BalancerStatus.BALANCING: "cyan",
        BalancerStatus.IMBALANCE: "yellow",
    }.get(status, "dim")
    return Text(status.label, style=style)


def time_to_go(minutes: int | None) -> str:
    if minutes is None:
        return DASH
    return f"{minutes // 60} h {minutes % 60:02d} min"


Value = str | Text


def main_values(record: Record | None) -> list[tuple[str, Value]]:
    """The values a device card shows, by device kind (the app's device list)."""
    if isinstance(record, SmartLithiumRecord):
        spread = record.cell_spread_mv
        return [
            ("Voltage", volts(record.battery_voltage_v)),
            ("Temperature", celsius(record.battery_temperature_c)),
            ("Balance", balance(record.balancer_status)),
            ("Cells", f"{record.cell_count} · spread {DASH if spread is None else spread} mV"),
        ]
    if isinstance(record, LynxSmartBmsRecord):
        return [
            ("SOC", percent(record.soc_pct)),
            ("Current", amps(record.battery_current_a)),
            ("Voltage", volts(record.battery_voltage_v)),
        ]
    if isinstance(record, SmartBmsRecord):
        return [
            ("Battery", volts(record.battery_voltage_v)),
            ("Alternator", volts(record.alternator_voltage_v)),
            ("Decoding", Text("provisional", style="yellow")),
        ]
    if record is None:
        return []
    # Any other decoded record (a SmartShunt …): the values `decode` shows at a glance, with
    # the same rows for every record of a type (the card's height is fixed per type).
    rows: list[tuple[str, Value]] = [("Record", record.record_name)]
    for label, attr, shown in (
        ("Voltage", "battery_voltage_v", volts),
        ("Current", "battery_current_a", amps),
        ("SOC", "soc_pct", percent),
    ):
        if hasattr(record, attr):
            rows.append((label, shown(getattr(record, attr))))
    return rows
