"""One catalogue of every code the program can emit (issue #16): the source and the documentation
agree, and a registry that cannot be reached is one line with a code and what to check."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from atlas_registry.cli import main

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = ("docs/validation-rules.md", "docs/codes.md")
CODE_LITERAL = re.compile(r"""["']([A-Z]{2,6}\d{3})["']""")
NOT_CODES = {"MNI152"}  # the template's name, not a code
DOC_ROW = re.compile(r"^\| `?([A-Z]{2,6}\d{3})`? \|", re.MULTILINE)  # a table row naming a code


def _used() -> dict[str, list[str]]:
    """Every code literal in the program's source, with the files that name it."""
    used: dict[str, list[str]] = {}
    for p in sorted((ROOT / "atlas_registry").rglob("*.py")):
        for code in set(CODE_LITERAL.findall(p.read_text(encoding="utf-8"))) - NOT_CODES:
            used.setdefault(code, []).append(str(p.relative_to(ROOT)))
    return used


def _documented() -> list[str]:
    rows: list[str] = []
    for doc in CATALOGUES:
        rows += DOC_ROW.findall((ROOT / doc).read_text(encoding="utf-8"))
    return rows


def test_the_source_is_read():
    used = _used()
    # the walk finds codes of every kind: validation findings, refusals, usage, connection
    assert {"NAME001", "DEID001", "ING002", "REL021", "SQL003", "CLI001", "DB001", "STO001"} <= set(used)
    assert len(used) > 150


def test_every_code_is_documented_once_with_an_example():
    used, rows = _used(), _documented()
    dupes = sorted({c for c in rows if rows.count(c) > 1})
    assert dupes == [], f"documented more than once: {dupes}"
    undocumented = sorted(set(used) - set(rows))
    assert undocumented == [], f"used in the source but documented nowhere: {undocumented}"
    stale = sorted(set(rows) - set(used))
    assert stale == [], f"documented but no longer in the source: {stale}"
    text = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        m = DOC_ROW.match(line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == 4 and all(cells), line  # code, exit, meaning, example
            assert cells[1] in ("0", "1", "2", "1 / 0"), line


def test_usage_is_not_a_code():
    for p in (ROOT / "atlas_registry").rglob("*.py"):
        assert not re.search(r"""Error\(\s*["']USAGE["']""", p.read_text(encoding="utf-8")), p


def _one_line_error(capsys, code: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"error [{code}] "), err
    assert "OperationalError" not in err[0] and "sqlalche.me" not in err[0] and "INTERNAL" not in err[0]
    return err[0]


def test_sqlite_that_cannot_be_opened(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert main(["init", "--db", f"sqlite:///{tmp_path / 'a-file' / 'registry.sqlite'}"]) == 1
    line = _one_line_error(capsys, "DB001")
    assert "a-file" in line and "check" in line
    (tmp_path / "a-folder.sqlite").mkdir()
    assert main(["init", "--db", f"sqlite:///{tmp_path / 'a-folder.sqlite'}"]) == 1
    line = _one_line_error(capsys, "DB001")
    assert "a-folder.sqlite" in line and "check" in line


def _pg() -> str:
    url = os.environ.get("ATLAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ATLAS_TEST_POSTGRES_URL not set")
    return url


def test_postgresql_database_missing(capsys):
    from sqlalchemy.engine import make_url

    url = make_url(_pg()).set(database="atlas_no_such_database").render_as_string(hide_password=False)
    assert main(["status", "--db", url]) == 1
    line = _one_line_error(capsys, "DB001")
    assert "atlas_no_such_database" in line and "does not exist" in line and "check" in line


def test_postgresql_connection_refused(capsys):
    import socket

    from sqlalchemy.engine import make_url

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = make_url(_pg()).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    assert main(["init", "--db", url]) == 1
    line = _one_line_error(capsys, "DB001")
    assert str(port) in line and "refused" in line.lower() and "check" in line
