"""A bank's screen (issue 20): every member's cells side by side with the bank's lowest and
highest cell marked, each member's status and deviation, which member blocks charging or
discharging and why, the inter-battery imbalance with the manual's remedy, and the bank's
codes with their member. Opened with Enter on the bank's card."""

from __future__ import annotations

from collections.abc import Collection

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from victron_ble_bms.banks import IMBALANCE_REMEDY, BankState, MemberState, MemberStatus
from victron_ble_bms.protocol import LynxSmartBmsRecord, Record, SmartLithiumRecord
from victron_ble_bms.protocol.enums import CellBound

from ..bank_format import (
    codes_of,
    consumption_text,
    deviation_text,
    flag_text,
    layout_text,
    one_battery,
    severity_style,
    soc_text,
    temperature_text,
    thresholds,
    verdict_text,
    voltage_text,
)
from ..explain import SOURCE, why_not_charging, why_not_discharging
from ..format import DASH, celsius, outside, volts
from ..state import format_age
from .base import FleetScreen

LOW_MARK, HIGH_MARK = "▼", "▲"
# Below this width the members are listed one block each instead of a table of ten columns.
TABLE_MIN_WIDTH = 100
LOW_STYLE, HIGH_STYLE = "bold cyan", "bold red"


class BankScreen(FleetScreen):
    BINDINGS = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def __init__(self, bank: str) -> None:
        super().__init__()
        self.bank = bank
        self._shown: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        yield from self.header_widgets()
        with VerticalScroll(id="detail", classes="bank-screen"):
            yield Static(id="title")
            yield Static(id="problems")
            yield Static("Members", classes="section")
            yield Static(id="members")
            yield Static("Cells", classes="section")
            yield Static(id="cells")
            yield Static("Charge and discharge", classes="section")
            yield Static(id="allowed")
            yield Static("Imbalance between batteries", classes="section")
            yield Static(id="imbalance")
            yield Static("Codes", classes="section")
            yield Static(id="bank-codes")
            yield Static("State of charge and temperature", classes="section")
            yield Static(id="soc")
        yield self.footer()

    # -- updates ------------------------------------------------------------------------------
    def on_resize(self) -> None:
        if self.is_mounted:
            self.refresh_all()  # the members' table or their blocks, to fit the width

    def banks_changed(self, names: Collection[str]) -> None:
        if self.bank in names:
            self.refresh_all()

    def refresh_all(self) -> None:
        banks = self.fleet.banks
        if self.bank not in banks.specs:
            return
        state = banks.state(self.bank, self.fleet.clock())
        records = {m.member.name: _record(banks.reading(m.member.address)) for m in state.members}
        self._set("title", _title(state))
        self._set("problems", _problems(state))
        wide = self.size.width >= TABLE_MIN_WIDTH
        self._set("members", (_members if wide else _member_lines)(state, records))
        self._set("cells", _cells(state, records))
        self._set("allowed", _allowed(state, records))
        self._set("imbalance", _imbalance(state))
        self._set("bank-codes", _codes(state))
        self._set("soc", _soc(state))

    def _set(self, id_: str, renderable: RenderableType | None) -> None:
        """Update a part when its content changed (a Static's update lays out the screen)."""
        widget = self.query_one(f"#{id_}", Static)
        widget.display = renderable is not None
        if renderable is None:
            return
        if isinstance(renderable, Text) and self._shown.get(id_) == renderable:
            return
        self._shown[id_] = renderable
        widget.update(renderable)


def _record(reading: object) -> Record | None:
    return getattr(reading, "record", None)


def _title(state: BankState) -> Text:
    text = outside(state.name, style="bold")
    text.append(f"  {layout_text(state)} members\n")
    text.append_text(verdict_text(state))
    if not state.problems:
        text.append("  ")
        text.append_text(outside(state.reason))
    return text


def _problems(state: BankState) -> Text | None:
    if not state.problems:
        return None
    text = Text()
    for i, problem in enumerate(state.problems):
        text.append("\n" if i else "")
        text.append("• ")
        text.append_text(outside(problem))
    return text


