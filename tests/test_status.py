"""`atlas-registry status`: the registry summarized, checked against the rows themselves."""

from __future__ import annotations

import json

from sqlmodel import Session, func, select

from atlas_registry import db, release, status, tracker
from atlas_registry.cli import main
from atlas_registry.config import Workspace
from atlas_registry.models import Cohort, IngestRun, Lesion, Revision, StoredObject, Subject, Timepoint


def _cli(ws) -> list[str]:
    return ["--home", str(ws.home)] + (["--db", ws.db] if ws.db else [])


def test_status_counts_what_the_registry_holds(ingested_two, tmp_path, capsys):
    ws = ingested_two
    scan = "c0009s0004t01"
    tracker.open_issue(ws, scan, "Primary lesion mask over-traced")
    release.build(ws, "R1.1", tmp_path / "R1.1")
    st = status.status(ws)
    with Session(db.engine(ws)) as s:

        def count(model, *where):
            return s.exec(select(func.count()).select_from(model).where(*where)).one()

        assert st.content["cohorts"] == count(Cohort) == 2
        assert st.content["subjects"] == count(Subject)
        assert st.content["scans"] == count(Timepoint) == 18
        assert st.content["lesions"] == count(Lesion, Lesion.retired_rev_id.is_(None))
        assert sum(st.content["standard_status"].values()) == 18
        assert st.content["standard_status"].get("included") == count(
            Timepoint, Timepoint.standard_status == "included"
        )
        assert st.store["objects"] == count(StoredObject)
        assert st.store["bytes"] == s.exec(select(func.sum(StoredObject.size_bytes))).one()
        assert (
            st.revisions["count"] == count(Revision)
            and st.revisions["newest"]["id"] == s.exec(select(func.max(Revision.id))).one()
        )
        assert st.ingests["runs"] == count(IngestRun) and st.ingests["by_status"] == {"committed": 2}
    assert st.issues == {"open": 1}
    assert st.schema == st.schema_head
    [r] = st.releases
    assert (r["name"], r["status"], r["scans"]) == ("R1.1", "built", 18)
    assert r["files"] == len(json.loads((tmp_path / "R1.1" / "MANIFEST.json").read_text())["files"])

    assert main(_cli(ws) + ["status"]) == 0
    text = capsys.readouterr().out
    assert "2 cohort(s)" in text and "18 scan(s)" in text and "1 open, 0 closed" in text
    assert f"R1.1 1.1.0 built {r['built_at'][:10]}: 18 scan(s), {r['files']} file(s)" in text
    assert main(_cli(ws) + ["status", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["content"] == st.content


def test_no_registry_is_one_line_and_creates_nothing(tmp_path, capsys):
    home = tmp_path / "typo"
    assert main(["--home", str(home), "status"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [REG001]")
    assert not home.exists()
    ws = Workspace(home)
    assert main(["--home", str(ws.home), "init"]) == 0
    capsys.readouterr()
    assert main(["--home", str(ws.home), "status"]) == 0
    assert "0 scan(s)" in capsys.readouterr().out
