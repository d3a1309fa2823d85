"""Broker URLs, the config file and the password's sources (never argv, never printed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from victron_ble_bms.mqtt.config import (
    PASSWORD_ENV,
    Broker,
    ConfigError,
    MqttConfig,
    load_config,
    parse_broker_url,
    resolve,
)


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("mqtt://pi.local", Broker("pi.local", 1883)),
        ("mqtts://pi.local", Broker("pi.local", 8883, tls=True)),
        ("mqtt://victron@10.0.0.2:1884", Broker("10.0.0.2", 1884, username="victron")),
        ("MQTT://[::1]:1883", Broker("::1", 1883)),
    ],
)
def test_urls(url: str, broker: Broker) -> None:
    assert parse_broker_url(url) == broker


@pytest.mark.parametrize(
    "url",
    ["http://x", "mqtt://", "mqtt://x:99999", "mqtt://x/path", "x:1883", "mqtt://x:port"],
)
def test_bad_urls_are_one_clear_error(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_broker_url(url)


def test_a_password_in_the_url_is_refused_and_not_repeated() -> None:
    with pytest.raises(ConfigError) as info:
        parse_broker_url("mqtt://u:topsecret@host")
    assert "topsecret" not in str(info.value) and PASSWORD_ENV in str(info.value)


def test_file_then_argv_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(
        '[mqtt]\nurl = "mqtt://a@h1:1"\npassword = "from-file"\ntopic_prefix = "boat"\n'
        "min_interval_s = 2\nheartbeat_s = 30\nstale_after_s = 90\n"
    )
    path.chmod(0o644)
    cfg, warnings = load_config(path)
    assert cfg.broker == Broker("h1", 1, username="a") and cfg.password == "from-file"  # noqa: S105
    assert (cfg.min_interval_s, cfg.heartbeat_s, cfg.stale_after_s) == (2.0, 30.0, 90.0)
    assert warnings and "chmod 600" in warnings[0] and "from-file" not in warnings[0]
    cfg = resolve(cfg, url="mqtts://h2", topic_prefix="van", env={PASSWORD_ENV: "from-env"})
    assert cfg.broker == Broker("h2", 8883, tls=True) and cfg.topic_prefix == "van"
    assert cfg.password == "from-env"  # noqa: S105


@pytest.mark.parametrize(
    "body",
    [
        "[mqtt]\nnonsense = 1\n",
        "[mqtt]\nheartbeat_s = 'soon'\n",
        "[mqtt]\nmin_interval_s = 10\nheartbeat_s = 5\n",
        "[mqtt]\ntopic_prefix = 'a/#'\n",
        "[mqtt]\ndiscovery_prefix = ''\n",
        "mqtt = 3\n",
        "[mqtt\n",
    ],
)
def test_bad_config_files(tmp_path: Path, body: str) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_default_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config() == (MqttConfig(), [])
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.toml")


def test_deadbands_from_the_config_file(tmp_path: Path) -> None:
    from victron_ble_bms.mqtt.config import ConfigError, load_config

    good = tmp_path / "good.toml"
    good.write_text("[mqtt.deadband]\nbattery_voltage_v = 0.05\nrssi = 0\n")
    cfg, _ = load_config(good)
    bands = dict(cfg.deadband)
    assert bands["battery_voltage_v"] == 0.05 and bands["rssi"] == 0.0
    assert bands["cell_voltages_v"] == 0.02  # the defaults stay for the rest
    for text in ('battery_voltage_v = "x"', "battery_voltage_v = -1", "battery_voltage_v = nan"):
        bad = tmp_path / "bad.toml"
        bad.write_text(f"[mqtt.deadband]\n{text}\n")
        with pytest.raises(ConfigError, match="deadband 'battery_voltage_v'"):
            load_config(bad)


def test_a_config_file_holding_a_secret_must_be_private(tmp_path: Path) -> None:
    """The MQTT password and the Signal K token warn alike when others can read the file (one
    reader of serve's config file, mqtt.config.config_table, for both tables)."""
    import os

    from victron_ble_bms.signalk.config import load_signalk_config

    path = tmp_path / "serve.toml"
    path.write_text('[mqtt]\npassword = "Zq9-pass"\n[signalk]\ntoken = "Zq9-token"\n')
    os.chmod(path, 0o640)
    (mqtt_warning,) = load_config(path)[1]
    (signalk_warning,) = load_signalk_config(path)[1]
    assert "MQTT password" in mqtt_warning and "Signal K token" in signalk_warning
    for warning in (mqtt_warning, signalk_warning):
        assert "chmod 600" in warning and "Zq9" not in warning
    os.chmod(path, 0o600)
    assert load_config(path)[1] == [] and load_signalk_config(path)[1] == []