def _members(state: BankState, records: dict[str, Record | None]) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for column in (
        "Member",
        "Status",
        "Heard",
        "Voltage",
        "Deviation",
        "SOC",
        "Charge",
        "Discharge",
        "Codes",
        "Temp.",
    ):
        table.add_column(column, no_wrap=True)
    for m in state.members:
        record = records.get(m.member.name) if m.status.usable else None
        reports = isinstance(record, SmartLithiumRecord | LynxSmartBmsRecord)
        usable = m.status.usable
        table.add_row(
            outside(m.member.name),
            _status(m),
            Text("never" if m.age_s is None else f"{format_age(m.age_s)} ago"),
            Text(volts(m.voltage_v)) if usable else Text("?", style="bold"),
            deviation_text(m),
            Text(DASH if m.soc_pct is None else f"{m.soc_pct:.0f} %"),
            flag_text(m.allowed_to_charge, reports or not usable),
            flag_text(m.allowed_to_discharge, reports or not usable),
            codes_of(m) if usable else Text("?", style="bold"),
            Text(celsius(m.temperature_c)),
        )
    return table


def _member_lines(state: BankState, records: dict[str, Record | None]) -> Text:
    """The members table's values, a block per member (narrow terminals, phone-like)."""
    text = Text()
    for i, m in enumerate(state.members):
        record = records.get(m.member.name) if m.status.usable else None
        reports = isinstance(record, SmartLithiumRecord | LynxSmartBmsRecord)
        usable = m.status.usable
        text.append("\n" if i else "")
        text.append_text(outside(m.member.name, style="bold"))
        text.append("  ")
        text.append_text(_status(m))
        text.append(" · " + ("never heard" if m.age_s is None else f"{format_age(m.age_s)} ago"))
        text.append("\n  ")
        text.append(volts(m.voltage_v) if usable else "?")
        text.append(" (")
        text.append_text(deviation_text(m))
        text.append(")")
        if m.soc_pct is not None:
            text.append(f" · SOC {m.soc_pct:.0f} %")
        text.append(" · charge ")
        text.append_text(flag_text(m.allowed_to_charge, reports or not usable))
        text.append(" · discharge ")
        text.append_text(flag_text(m.allowed_to_discharge, reports or not usable))
        text.append(" · codes ")
        text.append_text(codes_of(m) if usable else Text("?", style="bold"))
        if m.temperature_c is not None:
            text.append(f" · {celsius(m.temperature_c)}")
    return text


def _status(m: MemberState) -> Text:
    style = "green" if m.status is MemberStatus.OK else "bold magenta"
    return Text(m.status.value, style=style)


def _cell_value(v: float | CellBound | None) -> tuple[float | None, str]:
    if v is None:
        return None, DASH
    if isinstance(v, CellBound):
        return v.bound_v, f"{v} V"
    return v, f"{v:.2f} V"


def _cells(state: BankState, records: dict[str, Record | None]) -> RenderableType:
    """A column per battery (and per member not read: it may be one), a row per cell."""
    columns: list[tuple[MemberState, SmartLithiumRecord | None]] = []
    for m in state.members:
        record = records.get(m.member.name)
        if m.status.usable and isinstance(record, SmartLithiumRecord):
            columns.append((m, record))
        elif not m.status.usable and (record is None or isinstance(record, SmartLithiumRecord)):
            columns.append((m, None))  # not known now: its cells are unknown, not shown old
    if not columns:
        return Text("No battery in this bank reports cells.", style="dim")
    rows = max((r.cell_count for _, r in columns if r is not None), default=4)
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    table.add_column("", no_wrap=True, min_width=6)
    for m, record in columns:
        header = outside(m.member.name, style="bold")
        if record is None:
            header.append(f"\n{m.status.value}", style="bold magenta")
        table.add_column(header)
    low, high = state.cell_min, state.cell_max
    for n in range(1, rows + 1):
        row: list[Text] = [Text(f"Cell {n}")]
        for m, record in columns:
            if record is None:
                row.append(Text("?", style="bold"))
                continue
            volts_, shown = _cell_value(
                record.cell_voltages_v[n - 1] if n <= len(record.cell_voltages_v) else None
            )
            mark, style = "", ""
            if (
                volts_ is not None
                and low is not None
                and (low.member, low.cell)
                == (
                    m.member.name,
                    n,
                )
            ):
                mark, style = " " + LOW_MARK, LOW_STYLE
            elif (
                volts_ is not None
                and high is not None
                and (high.member, high.cell)
                == (
                    m.member.name,
                    n,
                )
            ):
                mark, style = " " + HIGH_MARK, HIGH_STYLE
            row.append(Text(shown + mark, style=style))
        table.add_row(*row)
    spread_row: list[Text] = [Text("spread", style="dim")]
    for _, record in columns:
        mv = None if record is None else record.cell_spread_mv
        spread_row.append(Text("?" if record is None else f"{DASH if mv is None else mv} mV"))
    table.add_row(*spread_row)
    legend = Text()
    legend.append(f"{LOW_MARK} lowest cell of the bank", style=LOW_STYLE)
    legend.append("  ")
    legend.append(f"{HIGH_MARK} highest", style=HIGH_STYLE)
    mv = state.cell_spread_mv
    legend.append(f"   bank spread {DASH if mv is None else mv} mV")
    grid = Table.grid()
    grid.add_row(table)
    grid.add_row(legend)
    return grid


