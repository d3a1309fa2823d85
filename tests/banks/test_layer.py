"""banks/ is a pure layer between the sources and the presentation (issue 20 brief): it
imports the protocol, the readings and safetext, and no I/O (no asyncio, sockets, files)."""

from __future__ import annotations

import ast
from pathlib import Path

import victron_ble_bms.banks as banks

ALLOWED = (
    "victron_ble_bms.protocol",
    "victron_ble_bms.sources.readings",
    "victron_ble_bms.sources.advertisement",
    "victron_ble_bms.safetext",
    "__future__",
    "collections",
    "dataclasses",
    "enum",
    "json",
    "statistics",
    "typing",
)


def test_banks_imports_only_pure_modules() -> None:
    folder = Path(banks.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert name.startswith(ALLOWED), f"{path.name} imports {name}"
