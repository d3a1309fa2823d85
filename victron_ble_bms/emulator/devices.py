"""The device types the emulator knows, and `TYPE[:ADDRESS[:KEY]]` device specs."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from victron_ble_bms.protocol import InvalidKey, normalize_key
from victron_ble_bms.protocol.products import PRODUCT_NAMES
from victron_ble_bms.sources.advertisement import AddressError, normalize_address

from .bank import Bank
from .base import ChargerRuntime, Identity, System
from .lithium import LITHIUM_TYPES, LithiumBattery, LithiumSettings, StandaloneBattery
from .lynx import LynxSmartBms
from .scenario import Connection, Scenario, ScenarioError, check_settings
from .smart_bms import SmartBms, SmartBmsSettings

LITHIUM_TYPES_FALLBACK = "lithium-12.8v-100ah"  # only a placeholder in derived bank specs


class DeviceSpecError(ValueError):
    """A `--device` value that cannot be used."""


@dataclass(frozen=True, slots=True)
class BmsType:
    name: str
    model_id: int
    family: str  # "smart-bms" | "lynx"
    system_plus: bool = False
    # Lynx continuous current rating (Lynx Smart BMS manual §5.2.1; the NG comes as 500 A or
    # 1000 A — inferred: the 500 A one for the type without a number)
    rating_a: float = 0.0

    @property
    def product(self) -> str:
        return PRODUCT_NAMES.get(self.model_id, "Lynx Smart BMS NG")


BMS_TYPES: dict[str, BmsType] = {
    t.name: t
    for t in (
        BmsType("smart-bms-cl-12-100", 0xA3E0, "smart-bms"),
        BmsType("smart-bms-12-200", 0xA3E8, "smart-bms", system_plus=True),
        BmsType("lynx-smart-bms-500", 0xA3E5, "lynx", rating_a=500.0),
        BmsType("lynx-smart-bms-1000", 0xA3E6, "lynx", rating_a=1000.0),
        BmsType("lynx-smart-bms-ng", 0xA3E7, "lynx", rating_a=500.0),
    )
}


def device_types() -> dict[str, str]:
    """Type name → product name, for `--list`."""
    out = {name: t.product for name, t in LITHIUM_TYPES.items()}
    out.update({name: t.product for name, t in BMS_TYPES.items()})
    return out


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device to emulate; address and key are made up from the seed when not given.
    `scenario` overrides the emulator's scenario for this device."""

    type: str
    address: str | None = None
    key: bytes | None = None
    scenario: Scenario | None = None

    def __post_init__(self) -> None:
        if self.type not in LITHIUM_TYPES and self.type not in BMS_TYPES:
            raise DeviceSpecError(
                f"unknown device type {self.type!r} (see `victron-bms emulate --list`)"
            )


def parse_device_spec(text: str) -> DeviceSpec:
    """`TYPE`, `TYPE:ADDRESS` or `TYPE:ADDRESS:KEY` (address with or without colons)."""
    type_name, _, rest = text.partition(":")
    address = key = None
    if rest:
        parts = rest.split(":")
        if len(parts[0]) == 12:
            addr_text, key_parts = parts[0], parts[1:]
        elif len(parts) >= 6:
            addr_text, key_parts = ":".join(parts[:6]), parts[6:]
        else:
            raise DeviceSpecError(f"{text!r}: expected TYPE[:ADDRESS[:KEY]]")
        try:
            address = normalize_address(addr_text)
        except AddressError as exc:
            raise DeviceSpecError(f"{text!r}: {exc}") from None
        if key_parts:
            try:
                key = normalize_key(":".join(key_parts))
            except InvalidKey as exc:
                raise DeviceSpecError(f"{text!r}: {exc}") from None
    return DeviceSpec(type_name, address, key)


_SETTING_CHECKS: dict[str, Any] = {
    **{k: (lambda v, k=k: LithiumSettings.from_mapping({k: v})) for k in LithiumSettings.RANGES},
    "fuse": lambda v: SmartBmsSettings.from_mapping({"fuse": v}),
    "charge_limit_v": lambda v: SmartBmsSettings.from_mapping({"charge_limit_v": v}),
    "pre_alarm_usage": lambda v: SmartBmsSettings.from_mapping({"pre_alarm_usage": v}),
}


def validate_scenario(scenario: Scenario) -> None:
    """Checks that need the device catalogue: settings ranges, bank battery, device types."""
    check_settings(scenario.source or scenario.name, scenario.settings, _SETTING_CHECKS)
    where = scenario.source or scenario.name
    if scenario.bank.battery not in LITHIUM_TYPES:
        raise ScenarioError(
            f"{where}: bank.battery: {scenario.bank.battery!r} is not a Lithium Battery Smart type"
        )
    for i, d in enumerate(scenario.devices):
        if d.type not in LITHIUM_TYPES and d.type not in BMS_TYPES:
            raise ScenarioError(f"{where}: devices[{i}].type: unknown device type {d.type!r}")


