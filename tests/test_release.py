"""Release build/publish/diff on the tiny export registry: atomic, deterministic, frozen once published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import revise_report_orm
from sqlmodel import Session, select

from atlas_registry import db, release
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.models import Release, ReleaseItem, ReleaseScan
from atlas_registry.store import sha256_file


def tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path."""
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def revise_report(ws, code: str, pvh: int, issue_title: str | None = None) -> int:
    """A PVH correction written with the ORM (the revise module is tested on real data elsewhere)."""
    return revise_report_orm(
        ws, code, pvh=pvh, issue_title=issue_title, issue_url="https://example.org/issues/3", reason="PVH regraded"
    )


def test_two_builds_are_byte_identical_and_manifest_is_complete(export_ws_fresh, release_specs, tmp_path):
    ws = export_ws_fresh
    a = release.build(ws, "T1.0", tmp_path / "a", specs=release_specs)
    b = release.build(ws, "T1.0", tmp_path / "deep" / "b", specs=release_specs)
    ta, tb = tree(tmp_path / "a"), tree(tmp_path / "deep" / "b")
    assert ta == tb and a.manifest_sha256 == b.manifest_sha256
    manifest = json.loads((tmp_path / "a" / release.MANIFEST).read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed == {p: h for p, h in ta.items() if p != release.MANIFEST}
    assert {p.split("/")[0] for p in listed} == {"icpsr", "bids", "parquet", "packages"}
    assert manifest["last_revision_id"] == a.revision
    # no native scan codes in the manifest (the BIDS paths are pseudonymous)
    assert "c0003s" not in json.dumps([{k: v for k, v in f.items() if k != "path"} for f in manifest["files"]])
    # the build is recorded, not yet published
    with Session(db.engine(ws)) as s:
        rel = s.exec(select(Release).where(Release.name == "T1.0")).one()
        assert rel.status == "built" and rel.manifest_sha256 == a.manifest_sha256
        assert len(s.exec(select(ReleaseItem).where(ReleaseItem.release_id == rel.id)).all()) == len(listed)
        assert len(s.exec(select(ReleaseScan).where(ReleaseScan.release_id == rel.id)).all()) == 6


def test_failed_build_leaves_nothing(export_ws_fresh, release_specs, tmp_path, monkeypatch):
    from atlas_registry.export import output

    real = output.Output.write
    calls = []

    def failing(self, *args, **kw):
        calls.append(args[0])
        if len(calls) == 8:
            raise OSError("disk full (simulated)")
        return real(self, *args, **kw)

    monkeypatch.setattr(output.Output, "write", failing)
    builds = tmp_path / "builds"
    with pytest.raises(OSError):
        release.build(export_ws_fresh, "T1.0", builds / "out", specs=release_specs)
    assert len(calls) == 8  # it did fail midway, after writing files
    assert list(builds.iterdir()) == []  # no out, no temp folder
    with Session(db.engine(export_ws_fresh)) as s:
        assert s.exec(select(Release)).all() == []


KILLER = """
import os, signal, sys
from pathlib import Path
from atlas_registry.config import Workspace
from atlas_registry.export import output
real = output.Output.write
n = [0]
def write(self, *a, **k):
    n[0] += 1
    if n[0] == 20:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *a, **k)
output.Output.write = write
from atlas_registry import release
release.build(Workspace(Path(sys.argv[1])), "T1.0", Path(sys.argv[2]), specs=Path(sys.argv[3]))
"""


def test_killed_build_leaves_no_release_and_is_cleaned_up(export_ws_fresh, release_specs, tmp_path):
    builds = tmp_path / "builds"
    out = builds / "out"
    p = subprocess.run(
        [sys.executable, "-c", KILLER, str(export_ws_fresh.home), str(out), str(release_specs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == -9, p.stderr
    assert not out.exists()
    leftovers = list(builds.iterdir())
    assert (
        len(leftovers) == 1 and leftovers[0].name.startswith(".out.build-") and any(leftovers[0].rglob("*"))
    )  # the partial build, under a hidden name
    release.build(export_ws_fresh, "T1.0", out, specs=release_specs)
    assert (out / release.MANIFEST).is_file()
    assert [x.name for x in builds.iterdir()] == ["out"]


def test_existing_output_needs_force(export_ws_fresh, release_specs, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "file.txt").write_text("stale")
    argv = [
        "--home",
        str(export_ws_fresh.home),
        "release",
        "build",
        "T1.0",
        "--out",
        str(out),
        "--specs",
        str(release_specs),
        "--no-cache",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [REL015]") and (out / "old" / "file.txt").exists()
    assert main(argv + ["--force"]) == 0
    assert "T1.0 (1.0.0) built" in capsys.readouterr().out
    assert not (out / "old").exists() and (out / release.MANIFEST).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    release.build(export_ws_fresh, "T1.0", empty, specs=release_specs)  # an empty folder is fine
    assert tree(empty) == tree(out)


def test_publish_freezes_and_rebuild_reproduces_or_fails_loudly(export_ws_fresh, release_specs, tmp_path):
    ws = export_ws_fresh
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.0", specs=release_specs)
    assert e.value.code == "REL011"
    first = release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs)
    revise_report(ws, "c0003s0001t01", pvh=3)
    with pytest.raises(AtlasError) as e:  # the registry moved on since the build
        release.publish(ws, "T1.0", specs=release_specs)
    assert e.value.code == "REL013"
    first = release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs, force=True)
    pub = release.publish(ws, "T1.0", specs=release_specs)
    assert pub.manifest_sha256 == first.manifest_sha256 and pub.scans == 6
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.0", specs=release_specs)
    assert e.value.code == "REL012"

    # later revisions and an edited specification do not change what T1.0 contains
    revise_report(ws, "c0003s0002t01", pvh=0, issue_title="PVH of the second subject is 0")
    (release_specs / "T1.0.toml").write_text(
        (release_specs / "T1.0.toml").read_text().replace("Test release of the exporters", "A retitled release")
    )
    again = release.build(ws, "T1.0", tmp_path / "v1-again", specs=release_specs)
    assert again.reproduced and tree(tmp_path / "v1") == tree(tmp_path / "v1-again")
    assert release.plan(ws, "T1.0", specs=release_specs).status == "published"

    # tamper with the stored manifest: the rebuild must name the file and leave nothing behind
    with Session(db.engine(ws)) as s:
        item = s.exec(
            select(ReleaseItem)
            .join(Release)
            .where(Release.name == "T1.0")
            .where(ReleaseItem.path == "bids/participants.tsv")
        ).one()
        item.sha256 = "0" * 64
        s.add(item)
        s.commit()
    with pytest.raises(AtlasError) as e:
        release.build(ws, "T1.0", tmp_path / "v1-tampered", specs=release_specs)
    assert e.value.code == "REL021" and e.value.path == "bids/participants.tsv"
    assert not (tmp_path / "v1-tampered").exists()


def test_next_release_diff_changes_and_plan(export_ws_fresh, release_specs, tmp_path, capsys):
    ws = export_ws_fresh
    release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs)
    release.publish(ws, "T1.0", specs=release_specs)
    rev = revise_report(ws, "c0003s0002t01", pvh=0, issue_title="PVH of the second subject is 0")

    p = release.plan(ws, "T1.1", specs=release_specs)
    assert p.previous == "T1.0" and p.status == "new" and p.n_scans == 6
    assert [(c.revision, c.scan, c.issue_title) for c in p.changes] == [
        (rev, "c0003s0002t01", "PVH of the second subject is 0")
    ]
    assert p.exclusions == {"low_resolution": 2, "registration_failed": 1}

    release.build(ws, "T1.1", tmp_path / "v2", specs=release_specs)
    changes = (tmp_path / "v2" / "bids" / "CHANGES").read_text()
    blocks = changes.split("\n\n")
    assert blocks[0].splitlines() == [
        "1.1.0 2021-05-06",
        "  - PVH of the second subject is 0 (issue #1, https://example.org/issues/3): metadata corrected",
    ]
    assert blocks[1].startswith("1.0.0 2020-03-04\n  - Initial release")
    assert "c0003s" not in changes

    d = release.diff(ws, "T1.0", "T1.1")
    assert [(s.scan, s.status) for s in d.scans] == [("c0003s0002t01", "changed")]
    assert d.issues == [1] and [c.revision for c in d.scans[0].changes] == [rev]
    # a metadata correction changes the tables, not the scan's own files
    assert d.scans[0].files == []
    assert {"path": "icpsr/native/ATLAS_scans.csv", "change": "changed"} in d.release_files
    assert not any("_LesionRaw" in f["path"] or "_T1w" in f["path"] for f in d.release_files)
    assert not d.standard_added and not d.standard_removed

    argv = ["--home", str(ws.home), "release", "diff", "T1.0", "T1.1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "~ c0003s0002t01" in out and "issue #1 'PVH of the second subject is 0'" in out
    assert main(["--home", str(ws.home), "release", "plan", "T1.1", "--specs", str(release_specs)]) == 0
    assert f"r{rev} correct_metadata" in capsys.readouterr().out
    assert main(["--home", str(ws.home), "release", "publish", "T1.1", "--specs", str(release_specs)]) == 0
    assert "previous release T1.0" in capsys.readouterr().out
    with pytest.raises(AtlasError) as e:
        release.diff(ws, "T1.0", "T9.9")
    assert e.value.code == "REL010"


def test_publish_refuses_a_build_older_than_another_publication(export_ws_fresh, release_specs, tmp_path):
    """A build lists the releases published before it (CHANGES, notes, tables): one published after it
    was built would be missing from it, and present in every rebuild."""
    ws = export_ws_fresh
    release.build(ws, "T1.1", tmp_path / "v2", specs=release_specs)
    release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs)
    release.publish(ws, "T1.0", specs=release_specs)
    assert "1.0.0 2020-03-04" not in (tmp_path / "v2" / "bids" / "CHANGES").read_text()
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.1", specs=release_specs)
    assert e.value.code == "REL013" and "T1.0 was published after T1.1 was built" in str(e.value)
    release.build(ws, "T1.1", tmp_path / "v2", specs=release_specs, force=True)
    release.publish(ws, "T1.1", specs=release_specs)
    assert "1.0.0 2020-03-04" in (tmp_path / "v2" / "bids" / "CHANGES").read_text()
    again = release.build(ws, "T1.1", tmp_path / "v2-again", specs=release_specs)
    assert again.reproduced and tree(tmp_path / "v2-again") == tree(tmp_path / "v2")


def test_release_recorded_before_0006_rebuilds_from_history(export_ws_fresh, release_specs, tmp_path):
    """The build records each scan's exclusion reason and note and public label; a release published
    before migration 0006 has none recorded, and is rebuilt from the registry's history as before."""
    ws = export_ws_fresh
    first = release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs)
    release.publish(ws, "T1.0", specs=release_specs)
    with Session(db.engine(ws)) as s:
        rows = s.exec(select(ReleaseScan)).all()
        assert sorted((r.scan, r.exclusion_reason) for r in rows if not r.in_standard) == [
            ("c0001s0001t01", "low_resolution"),
            ("c0001s0002t01", "low_resolution"),
            ("c0003s0003t01", "registration_failed"),
        ]
        assert all(r.exclusion_reason is None and r.exclusion_note is None for r in rows if r.in_standard)
        assert all(r.exclusion_note for r in rows if not r.in_standard)
        assert len({r.public_label for r in rows}) == 5 and all(r.public_label.startswith("a") for r in rows)
        for r in rows:
            r.exclusion_reason = r.exclusion_note = r.public_label = None
            s.add(r)
        s.commit()
    again = release.build(ws, "T1.0", tmp_path / "v1-again", specs=release_specs)
    assert again.reproduced and again.manifest_sha256 == first.manifest_sha256
    assert tree(tmp_path / "v1-again") == tree(tmp_path / "v1")


def test_version_must_increase(export_ws_fresh, release_specs, tmp_path):
    ws = export_ws_fresh
    release.build(ws, "T1.1", tmp_path / "v2", specs=release_specs)
    release.publish(ws, "T1.1", specs=release_specs)
    release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs)
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.0", specs=release_specs)
    assert e.value.code == "REL014"


