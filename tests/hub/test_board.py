"""The board serve keeps for its viewers: last good values kept through suspect readings, the
keys file's name over a name from the air, keyed devices never pushed out by a flood."""

from __future__ import annotations

from dataclasses import replace

from victron_ble_bms.emulator import DeviceSpec, load_scenario
from victron_ble_bms.emulator.engine import Emulator
from victron_ble_bms.hub import Board
from victron_ble_bms.sources.readings import KeyStatus, decode_advertisement


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _readings(seconds: int = 3) -> tuple[dict[str, bytes], list]:  # type: ignore[type-arg]
    emu = Emulator(
        [DeviceSpec("lithium-12.8v-100ah")], load_scenario("deep-discharge"), seed=3, speed=None
    )
    advs = list(emu.run(seconds))
    return emu.keys, [decode_advertisement(a, emu.keys) for a in advs]


def test_a_suspect_reading_keeps_the_last_good_values() -> None:
    keys, readings = _readings()
    board = Board(keys, clock=Clock())
    good = readings[0]
    assert good.status is KeyStatus.OK and good.record is not None
    entry = board.reading(good)
    forged = replace(readings[1], suspect="replayed nonce")
    board.reading(forged)
    assert entry.latest is forged
    assert entry.shown is good  # the forged frame's values are never the ones shown
    board.reading(readings[2])
    assert entry.shown is readings[2]


def test_the_keys_file_name_wins_over_the_air() -> None:
    keys, readings = _readings(1)
    address = readings[0].advertisement.address
    renamed = replace(
        readings[0],
        advertisement=replace(readings[0].advertisement, name="<b>Neighbour</b>\x1b[2J"),
    )
    board = Board(keys, names=lambda a: "House bank" if a == address else None)
    entry = board.reading(renamed)
    assert board.name(entry) == "House bank"
    anonymous = Board(keys)
    shown = anonymous.name(anonymous.reading(renamed))
    assert shown is not None and "\x1b" not in shown and shown.startswith("<b>Neighbour")


def test_a_flood_never_pushes_a_keyed_device_out_and_ages_show() -> None:
    keys, readings = _readings(1)
    clock = Clock()
    board = Board(keys, clock=clock, max_unkeyed=10, stale_after_s=60)
    keyed = board.reading(readings[0])
    base = readings[0].advertisement
    for i in range(1000):
        address = f"AA:BB:CC:00:{i // 256:02X}:{i % 256:02X}"
        board.reading(decode_advertisement(replace(base, address=address), keys))
    assert len(board) == 11
    assert next(iter(board)) is keyed  # keyed devices first
    assert not board.stale(keyed)
    clock.now += 61
    assert board.stale(keyed) and board.age_s(keyed) == 61


def test_a_bank_is_judged_on_the_board_and_a_silent_member_degrades_it() -> None:
    from victron_ble_bms.banks import Verdict, parse_banks
    from victron_ble_bms.cli.emulate import emulated_banks

    emu = Emulator(
        [DeviceSpec("lynx-smart-bms-500"), *[DeviceSpec("lithium-12.8v-100ah")] * 3],
        load_scenario("parallel-bank"),
        seed=4,
        speed=None,
    )
    banks, problems = parse_banks(emulated_banks(emu, "house"), {a: None for a in emu.keys})
    assert not problems and list(banks) == ["house"]
    clock = Clock()
    board = Board(emu.keys, clock=clock, stale_after_s=60, banks=banks)
    for adv in emu.run(30):
        board.reading(decode_advertisement(adv, emu.keys))
    (state,) = board.bank_states()
    assert state.members_heard == state.members_expected == 4
    assert state.verdict is not Verdict.UNKNOWN and state.cell_min is not None
    clock.now += 61  # nobody speaks: every member goes stale on the readings' clock
    board.tick()
    (state,) = board.bank_states()
    assert state.verdict in (Verdict.DEGRADED, Verdict.UNKNOWN) and "stale" in state.reason
