"""Fixed devices for the dashboard tests: records encoded into real frames with the protocol
encoder and wrapped in advertisements, as a radio would deliver them.

Values are chosen from the manuals: LFP cells at 3.2–3.5 V, a pre-alarm below 3.10 V (W-SL12,
Lithium Battery Smart manual §5.3), balancing in absorption at about 3.50 V (§5.2.2).
"""

from __future__ import annotations

from victron_ble_bms.protocol import (
    LynxSmartBmsRecord,
    SmartBmsRecord,
    SmartLithiumRecord,
    encode,
)
from victron_ble_bms.protocol.enums import (
    AlarmReason,
    BalancerStatus,
    BmsError,
    BmsFlags,
    SmartLithiumErrorFlags,
)
from victron_ble_bms.protocol.provisional import SMART_BMS_IDLE_UNIDENTIFIED
from victron_ble_bms.sources.advertisement import Advertisement

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: a fixed clock for deterministic screens

HOUSE = "C0:00:00:00:00:01"  # 12.8 V, 4 cells, balancing
BOW = "C0:00:00:00:00:02"  # 25.6 V, 8 cells, pre-alarm (W-SL12)
LYNX = "C0:00:00:00:00:03"
SMART_BMS = "C0:00:00:00:00:04"
NOKEY = "C0:00:00:00:00:05"  # a 12.8 V battery whose key we do not have

KEYS: dict[str, str] = {
    HOUSE: "11112222333344445555666677778888",
    BOW: "22223333444455556666777788889999",
    LYNX: "33334444555566667777888899990000",
    SMART_BMS: "4444555566667777888899990000aaaa",
}
NOKEY_KEY = "5555666677778888999900001111bbbb"

OK_FLAGS = BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE
NO_ERRORS = SmartLithiumErrorFlags(0)


def lithium(
    cells: tuple[float, ...],
    *,
    balancer: BalancerStatus = BalancerStatus.BALANCED,
    flags: BmsFlags = OK_FLAGS,
    temperature_c: int = 21,
) -> SmartLithiumRecord:
    padded = tuple(cells) + (None,) * (8 - len(cells))
    return SmartLithiumRecord(
        bms_flags=flags,
        error_flags=NO_ERRORS,
        cell_voltages_v=padded,
        battery_voltage_v=round(sum(cells), 2),
        balancer_status=balancer,
        battery_temperature_c=temperature_c,
    )


def house(step: int = 0) -> SmartLithiumRecord:
    # Absorption: first cell ≥ 3.3 V starts balancing (manual §5.2.2).
    return lithium((3.48, 3.52, 3.50, 3.49 + 0.01 * (step % 2)), balancer=BalancerStatus.BALANCING)


def bow(step: int = 0) -> SmartLithiumRecord:
    # Cell 6 below the 3.10 V pre-alarm default → W-SL12 and the pre-alarm flag (manual §5.3).
    flags = OK_FLAGS | BmsFlags.WARNING_UNDER_VOLTAGE | BmsFlags.PRE_ALARM
    cells = (3.21, 3.22, 3.20, 3.21, 3.22, 3.05, 3.21, 3.20)
    return lithium(cells, balancer=BalancerStatus.IMBALANCE, flags=flags, temperature_c=18)


def lynx() -> LynxSmartBmsRecord:
    # io_status: contactor closed, allowed to charge, allowed to discharge = yes (1), others n/a.
    io = 0b01 | 0b01 << 2 | 0b01 << 4
    # warnings/alarms: every supported item ok (1), low SOC (field 6) a warning (2).
    alarms = sum(1 << (2 * i) for i in range(9) if i != 7) & ~(3 << 12) | (2 << 12)
    return LynxSmartBmsRecord(
        bms_error=BmsError.NONE,
        ttg_min=754,
        battery_voltage_v=26.4,
        battery_current_a=-12.3,
        io_status=io,
        warnings_alarms=alarms,
        soc_pct=18.5,
        consumed_ah=-163.0,
        temperature_c=24,
    )


def smart_bms() -> SmartBmsRecord:
    # docs/protocol.md §8.2's public sample values: a 12/200 with the engine off.
    return SmartBmsRecord(
        bms_error=BmsError.NONE,
        alarm_reason=AlarmReason(0),
        battery_voltage_v=12.56,
        system_voltage_v=12.55,
        alternator_voltage_v=12.15,
        alternator_current_pct=0,
        unidentified=SMART_BMS_IDLE_UNIDENTIFIED,
    )


MODELS = {HOUSE: 0xA0E5, BOW: 0xA0EF, LYNX: 0xA3E6, SMART_BMS: 0xA3E8, NOKEY: 0xA0E8}
NAMES = {HOUSE: "House", BOW: "Bow thruster", LYNX: "Lynx", SMART_BMS: "Engine BMS"}


def advert(
    address: str, record: object, *, ts: float = T0, nonce: int = 1, rssi: int = -60
) -> Advertisement:
    key = KEYS.get(address, NOKEY_KEY)
    data = encode(record, key=key, nonce=nonce, model_id=MODELS[address])  # type: ignore[arg-type]
    return Advertisement(
        ts=ts,
        address=address,
        manufacturer_data={0x02E1: data},
        rssi=rssi,
        name=NAMES.get(address),
        origin="test",
    )


def fleet(ts: float = T0, step: int = 0) -> list[Advertisement]:
    """One advertisement from each of the five devices."""
    nonce = step + 1
    return [
        advert(HOUSE, house(step), ts=ts, nonce=nonce, rssi=-55),
        advert(BOW, bow(step), ts=ts, nonce=nonce, rssi=-71),
        advert(LYNX, lynx(), ts=ts, nonce=nonce, rssi=-64),
        advert(SMART_BMS, smart_bms(), ts=ts, nonce=nonce, rssi=-80),
        advert(NOKEY, house(step), ts=ts, nonce=nonce, rssi=-90),
    ]