def test_a_release_built_elsewhere_is_found_by_sql_release(export_ws_fresh, release_specs, tmp_path, capsys):
    """`release build --out DIR` outside <home>/releases leaves a pointer that `sql --release` follows."""
    out = tmp_path / "elsewhere" / "T1.0"
    home = ["--home", str(export_ws_fresh.home)]
    assert main(home + ["release", "build", "T1.0", "--out", str(out), "--specs", str(release_specs)]) == 0
    assert (export_ws_fresh.home / "releases" / "T1.0.location").read_text().strip() == str(out.resolve())
    capsys.readouterr()
    assert main(home + ["sql", "SELECT COUNT(*) AS n FROM scans", "--release", "T1.0", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "6"]


def test_specification_is_stored_by_the_first_build(export_ws_fresh, release_specs, tmp_path):
    """Once built, plan, publish and rebuilds read the specification from the registry: the file is
    no longer needed (a changed file is still refused at publish: REL013)."""
    ws = export_ws_fresh
    a = release.build(ws, "T1.0", tmp_path / "a", specs=release_specs)
    empty = tmp_path / "no-specs"
    empty.mkdir()
    assert release.plan(ws, "T1.0", specs=empty).version == "1.0.0"
    assert main(["--home", str(ws.home), "release", "publish", "T1.0", "--specs", str(empty)]) == 0
    again = release.build(ws, "T1.0", tmp_path / "b", specs=empty)
    assert again.reproduced and again.manifest_sha256 == a.manifest_sha256
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    with pytest.raises(AtlasError) as e:  # never built: the file is needed
        release.plan(ws, "T1.1", specs=empty)
    assert e.value.code == "REL000"


def test_built_specification_changed_is_refused_at_publish(export_ws_fresh, release_specs, tmp_path):
    ws = export_ws_fresh
    release.build(ws, "T1.0", tmp_path / "a", specs=release_specs)
    spec = release_specs / "T1.0.toml"
    spec.write_text(spec.read_text().replace('date = "2020-03-04"', 'date = "2020-03-05"'))
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.0", specs=release_specs)
    assert e.value.code == "REL013"


def test_build_refuses_the_specifications_folder(export_ws_fresh, release_specs):
    before = sorted(p.name for p in release_specs.iterdir())
    for out in (release_specs, release_specs / "T1.0"):
        with pytest.raises(AtlasError) as e:
            release.build(export_ws_fresh, "T1.0", out, specs=release_specs)
        assert e.value.code == "REL017"
    assert sorted(p.name for p in release_specs.iterdir()) == before
