"""Text of a bank's card and screen (issue 20), built from `banks.BankState`. No textual here.

Names (the bank's, its members') come from the keys file, a file anyone can make: they enter
only through `outside()` (plain text, never markup). Unknown is shown as unknown ("—", "?",
"unknown"), never as blank or as all clear.
"""

from __future__ import annotations

from rich.text import Text

from victron_ble_bms.banks import (
    IMBALANCE_SOC_PCT,
    IMBALANCE_V_PER_CELL,
    BankState,
    CellExtreme,
    Layout,
    MemberState,
    MemberStatus,
    Verdict,
)
from victron_ble_bms.protocol import Severity

from .format import DASH, SEVERITY_STYLE, amps, cell, celsius, outside, percent, time_to_go

VERDICT_STYLE: dict[Verdict, str] = {
    Verdict.OK: "bold green",
    Verdict.WARNING: "bold yellow",
    Verdict.ALARM: "bold red",
    Verdict.DEGRADED: "bold magenta",
    Verdict.UNKNOWN: "bold",
}
VERDICT_MARK: dict[Verdict, str] = {
    Verdict.OK: "✓",
    Verdict.WARNING: "▲",
    Verdict.ALARM: "✖",
    Verdict.DEGRADED: "◐",
    Verdict.UNKNOWN: "?",
}

LABEL = 13  # the label column of the card's lines


def layout_text(state: BankState) -> str:
    return f"{state.layout.value} bank of {state.members_expected}"


def title(state: BankState) -> Text:
    """The card's border title: the bank's name (from the keys file) and its layout."""
    text = outside(state.name)
    text.append(f" · {layout_text(state)}")
    return text


def verdict_text(state: BankState) -> Text:
    v = state.verdict
    return Text(f"{VERDICT_MARK[v]} {v.value.upper()}", style=VERDICT_STYLE[v])


def _line(label: str) -> Text:
    return Text(f"{label:<{LABEL}}")


def _unknown(text: str = DASH) -> Text:
    return Text(text, style="bold")


def members_text(state: BankState) -> Text:
    text = Text(f"{state.members_heard} of {state.members_expected} heard")
    others: dict[str, int] = {}
    for m in state.members:
        if not m.status.usable:
            others[m.status.value] = others.get(m.status.value, 0) + 1
    for status, n in others.items():
        text.append(f" · {n} {status}", style="bold magenta")
    partial = sum(1 for m in state.members if m.status is MemberStatus.PARTIAL)
    if partial:
        text.append(f" · {partial} partial", style="bold magenta")
    return text


def voltage_text(state: BankState) -> Text:
    if state.voltage_v is None:
        return _unknown()
    text = Text(f"{state.voltage_v:.2f} V")
    if state.layout is Layout.SERIES:
        return text
    spread = state.voltage_spread_v
    what = "members" if state.layout is Layout.PARALLEL else "strings"
    text.append(f" · spread {DASH if spread is None else f'{spread:.2f} V'} between {what}")
    return text


def extreme_text(extreme: CellExtreme | None) -> Text:
    if extreme is None:
        return _unknown()
    text = Text(f"{cell(extreme.bound or extreme.voltage_v)}  ")
    return text.append_text(outside(extreme.at, style="bold"))


def spread_text(state: BankState) -> Text:
    mv = state.cell_spread_mv
    return _unknown() if mv is None else Text(f"{mv} mV")


def _allowed(allowed: bool | None, blocking: tuple[str, ...] | None) -> Text:
    if allowed is None:
        return _unknown("unknown")
    if allowed:
        return Text("allowed", style="green")
    text = Text("blocked by ", style="bold red")
    return text.append_text(outside(", ".join(blocking or ("?",)), style="bold red"))


def charge_text(state: BankState) -> Text:
    text = Text("charge ")
    text.append_text(_allowed(state.allowed_to_charge, state.blocking_charge))
    text.append(" · discharge ")
    return text.append_text(_allowed(state.allowed_to_discharge, state.blocking_discharge))


def codes_text(state: BankState) -> Text:
    if not state.codes:
        return Text("none", style="green") if state.codes_complete else _unknown("unknown")
    worst = state.codes[0]
    text = Text(f"{worst.code.id} {worst.code.title}", style=SEVERITY_STYLE[worst.code.severity])
    text.append(" (")
    text.append_text(outside(worst.member))
    text.append(")")
    if len(state.codes) > 1:
        text.append(f" +{len(state.codes) - 1} more")
    if not state.codes_complete:
        text.append(" · others unknown", style="bold")
    return text


