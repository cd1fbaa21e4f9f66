"""The issue tracker: open, list, show, close — through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session
from test_registry_schema import _seed

from atlas_registry import db
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.models import Issue, Timepoint
from atlas_registry.tracker import close_issue, list_issues, open_issue


@pytest.fixture
def scans(registry):
    """Two scans of one subject: c0001s0001t01 and t02."""
    with Session(db.engine(registry)) as s:
        tp, _ = _seed(s)
        s.add(Timepoint(subject_id=tp.subject_id, code="c0001s0001t02", number=2))
        s.commit()
    return registry


def cli(ws, *args) -> int:
    argv = ["--home", str(ws.home)] + (["--db", ws.db] if ws.db else []) + list(args)
    return main(argv)


def test_issue_lifecycle_through_the_cli(scans, capsys):
    ws = scans
    assert (
        cli(
            ws,
            "issue",
            "open",
            "--scan",
            "c0001s0001t01",
            "--file",
            "c0001s0001t01_LesionRaw.voi",
            "--title",
            "Mask misses the posterior part",
            "--body",
            "see slice 40",
            "--url",
            "https://github.com/npnl/ATLAS/issues/7",
            "--format",
            "json",
        )
        == 0
    )
    opened = json.loads(capsys.readouterr().out)
    assert opened["number"] >= 1 and opened["status"] == "open" and opened["scan"] == "c0001s0001t01"
    assert opened["file_kind"] == "LesionRaw.voi"  # stored without the native identifier
    assert cli(ws, "issue", "open", "--scan", "c0001s0001t02", "--file", "metadata", "--title", "PVH grade wrong") == 0
    capsys.readouterr()

    assert cli(ws, "issue", "list", "--status", "open", "--format", "json") == 0
    assert [i["scan"] for i in json.loads(capsys.readouterr().out)] == ["c0001s0001t01", "c0001s0001t02"]
    assert cli(ws, "issue", "list", "--scan", "c0001s0001t02") == 0
    out = capsys.readouterr().out
    assert "PVH grade wrong" in out and "posterior" not in out

    n = opened["number"]
    assert cli(ws, "issue", "close", str(n), "--reason", "duplicate of the public issue") == 0
    capsys.readouterr()
    assert cli(ws, "issue", "show", str(n)) == 0
    shown = capsys.readouterr().out
    assert "closed" in shown and "duplicate of the public issue" in shown and "see slice 40" in shown
    assert cli(ws, "issue", "list", "--status", "closed", "--format", "json") == 0
    assert [i["number"] for i in json.loads(capsys.readouterr().out)] == [n]
    with Session(db.engine(ws)) as s:
        row = s.get(Issue, n)
        assert row.status == "closed" and row.closed_at is not None


@pytest.mark.parametrize(
    "args, code",
    [
        (["issue", "open", "--scan", "c0001s0099t01", "--title", "x"], "ISS001"),
        (
            ["issue", "open", "--scan", "c0001s0001t01", "--file", "c0009s0001t01_LesionRaw.voi", "--title", "x"],
            "ISS002",
        ),
        (["issue", "open", "--scan", "c0001s0001t01", "--file", "notes.txt", "--title", "x"], "ISS002"),
        (["issue", "open", "--scan", "c0001s0001t01", "--file", "c0001s0001t01.json", "--title", "x"], "ISS002"),
        (["issue", "open", "--scan", "c0001s0001t01", "--title", "  "], "ISS005"),
        (["issue", "open", "--scan", "c0001s0001t01", "--title", "x", "--url", "ftp://x"], "ISS007"),
        (["issue", "show", "999"], "ISS003"),
        (["issue", "list", "--status", "pending"], "ISS006"),
    ],
)
def test_refusals_are_one_line_with_a_rule_code(scans, capsys, args, code):
    assert cli(scans, *args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error [{code}]")


@pytest.mark.parametrize(
    "given, stored",
    [
        ("LesionSmooth_2.nii.gz", "LesionSmooth_2.nii.gz"),
        ("c0001s0001t01_LesionRaw_1.voi", "LesionRaw_1.voi"),
        ("c0001s0001t01.nii.gz", "t1"),
        ("c0001s0001t01_t1w_deface_stx.nii.gz", "t1_standard"),
        ("LesionSmooth_1_stx.nii.gz", "LesionSmooth_1_stx.nii.gz"),
        ("metadata", "metadata"),
    ],
)
def test_file_kinds_are_stored_without_the_scan_id(scans, given, stored):
    assert open_issue(scans, "c0001s0001t01", "x", file_kind=given).file_kind == stored


def test_no_registry_is_one_line(workspace, capsys):
    for args in (["issue", "list"], ["history", "c0001s0001t01"], ["release", "plan", "R1.1"]):
        assert cli(workspace, *args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error [REG001]")


def test_closing_twice_is_refused(scans):
    issue = open_issue(scans, "c0001s0001t01", "wrong hemisphere", file_kind="lesion", author="tester")
    assert issue.opened_by == "tester"
    close_issue(scans, issue.number, "fixed upstream")
    with pytest.raises(AtlasError) as e:
        close_issue(scans, issue.number, "again")
    assert e.value.code == "ISS004"
    assert [i.status for i in list_issues(scans)] == ["closed"]
