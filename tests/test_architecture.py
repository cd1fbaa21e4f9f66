"""docs/architecture.md lists every module of the package, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "atlas_registry"


def _modules() -> set[str]:
    mods = {p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    mods |= {f"{p.name}/" for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    return mods


def _listed() -> list[str]:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = doc.split("## Modules", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in table.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names += re.findall(r"`([^`]+)`", first)
    return names


def test_module_table_is_complete():
    listed = _listed()
    assert len(listed) == len(set(listed)), "a module listed twice"
    extra_ok = {"migrations/"}  # the Alembic revisions live beside the package
    assert (ROOT / "migrations" / "versions").is_dir()
    missing = sorted(_modules() - set(listed))
    assert missing == [], f"modules missing from docs/architecture.md: {missing}"
    phantom = sorted(set(listed) - _modules() - extra_ok)
    assert phantom == [], f"docs/architecture.md lists modules that do not exist: {phantom}"


def test_glossary_names_the_traps():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    glossary = doc.split("## Glossary", 1)[1].split("\n## ", 1)[0]
    for term in ("Timepoint", "Finding.subject", "Revision.kind", "file_kind"):
        assert term in glossary
