"""The installed package list (pyproject.toml) names every package folder, under its own name."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    on_disk = set()
    for init in ROOT.glob("victron_ble_bms/**/__init__.py"):
        on_disk.add(".".join(init.parent.relative_to(ROOT).parts))
    for dotted, folder in mapping.items():
        for init in (ROOT / folder).glob("**/__init__.py"):
            on_disk.add(".".join([dotted, *init.parent.relative_to(ROOT / folder).parts]))
    assert on_disk == listed


def test_dashboard_installs_under_the_project_name() -> None:
    # `tui` is a generic name another distribution may also install (issue 10 item 8).
    import importlib.util

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p.split(".")[0] == "victron_ble_bms" for p in config["packages"])
    spec = importlib.util.find_spec("victron_ble_bms.tui.app")
    assert spec is not None and spec.origin == str(ROOT / "tui" / "app.py")


def test_the_package_is_python_only() -> None:
    """One implementation of each rule (issue 23): no hand-written C beside the Python (it was
    a second copy of the device table and of AES), and no build step that would compile one."""
    folders = ("victron_ble_bms", "tui", "tests", "benchmarks", "scripts")
    sources = [p for d in folders for p in (ROOT / d).rglob("*") if p.suffix in (".c", ".h")]
    assert [p.relative_to(ROOT).as_posix() for p in sources] == []
    assert not (ROOT / "setup.py").exists()
