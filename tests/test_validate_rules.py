"""The rule catalogue, the code and the documentation agree."""

from __future__ import annotations

import re
from pathlib import Path

from atlas_registry.findings import SEVERITIES
from atlas_registry.validate import rules

ROOT = Path(__file__).resolve().parent.parent
CODE_RE = re.compile(r'"((?:NAME|IMG|MASK|META|DEID)\d{3})"')


def test_every_rule_is_documented_with_its_severity():
    doc = (ROOT / "docs" / "validation-rules.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z]+\d{3})` \| (\w+) \|", doc, re.MULTILINE))
    assert rows == {code: r.severity for code, r in rules.RULES.items()}
    for r in rules.RULES.values():
        assert r.severity in SEVERITIES and r.title and r.example


def test_every_code_the_validators_emit_is_in_the_catalogue():
    used = set()
    for p in (ROOT / "atlas_registry" / "validate").glob("*.py"):
        if p.name != "rules.py":
            used |= set(CODE_RE.findall(p.read_text(encoding="utf-8")))
    assert used and used <= set(rules.RULES)


def test_every_rule_is_exercised_by_a_test():
    tests = "".join(
        p.read_text(encoding="utf-8")
        for p in (ROOT / "tests").glob("test_validate_*.py")
        if p.name != Path(__file__).name
    )
    missing = sorted(code for code in rules.RULES if f'"{code}"' not in tests)
    assert missing == []