def _allowed(state: BankState, records: dict[str, Record | None]) -> Text:
    text = Text()
    for label, allowed, blocking, why in (
        ("Allowed to charge", state.allowed_to_charge, state.blocking_charge, why_not_charging),
        (
            "Allowed to discharge",
            state.allowed_to_discharge,
            state.blocking_discharge,
            why_not_discharging,
        ),
    ):
        text.append("\n" if text else "")
        text.append(f"{label}: ", style="bold")
        if allowed is None:
            text.append("unknown", style="bold")
            text.append(" — a member that could block is not known now", style="dim")
        elif allowed:
            text.append("yes — every member allows", style="green")
        else:
            text.append("no — blocked by ", style="bold red")
            text.append_text(outside(", ".join(blocking or ()), style="bold red"))
            text.append(
                " — the batteries' BMS cables are daisy-chained: one battery's signal acts for "
                "the whole bank (Lithium Battery Smart manual §3.1)"
            )
            for name in blocking or ():
                record = records.get(name)
                if isinstance(record, SmartLithiumRecord):
                    for reason in why(record):
                        text.append("\n  ")
                        text.append_text(outside(name))
                        text.append(f" — likely: {reason}")
                        text.append(f" ({SOURCE})", style="dim italic")
    return text


def _imbalance(state: BankState) -> Text:
    text = Text()
    if state.imbalance is None and one_battery(state):
        text.append("Not applicable: this bank has one battery.\n")
    elif state.imbalance is None:
        text.append("Unknown", style="bold")
        text.append(": fewer than two batteries are known now.\n")
    elif not state.imbalance:
        text.append("None", style="green")
        if state.members_heard < state.members_expected:
            text.append(" among the batteries heard now (not every member is known).\n")
        else:
            text.append(": every battery is within the threshold of the bank.\n")
    else:
        text.append("Imbalance: ", style="bold yellow")
        for i, name in enumerate(state.imbalance):
            text.append(", " if i else "")
            text.append_text(outside(name, style="bold yellow"))
        text.append(" differ from the rest of the bank.\n", style="bold yellow")
        text.append(IMBALANCE_REMEDY + "\n")
    text.append(thresholds(), style="dim italic")
    return text


def _codes(state: BankState) -> Text:
    text = Text()
    if not state.codes:
        if state.codes_complete:
            text.append("None active on any member.", style="green")
        else:
            text.append("Unknown", style="bold")
            text.append(": a member's codes are not known now (see Members).")
        return text
    for i, mc in enumerate(state.codes):
        code = mc.code
        text.append("\n" if i else "")
        text.append(f"{code.id} {code.title}", style=severity_style(code.severity))
        text.append(" — ")
        text.append_text(outside(mc.member, style="bold"))
        if code.remedy:
            text.append(f"\n  What to do: {code.remedy}")
    if not state.codes_complete:
        text.append("\nOther members' codes are not known now.", style="bold")
    return text


def _soc(state: BankState) -> Text:
    text = Text("SOC, current ").append_text(soc_text(state))
    text.append(f"\n{consumption_text(state)}\n")
    text.append("Temperature ")
    text.append_text(temperature_text(state))
    text.append("\nVoltage ")
    text.append_text(voltage_text(state))
    return text
