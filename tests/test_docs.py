"""What the code, tests and README cite is in the repository (issue 25 item 5): every
`docs/NAME.md §n` names a file under docs/ with that section, no file names a path of a
development machine, and the licence pyproject declares is there."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = ("victron_ble_bms", "tui", "tests", "benchmarks", "scripts", "captures", "contrib", "docs")
SUFFIXES = {".py", ".c", ".h", ".toml", ".md", ".sh", ".service", ".tcss", ".pyi"}
CITATION = re.compile(r"docs/([a-z_-]+)\.md((?:[\s,/]*§\d+(?:\.\d+)*)*)")
SECTION = re.compile(r"§(\d+(?:\.\d+)*)")


def _texts() -> list[tuple[Path, str]]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for top in CITED:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return [(p, p.read_text(encoding="utf-8", errors="replace")) for p in files]


def _sections(doc: Path) -> set[str]:
    heads = re.findall(r"^#{2,4} (\d+(?:\.\d+)*)[. ]", doc.read_text(encoding="utf-8"), re.M)
    return set(heads)


def test_every_cited_doc_and_section_exists() -> None:
    missing = []
    for path, text in _texts():
        # a citation may wrap: "docs/ecosystem.md\n§3.1"
        for m in CITATION.finditer(text.replace(".md\n", ".md ").replace("# §", "§")):
            doc = ROOT / "docs" / f"{m.group(1)}.md"
            if not doc.exists():
                missing.append(f"{path.relative_to(ROOT)}: docs/{m.group(1)}.md")
                continue
            for sec in SECTION.findall(m.group(2)):
                if sec not in _sections(doc):
                    missing.append(f"{path.relative_to(ROOT)}: docs/{m.group(1)}.md §{sec}")
    assert not missing, "\n".join(sorted(set(missing)))


def test_no_citation_of_notes_outside_the_repository() -> None:
    bad = []
    for path, text in _texts():
        if path.name == "test_docs.py":
            continue
        for line_no, line in enumerate(text.splitlines(), 1):
            outside = "/work/" in line or "ecosystem-notes" in line
            bare = re.search(r"(?<![/\w])protocol\.md", line) and path.parent.name != "docs"
            if outside or bare:  # docs/ pages link to each other by bare name
                bad.append(f"{path.relative_to(ROOT)}:{line_no}: {line.strip()[:80]}")
    assert not bad, "\n".join(bad)


def test_the_declared_licence_is_shipped() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    licence = (ROOT / "LICENSE").read_text()
    assert declared == "MIT" and licence.startswith("MIT License")
    assert "victron-ble-bms contributors" in licence
