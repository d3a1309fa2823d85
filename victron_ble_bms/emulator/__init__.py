"""Reference emulator: device models that behave like their manuals, advertising byte-exact frames.

Library API (the dashboard, scanner tests and `victron-bms emulate` use it)::

    from victron_ble_bms.emulator import DeviceSpec, Emulator, demo_fleet, load_scenario

    emu = Emulator([DeviceSpec("lithium-12.8v-100ah")], load_scenario("deep-discharge"), seed=1)
    emu.keys                          # {address: key} — made-up test keys, to decode the frames
    # readings carry seeded ADC noise, jittered timing and repeated adverts (same nonce);
    # Emulator(..., exact=True) gives the model's values, 1.000 s apart, one frame each
    for adv in emu.run(600):          # synchronous, max speed; adv.ts is simulated time
        record = decode(adv.victron_data, emu.keys[adv.address])

    emu = Emulator(demo_fleet(), seed=1, speed=1.0)
    async for adv in emu.stream():    # paced: `speed` simulated seconds per wall second
        ...
    await emu.play(advertiser, duration_s=600)    # publish to any `Advertiser`

Pieces: `lfp` (cell curve), `lithium` (Lithium Battery Smart + BTV, record 0x05), `bank`,
`smart_bms` (CL 12/100, 12/200, record 0x0E provisional), `lynx` (Lynx Smart BMS, 0x0A),
`scenario` (TOML timelines; bundled files in `scenarios/`), `devices` (type catalogue,
`TYPE[:ADDRESS[:KEY]]`), `engine` (the clock), `capture` (capture/none advertisers).
Frames are built only with `victron_ble_bms.protocol.encode`, from the models' state.
"""

from .capture import CaptureAdvertiser, NullAdvertiser
from .devices import DeviceSpec, DeviceSpecError, device_types, parse_device_spec
from .engine import DEMO_KEYS_FILE, Emulator, demo_fleet
from .scenario import Scenario, ScenarioError, bundled_names, load_scenario

__all__ = [
    "DEMO_KEYS_FILE",
    "CaptureAdvertiser",
    "DeviceSpec",
    "DeviceSpecError",
    "Emulator",
    "NullAdvertiser",
    "Scenario",
    "ScenarioError",
    "bundled_names",
    "demo_fleet",
    "device_types",
    "load_scenario",
    "parse_device_spec",
]
