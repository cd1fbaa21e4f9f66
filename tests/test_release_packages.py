"""The deposit zip written at publication, builds that reuse an earlier build, and fixity without a
registry (`release verify --manifest-sha256`), on the tiny export registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import revise_report_orm
from sqlmodel import Session, select

from atlas_registry import db, fixity, release
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.models import Release
from atlas_registry.store import sha256_file

ZIP = "packages/atlas-T1.0-icpsr.zip"


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def inodes(root: Path) -> dict[str, int]:
    """Inode of every file but MANIFEST.json (rewritten by every build that runs)."""
    return {
        p.relative_to(root).as_posix(): p.stat().st_ino
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "MANIFEST.json"
    }


def test_build_writes_no_zip_publish_writes_it_once_and_records_it(export_ws_fresh, release_specs, tmp_path, capsys):
    import bagit

    ws, out = export_ws_fresh, tmp_path / "T1.0"
    home = ["--home", str(ws.home)]
    release.build(ws, "T1.0", out, specs=release_specs)
    assert not (out / ZIP).exists() and (out / "packages/atlas-T1.0-icpsr/bagit.txt").is_file()
    assert main(home + ["release", "publish", "T1.0", "--specs", str(release_specs)]) == 0  # finds the folder
    printed = capsys.readouterr().out.splitlines()
    with Session(db.engine(ws)) as s:
        rel = s.exec(select(Release).where(Release.name == "T1.0")).one()
    assert printed[1] == f"manifest sha256 {rel.manifest_sha256}"
    assert rel.package_path == ZIP and rel.package_size == (out / ZIP).stat().st_size
    assert rel.package_sha256 == sha256_file(out / ZIP)
    # beside it: SHA256SUMS that coreutils checks, and release notes naming both SHA-256
    p = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out / "packages", capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.count(": OK") == 2, p.stdout + p.stderr
    notes = (out / "packages/RELEASE-NOTES.md").read_text()
    assert rel.manifest_sha256 in notes and rel.package_sha256 in notes
    assert f"release verify DIR --manifest-sha256 {rel.manifest_sha256}" in notes
    # the zip holds the bag, which bagit validates once unpacked
    with zipfile.ZipFile(out / ZIP) as z:
        z.extractall(tmp_path / "unzipped")
    bagit.Bag(str(tmp_path / "unzipped/atlas-T1.0-icpsr")).validate()
    # the published folder checks out, with the zip
    result = fixity.verify_release(out, ws=ws)
    assert result.ok and result.anchored and result.report.findings == [] and "intact" in result.to_text()
    # a rebuild of the published release writes the same zip and notes again
    again = release.build(ws, "T1.0", tmp_path / "again", specs=release_specs)
    assert again.reproduced and tree(tmp_path / "again") == tree(out)


def test_a_damaged_or_foreign_zip_is_named(export_ws_fresh, release_specs, tmp_path):
    ws, out = export_ws_fresh, tmp_path / "T1.0"
    release.build(ws, "T1.0", out, specs=release_specs)
    release.publish(ws, "T1.0", specs=release_specs)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    os.chmod(copy / ZIP, 0o644)
    with open(copy / ZIP, "r+b") as f:
        f.seek(100)
        f.write(b"\x00" * 8)
    result = fixity.verify_release(copy, ws=ws)
    assert [(f.code, f.path) for f in result.report.errors] == [("REL032", ZIP)]
    # zip and SHA256SUMS replaced together: consistent on their own, not the published zip
    sha = sha256_file(copy / ZIP)
    sums = copy / "packages/SHA256SUMS"
    os.chmod(sums, 0o644)
    lines = sums.read_text().splitlines()
    sums.write_text(f"{sha}  atlas-T1.0-icpsr.zip\n{lines[1]}\n")
    result = fixity.verify_release(copy, ws=ws)
    assert [(f.code, f.path) for f in result.report.errors] == [("REL035", ZIP)]
    assert "published" in result.report.errors[0].message
    # a malformed SHA256SUMS is named; a zip without it is an unlisted file
    sums.write_text("not a checksum line\n")
    assert ("REL030", "packages/SHA256SUMS") in [
        (f.code, f.path) for f in fixity.verify_release(copy, ws=ws).report.errors
    ]
    sums.unlink()
    codes = [(f.code, f.path) for f in fixity.verify_release(copy, ws=ws).report.findings]
    assert ("REL033", ZIP) in codes and ("REL036", ZIP) in codes


def test_publish_needs_the_recorded_build_folder(export_ws_fresh, release_specs, tmp_path):
    ws, out = export_ws_fresh, tmp_path / "T1.0"
    release.build(ws, "T1.0", out, specs=release_specs)
    shutil.copytree(out, tmp_path / "other")
    bag_file = next(p for p in sorted((tmp_path / "other/packages").rglob("*.csv")))
    os.chmod(bag_file, 0o644)
    bag_file.write_bytes(bag_file.read_bytes() + b"x")
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.0", specs=release_specs, out=tmp_path / "other")
    assert e.value.code == "REL011" and e.value.path.endswith(bag_file.name)
    assert not (tmp_path / "other" / ZIP).exists()
    with pytest.raises(AtlasError) as e:
        release.publish(ws, "T1.0", specs=release_specs, out=tmp_path / "nowhere")
    assert e.value.code == "REL011"
    with Session(db.engine(ws)) as s:  # nothing was published
        assert s.exec(select(Release.status).where(Release.name == "T1.0")).one() == "built"


def test_a_build_reuses_the_earlier_build_and_gives_the_same_bytes(export_ws_fresh, release_specs, tmp_path):
    ws, out = export_ws_fresh, tmp_path / "T1.0"
    first = release.build(ws, "T1.0", out, specs=release_specs)
    before, before_bytes = inodes(out), tree(out)
    # nothing changed: nothing is done (same inodes, same manifest)
    same = release.build(ws, "T1.0", out, specs=release_specs, force=True)
    assert same.unchanged and same.manifest_sha256 == first.manifest_sha256 and inodes(out) == before
    # a stray file makes the folder another one: built again, the stray file removed, the rest kept
    (out / "bids" / "notes.txt").write_text("stray")
    again = release.build(ws, "T1.0", out, specs=release_specs, force=True)
    assert not again.unchanged and again.kept == again.files and not (out / "bids" / "notes.txt").exists()
    assert inodes(out) == before
    # a revision: only what it changes is written again; the result equals a build from nothing
    revise_report_orm(ws, "c0003s0001t01", pvh=3, issue_title=None, issue_url=None, reason="PVH regraded")
    changed = release.build(ws, "T1.0", out, specs=release_specs, force=True)
    assert not changed.unchanged and changed.manifest_sha256 != first.manifest_sha256
    assert 0 < changed.kept < changed.files
    now = inodes(out)
    assert (
        now["icpsr/native/c0003/c0003s0001t01/c0003s0001t01.nii.gz"]
        == before["icpsr/native/c0003/c0003s0001t01/c0003s0001t01.nii.gz"]
    )
    assert tree(out)["bids/participants.tsv"] != before_bytes["bids/participants.tsv"]
    fresh = release.build(ws, "T1.0", tmp_path / "fresh", specs=release_specs)
    assert fresh.manifest_sha256 == changed.manifest_sha256 and tree(tmp_path / "fresh") == tree(out)
    assert fixity.verify_release(out, ws=ws).ok
    # a symbolic link in the earlier tree is never built upon (or followed): the build starts afresh
    target = tmp_path / "outside.txt"
    target.write_text("outside")
    os.chmod(out / "bids/README", 0o644)
    (out / "bids/README").unlink()
    (out / "bids/README").symlink_to(target)
    release.build(ws, "T1.0", out, specs=release_specs, force=True)
    assert not (out / "bids/README").is_symlink() and target.read_text() == "outside"
    assert tree(out) == tree(tmp_path / "fresh")


def test_a_failed_build_over_an_earlier_one_leaves_no_folder(export_ws_fresh, release_specs, tmp_path, monkeypatch):
    from atlas_registry.export import output

    ws, out = export_ws_fresh, tmp_path / "builds" / "T1.0"
    release.build(ws, "T1.0", out, specs=release_specs)
    revise_report_orm(ws, "c0003s0001t01", pvh=3, issue_title=None, issue_url=None, reason="PVH regraded")

    def failing(self, *args, **kw):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(output.Output, "write", failing)
    with pytest.raises(OSError):
        release.build(ws, "T1.0", out, specs=release_specs, force=True)
    assert list((tmp_path / "builds").iterdir()) == []


def test_verify_without_a_registry_says_what_it_checked(export_ws_fresh, release_specs, tmp_path, capsys, monkeypatch):
    ws, out = export_ws_fresh, tmp_path / "T1.0"
    release.build(ws, "T1.0", out, specs=release_specs)
    pub = release.publish(ws, "T1.0", specs=release_specs)
    monkeypatch.chdir(tmp_path)
    nohome = ["--home", str(tmp_path / "no-workspace")]
    # no registry, no expected SHA-256: a warning that only internal consistency was checked
    assert main(nohome + ["release", "verify", str(out)]) == 0
    text = capsys.readouterr().out
    assert "WARNING [REL036]" in text
    assert "internally consistent only" in text and "intact" not in text
    # the published SHA-256: anchored, no warning
    assert main(nohome + ["release", "verify", str(out), "--manifest-sha256", pub.manifest_sha256]) == 0
    text = capsys.readouterr().out
    assert "REL036" not in text and ": intact, 0 warning(s)" in text
    # files and manifest edited together: consistent on their own, caught by the expected SHA-256
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    doc = json.loads((copy / "MANIFEST.json").read_text())
    entry = next(f for f in doc["files"] if f["path"] == "bids/participants.tsv")
    os.chmod(copy / entry["path"], 0o644)
    new = (copy / entry["path"]).read_bytes() + b"\n"
    (copy / entry["path"]).write_bytes(new)
    entry.update(size=len(new), sha256=__import__("hashlib").sha256(new).hexdigest())
    os.chmod(copy / "MANIFEST.json", 0o644)
    (copy / "MANIFEST.json").write_text(json.dumps(doc))
    assert main(nohome + ["release", "verify", str(copy), "--manifest-sha256", pub.manifest_sha256]) == 1
    out = capsys.readouterr().out
    assert "[REL035]" in out and "expected" in out
    assert main(nohome + ["release", "verify", str(copy), "--manifest-sha256", "xyz"]) != 0
