"""The intake codes: catalogue, code and documentation agree."""

from __future__ import annotations

import re
from pathlib import Path

from atlas_registry.intake.codes import CODES

ROOT = Path(__file__).resolve().parent.parent


def test_every_intake_code_is_documented_with_its_example():
    doc = (ROOT / "docs" / "validation-rules.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (INTK\d{3}) \| (.+?) \| .+ \|$", doc, re.MULTILINE))
    assert rows == {c: t for c, (t, _) in CODES.items()}


def test_every_code_intake_raises_is_in_the_catalogue():
    used = set()
    for p in (ROOT / "atlas_registry" / "intake").glob("*.py"):
        used |= set(re.findall(r'"(INTK\d{3})"', p.read_text(encoding="utf-8")))
    used |= set(re.findall(r'"(INTK\d{3})"', (ROOT / "atlas_registry" / "cli" / "cmd_intake.py").read_text()))
    assert used and used <= set(CODES)
