"""`dashboard --mqtt` as the command builds it (issue 25): the remote serve going offline stays
on the status line until it is back, and `r` says why it cannot record instead of writing a
recording without frames."""

from __future__ import annotations

import asyncio
from pathlib import Path

from victron_ble_bms.tui.app import DashboardApp

from tests.mqtt.broker import Broker, publish
from tests.tui.harness import screen_text
from victron_ble_bms.cli.dashboard import _mqtt_plan

from .test_dashboard_mqtt import state_payloads, wait_for_devices

SIZE = (120, 40)
BRIDGE = "victron-ble-bms/bridge/pi/availability"  # one serve instance, "pi"


def test_remote_offline_is_shown_and_r_does_not_record(
    mqtt_broker: Broker, tmp_path: Path, monkeypatch
) -> None:
    from victron_ble_bms.tui import state

    monkeypatch.chdir(tmp_path)  # where `r` would write
    # the plan sets the remote stale time for the process: restored after, or every later
    # dashboard test would wait 70 s, not 10 s, for a device to go stale
    monkeypatch.setattr(state, "STALE_AFTER_S", state.STALE_AFTER_S)
    plan = _mqtt_plan(mqtt_broker.url, "victron-ble-bms")

    async def main() -> tuple[str, str, str]:
        app = DashboardApp(plan.source, keys=plan.keys, clock=plan.clock or (lambda: 0.0))
        assert plan.on_app is not None
        plan.on_app(app)

        async def wait_status(text: str, present: bool) -> str:
            for _ in range(200):
                await pilot.pause(0.025)
                shown = "\n".join(screen_text(app).splitlines()[:2])  # header, status
                if (text in shown) == present:
                    return shown
            raise AssertionError(f"status line {'without' if present else 'with'} {text!r}")

        async with app.run_test(size=SIZE) as pilot:
            await asyncio.sleep(0.5)  # subscribed
            publish(mqtt_broker, BRIDGE, "online", retain=True)
            for topic, payload in state_payloads():
                publish(mqtt_broker, topic, payload)
            await wait_for_devices(pilot, app, 5)
            publish(mqtt_broker, BRIDGE, "offline", retain=True)  # serve's last will
            offline = await wait_status("remote serve offline", True)
            await pilot.press("r")
            await pilot.pause(0.1)
            toasts = [n.message for n in app._notifications]
            publish(mqtt_broker, BRIDGE, "online", retain=True)
            online = await wait_status("remote serve offline", False)
            return offline, "\n".join(toasts), online

    offline, toasts, online = asyncio.run(main())
    assert "remote serve offline" in offline and "remote serve" not in online
    assert "cannot record here" in toasts and "record --source ble" in toasts
    assert not list(tmp_path.glob("dashboard-*.jsonl"))  # nothing undecodable written
