"""A bank's declaration: `[banks.NAME]` in the keys file, parsed and checked without raising.

    [banks.house]
    layout = "parallel"            # parallel (default) | series | series-parallel
    members = ["House 1", "House 2", "AA:BB:CC:DD:EE:FF", "Lynx BMS"]
    soc_source = "Lynx BMS"        # optional: the member giving SOC, current, consumed Ah, TTG
    strings = [["A", "B"], ["C", "D"]]   # series-parallel only: each series string, in order

A member is a device address or the `name` a device has in the keys file. Which member is a
battery is read from what it sends (a Lithium Battery Smart record reports cells); the BMS,
SmartShunt or BMV of the bank are members too. Every problem is one line, kept in the bank's
`problems` (the bank then shows as degraded) — nothing here raises or stops a program.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import AddressError, normalize_address

_KEYS = ("layout", "members", "soc_source", "strings")


class Layout(enum.Enum):
    PARALLEL = "parallel"
    SERIES = "series"
    SERIES_PARALLEL = "series-parallel"


@dataclass(frozen=True, slots=True)
class Member:
    """One declared member: `ref` as written, the device's address (None when the name matches
    no device in the keys file) and what to call it (its keys-file name, else its address)."""

    ref: str
    address: str | None
    name: str


@dataclass(frozen=True, slots=True)
class BankSpec:
    name: str
    layout: Layout = Layout.PARALLEL
    members: tuple[Member, ...] = ()
    # series-parallel: the declared strings; other layouts derive them from the members
    strings: tuple[tuple[Member, ...], ...] = ()
    soc_source: Member | None = None
    problems: tuple[str, ...] = ()  # one line each; any problem makes the bank degraded

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(m.address for m in self.members if m.address is not None)


def _resolve(ref: str, devices: Mapping[str, str | None]) -> tuple[Member, str | None]:
    """A member reference → Member, and a problem line (None when fine)."""
    shown = plain(ref, 60)
    try:
        address = normalize_address(ref)
    except AddressError:
        address = None
    if address is not None:
        name = devices.get(address)
        member = Member(ref, address, plain(name, 60) if name else address)
        if address not in devices:
            return member, f"member {address} is not in the keys file (no key: it cannot be read)"
        return member, None
    exact = [a for a, n in devices.items() if n is not None and n == ref]
    if not exact:
        exact = [a for a, n in devices.items() if n is not None and n.casefold() == ref.casefold()]
    if len(exact) == 1:
        return Member(ref, exact[0], plain(devices[exact[0]] or exact[0], 60)), None
    if len(exact) > 1:
        listed = ", ".join(sorted(exact))
        return Member(ref, None, shown), f"member '{shown}' names several devices ({listed})"
    return Member(ref, None, shown), f"member '{shown}' names no device in the keys file"


def _string_list(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_bank(name: str, table: object, devices: Mapping[str, str | None]) -> BankSpec:
    """One `[banks.NAME]` table → BankSpec; `devices` maps the keys file's normalised
    addresses to their names. Problems go into `BankSpec.problems`, never raised."""
    problems: list[str] = []
    if not isinstance(table, dict):
        return BankSpec(name, problems=("must be a table: [banks.NAME] with members = [...]",))
    unknown = sorted(k for k in table if k not in _KEYS)
    if unknown:
        problems.append(
            f"unknown setting(s) {', '.join(plain(k, 40) for k in unknown)} "
            f"(known: {', '.join(_KEYS)})"
        )
    layout_text = table.get("layout", Layout.PARALLEL.value)
    try:
        layout = Layout(layout_text)
    except ValueError:
        problems.append(
            f"layout {plain(str(layout_text), 40)!r} is not one of "
            f"{', '.join(x.value for x in Layout)}; taken as parallel"
        )
        layout = Layout.PARALLEL

    refs = _string_list(table.get("members", []))
    if refs is None:
        problems.append('members must be a list of addresses or device names: ["House 1", …]')
        refs = []
    string_refs: list[list[str]] = []
    raw_strings = table.get("strings")
    if raw_strings is not None:
        if layout is not Layout.SERIES_PARALLEL:
            problems.append(
                f"strings is only for layout = 'series-parallel' (this is {layout.value})"
            )
        elif not isinstance(raw_strings, list) or any(_string_list(s) is None for s in raw_strings):
            problems.append('strings must be a list of lists of members: [["A", "B"], ["C", "D"]]')
        else:
            string_refs = [list(s) for s in raw_strings]
    elif layout is Layout.SERIES_PARALLEL:
        problems.append('layout = "series-parallel" needs strings = [["A", "B"], ["C", "D"]]')

    members: list[Member] = []
    by_ref: dict[str, Member] = {}

    def add(ref: str) -> Member:
        if ref in by_ref:
            return by_ref[ref]
        member, problem = _resolve(ref, devices)
        if problem:
            problems.append(problem)
        if member.address is not None and any(m.address == member.address for m in members):
            problems.append(f"member {member.name} is listed twice")
        else:
            members.append(member)
        by_ref[ref] = member
        return member

    for ref in refs:
        add(ref)
    strings = tuple(tuple(add(ref) for ref in s) for s in string_refs)
    if strings and len({m for s in strings for m in s}) != sum(len(s) for s in strings):
        problems.append("a member is in two strings")
    soc_source = None
    soc_ref = table.get("soc_source")
    if soc_ref is not None:
        if isinstance(soc_ref, str):
            soc_source = add(soc_ref)
        else:
            problems.append("soc_source must be one member's address or name")
    if not members:
        problems.append("has no members")
    return BankSpec(name, layout, tuple(members), strings, soc_source, tuple(problems))


def parse_banks(
    tables: object, devices: Mapping[str, str | None]
) -> tuple[dict[str, BankSpec], list[str]]:
    """The keys file's `banks` table → banks by name, and every problem as one line
    ("bank 'house': …"). Across banks: the same device in two banks is a problem of both."""
    if tables is None:
        return {}, []
    if not isinstance(tables, dict):
        return {}, ['"banks" must be a table: [banks.NAME] with members = [...]']
    banks = {str(n): parse_bank(str(n), t, devices) for n, t in tables.items()}
    owners: dict[str, list[str]] = {}
    for bank in banks.values():
        for address in bank.addresses:
            owners.setdefault(address, []).append(bank.name)
    for address, names in owners.items():
        if len(names) > 1:
            for n in names:
                others = ", ".join(repr(plain(o, 40)) for o in names if o != n)
                b = banks[n]
                who = next(m.name for m in b.members if m.address == address)
                banks[n] = _with_problem(b, f"member {who} is also in bank {others}")
    lines = [f"bank '{plain(b.name, 40)}': {p}" for b in banks.values() for p in b.problems]
    return banks, lines


def _with_problem(bank: BankSpec, problem: str) -> BankSpec:
    return BankSpec(
        bank.name,
        bank.layout,
        bank.members,
        bank.strings,
        bank.soc_source,
        (*bank.problems, problem),
    )


def bank_table(spec: BankSpec) -> dict[str, object]:
    """The TOML table of a bank (as `parse_bank` reads it back), for writing the keys file."""
    table: dict[str, object] = {"layout": spec.layout.value}
    table["members"] = [m.ref for m in spec.members]
    if spec.strings:
        table["strings"] = [[m.ref for m in s] for s in spec.strings]
    if spec.soc_source is not None:
        table["soc_source"] = spec.soc_source.ref
    return table


def declared_banks(keys: object) -> Mapping[str, BankSpec]:
    """The banks of the keys `serve` publishes for: a `KeyStore`, or serve's reloading wrapper
    around one (its `store`); none for an emulator's plain dict of keys."""
    store = getattr(keys, "store", keys)
    try:
        banks = getattr(store, "banks", None)
    except Exception:  # noqa: BLE001 - a keys file that cannot say: no banks, never a crash
        return {}
    return banks if isinstance(banks, Mapping) else {}