def one_battery(state: BankState) -> bool:
    """Every member read, and only one of them a battery: there is nothing to compare."""
    batteries = sum(1 for m in state.members if m.role == "battery")
    return state.members_heard == state.members_expected and batteries < 2


def imbalance_text(state: BankState) -> Text:
    if state.imbalance is None:
        if one_battery(state):
            return Text("n/a (one battery)", style="dim")
        return _unknown("unknown")
    if not state.imbalance:
        if state.members_heard < state.members_expected:
            return Text("none among the members heard", style="yellow")
        return Text("none", style="green")
    text = Text("", style="bold yellow")
    for i, name in enumerate(state.imbalance):
        member = next((m for m in state.members if m.member.name == name), None)
        text.append(", " if i else "")
        text.append_text(outside(name, style="bold yellow"))
        if member is not None and member.deviation_v is not None:
            text.append(f" {member.deviation_v:+.2f} V", style="bold yellow")
    return text


def soc_text(state: BankState) -> Text:
    text = Text()
    text.append(percent(state.soc_pct), style="bold" if state.soc_pct is None else "")
    text.append(" · ")
    text.append(amps(state.current_a), style="bold" if state.current_a is None else "")
    if state.soc_from is not None:
        text.append(" · from ")
        text.append_text(outside(state.soc_from))
    else:
        text.append(" · no member carries it", style="dim")
    return text


def card_lines(state: BankState) -> list[Text]:
    """The card's body: always `CARD_LINES` lines (a bank's card never changes height, so a new
    reading never lays out the grid again). Lines never wrap: the CSS cuts them."""
    head = verdict_text(state)
    head.append("  ")
    head.append_text(outside(state.reason))
    return [
        head,
        _line("Members").append_text(members_text(state)),
        _line("Voltage").append_text(voltage_text(state)),
        _line("Lowest cell").append_text(extreme_text(state.cell_min)),
        _line("Highest cell").append_text(extreme_text(state.cell_max)),
        _line("Cell spread").append_text(spread_text(state)),
        _line("Allowed").append_text(charge_text(state)),
        _line("Worst code").append_text(codes_text(state)),
        _line("Imbalance").append_text(imbalance_text(state)),
        _line("SOC, current").append_text(soc_text(state)),
    ]


CARD_LINES = 10


# --- the bank screen ------------------------------------------------------------------------


def deviation_text(m: MemberState) -> Text:
    parts = Text()
    if m.deviation_v is not None:
        parts.append(f"{m.deviation_v:+.2f} V")
    if m.soc_deviation_pct is not None:
        parts.append(" · " if parts else "")
        parts.append(f"SOC {m.soc_deviation_pct:+.0f} pt")
    if not parts:
        return Text(DASH)
    if m.imbalance:
        parts.stylize("bold yellow")
        parts.append(" imbalance", style="bold yellow")
    return parts


def flag_text(flag: bool | None, reports: bool) -> Text:
    if not reports:
        return Text("n/a", style="dim")
    if flag is None:
        return _unknown("?")
    return Text("yes", style="green") if flag else Text("no", style="bold red")


def codes_of(m: MemberState) -> Text:
    if m.codes is None:
        return _unknown("?")
    if not m.codes:
        return Text("none", style="green")
    text = Text()
    for i, code in enumerate(m.codes):
        text.append(" " if i else "")
        text.append(code.id, style=SEVERITY_STYLE.get(code.severity, ""))
    return text


def severity_style(severity: Severity) -> str:
    return SEVERITY_STYLE.get(severity, "")


def thresholds() -> str:
    return (
        f"Flagged past {IMBALANCE_V_PER_CELL * 1000:.0f} mV per cell from the bank's median "
        f"battery (0.1 V for a 12.8 V battery), or {IMBALANCE_SOC_PCT:.0f} points of state of "
        "charge — inferred: the manual gives no figure between batteries."
    )


def temperature_text(state: BankState) -> Text:
    def one(t: tuple[float, str] | None) -> Text:
        if t is None:
            return _unknown()
        return Text(f"{celsius(t[0])} (").append_text(outside(t[1])).append(")")

    return (
        Text("lowest ")
        .append_text(one(state.temperature_min))
        .append("   highest ")
        .append_text(one(state.temperature_max))
    )


def consumption_text(state: BankState) -> str:
    ah = DASH if state.consumed_ah is None else f"{state.consumed_ah:.1f} Ah"
    return f"consumed {ah} · time to go {time_to_go(state.ttg_min)}"
