"""Run a scenario at max speed and decode every frame with our decoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from victron_ble_bms.emulator import DeviceSpec, Emulator, load_scenario
from victron_ble_bms.emulator.scenario import Scenario, parse_scenario
from victron_ble_bms.protocol import decode
from victron_ble_bms.protocol.enums import CellBound
from victron_ble_bms.sources.advertisement import Advertisement


@dataclass
class Frame:
    t: float  # simulated seconds since start
    adv: Advertisement
    record: Any


def run(
    device: str,
    scenario: str | Scenario,
    duration: float | None = None,
    seed: int = 1,
    *,
    exact: bool = True,
) -> tuple[Emulator, list[Frame]]:
    """Exact by default: thresholds are checked against the model's values, one frame per
    reading (the noise and repeats have their own tests)."""
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    emu = Emulator([DeviceSpec(device)], sc, seed=seed, speed=None, exact=exact)
    keys = emu.keys
    frames = [
        Frame(adv.ts - emu.start_ts, adv, decode(adv.victron_data, keys[adv.address]))
        for adv in emu.run(duration if duration is not None else sc.duration_s)
    ]
    return emu, frames


def inline(toml: str) -> Scenario:
    return parse_scenario(toml, "test.toml")


def volts(v: float | CellBound) -> float:
    return v.bound_v if isinstance(v, CellBound) else v


def codes(frame: Frame) -> set[str]:
    return {c.id for c in frame.record.codes}


def first(frames: list[Frame], code: str) -> int:
    return next(i for i, f in enumerate(frames) if code in codes(f))
