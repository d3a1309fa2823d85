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


def test_every_header_the_helpers_include_goes_into_the_sdist() -> None:
    """setup.py's `depends` does not put headers into an sdist; MANIFEST.in must, or an sdist
    install would silently build no helper."""
    import fnmatch
    import re

    patterns = [
        line.split()[1]
        for line in (ROOT / "MANIFEST.in").read_text().splitlines()
        if line.startswith("include ")
    ]
    sources = [*ROOT.glob("victron_ble_bms/**/*.c"), *ROOT.glob("victron_ble_bms/**/*.h")]
    included = set()
    for source in sources:
        for name in re.findall(r'#include "([^"]+)"', source.read_text()):
            included.add((source.parent / name).resolve().relative_to(ROOT).as_posix())
    assert included >= {"victron_ble_bms/protocol/_spec.h", "victron_ble_bms/protocol/_payload.h"}
    missing = [h for h in included if not any(fnmatch.fnmatch(h, p) for p in patterns)]
    assert missing == []