def _random_address(rng: random.Random) -> str:
    raw = bytearray(rng.randbytes(6))
    raw[0] |= 0xC0  # a "static random" address: top two bits set (BLE Core spec Vol 6 B 1.3.2)
    return ":".join(f"{b:02X}" for b in raw)


def _short_name(type_name: str) -> str:
    return type_name.replace("lithium-", "Li ").replace("smart-bms-", "SmartBMS ").upper()


class Builder:
    """Makes the systems of an emulator run, drawing identities from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def identity(self, type_name: str, model_id: int, spec: DeviceSpec | None) -> Identity:
        rng = self.rng
        address = spec.address if spec and spec.address else _random_address(rng)
        while address in self.used:
            address = _random_address(rng)
        self.used.add(address)
        key = spec.key if spec and spec.key else rng.randbytes(16)
        return self._identity(type_name, model_id, address, key)

    def _identity(self, type_name: str, model_id: int, address: str, key: bytes) -> Identity:
        rng = self.rng
        return Identity(
            address=address,
            key=key,
            model_id=model_id,
            name=f"{_short_name(type_name)} {address[-5:].replace(':', '')}",
            type_name=type_name,
            rssi=rng.randint(-85, -50),
        )

    def bank_member(self, bms: Identity, index: int) -> DeviceSpec:
        """The address and key of battery `index` behind a BMS whose address and key were
        given: derived from them, so a BMS given on the command line (or the demo fleet)
        brings the same batteries whatever the seed — and their keys can be published."""
        seed = hashlib.sha256(f"bank:{bms.address}:{index}".encode() + bms.key).digest()
        raw = bytearray(seed[:6])
        raw[0] |= 0xC0  # static random address (BLE Core spec Vol 6 B 1.3.2)
        address = ":".join(f"{b:02X}" for b in raw)
        return DeviceSpec(LITHIUM_TYPES_FALLBACK, address, seed[16:32])

    def battery(
        self, type_name: str, scenario: Scenario, spec: DeviceSpec | None, member: int = 0
    ) -> LithiumBattery:
        kind = LITHIUM_TYPES[type_name]
        try:
            settings = LithiumSettings.from_mapping(scenario.settings)
        except ValueError as exc:
            raise ScenarioError(f"{scenario.source or scenario.name}: settings: {exc}") from exc
        ident = self.identity(type_name, kind.model_id, spec)
        return LithiumBattery(
            ident,
            self.rng.randrange(0x10000),
            kind,
            settings,
            scenario.initial,
            scenario.ambient_at(0.0),
            random.Random(self.rng.random()),  # noqa: S311 - a deterministic simulation, not crypto
            member,
        )

    def system(self, spec: DeviceSpec, scenario: Scenario) -> System:
        chargers = [ChargerRuntime(c) for c in scenario.chargers]
        if spec.type in LITHIUM_TYPES:
            return StandaloneBattery(self.battery(spec.type, scenario, spec), chargers)
        bms = BMS_TYPES[spec.type]
        b = scenario.bank
        where = scenario.source or scenario.name
        kind = LITHIUM_TYPES[b.battery]
        if bms.family == "smart-bms" and (b.series != 1 or kind.cells != 4):
            raise ScenarioError(
                f"{where}: bank: a Smart BMS is for 12 V systems only (bms-overview): "
                "one 12.8 V battery per string (series = 1)"
            )
        if b.series * kind.cells > 16:
            raise ScenarioError(
                f"{where}: bank.series: at most four 12.8 V or two 25.6 V batteries in series "
                "(Lithium Battery Smart manual §4.3)"
            )
        if bms.family == "lynx" and any(
            c.connection is Connection.BATTERY for c in scenario.chargers
        ):
            raise ScenarioError(
                f"{where}: chargers: a Lynx Smart BMS has its chargers on the system side "
                '(Lynx Smart BMS NG manual: "all loads and chargers are connected to the right '
                'side"); connection = "battery" is for a Smart BMS'
            )
        ident = self.identity(spec.type, bms.model_id, spec)
        nonce = self.rng.randrange(0x10000)
        fixed = bool(spec.address and spec.key)
        strings = [
            [
                self.battery(
                    b.battery,
                    scenario,
                    self.bank_member(ident, i * b.series + j) if fixed else None,
                    i * b.series + j,
                )
                for j in range(b.series)
            ]
            for i in range(b.parallel)
        ]
        bank = Bank(strings)
        if bms.family == "smart-bms":
            try:
                settings = SmartBmsSettings.from_mapping(
                    scenario.settings, default_fuse="200A" if bms.system_plus else "100A"
                )
            except ValueError as exc:
                raise ScenarioError(f"{where}: settings: {exc}") from exc
            return SmartBms(ident, nonce, bank, settings, chargers, system_plus=bms.system_plus)
        return LynxSmartBms(ident, nonce, bank, chargers, bms.rating_a)
