"""`release verify`: a release folder against its MANIFEST.json and the registry's stored manifest.

One release of the tiny export registry is built once; every test damages its own copy the way a
transfer, a careless edit or a malicious manifest would, and expects the rule and the file named.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import EXPORT_SPEC, assert_valid, build_export_registry

from atlas_registry import fixity, release
from atlas_registry.cli import main


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(workspace, spec folder, release folder) of T1.0 built with the CLI into a folder of its own."""
    base = tmp_path_factory.mktemp("fixity")
    ws = build_export_registry(base / "ws")
    specs = base / "specs"
    specs.mkdir()
    (specs / "T1.0.toml").write_text(EXPORT_SPEC, encoding="utf-8")
    out = base / "T1.0"
    assert (
        main(
            [
                "--home",
                str(ws.home),
                "release",
                "build",
                "T1.0",
                "--out",
                str(out),
                "--specs",
                str(specs),
                "--no-cache",
                "--format",
                "json",
            ]
        )
        == 0
    )
    return ws, specs, out


@pytest.fixture
def copy(built, tmp_path) -> Path:
    """A private copy of the built release (files copied, not linked: edits stay in the copy)."""
    dst = tmp_path / "T1.0"
    shutil.copytree(built[2], dst, symlinks=True)
    for p in dst.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)
    return dst


def manifest(root: Path) -> dict:
    return json.loads((root / release.MANIFEST).read_text())


def write_manifest(root: Path, doc: dict) -> None:
    (root / release.MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def found(result) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.path) for f in result.report.findings)


def test_a_fresh_build_is_intact_and_known_to_the_registry(built, capsys):
    ws, _, out = built
    result = fixity.verify_release(out, ws=ws)
    assert result.ok and found(result) == []
    doc = manifest(out)
    assert result.report.files == len(doc["files"]) > 20
    assert result.bytes == sum(f["size"] for f in doc["files"])
    assert (result.release, result.version) == ("T1.0", "1.0.0")
    # by name: `release build --out` left a pointer the CLI follows
    assert main(["--home", str(ws.home), "release", "verify", "T1.0"]) == 0
    text = capsys.readouterr().out
    assert "T1.0 (1.0.0)" in text and "intact" in text and result.manifest_sha256 in text


def test_missing_changed_truncated_and_extra_files_are_named(built, copy, capsys):
    doc = manifest(copy)
    paths = [f["path"] for f in doc["files"]]
    gone, flipped, cut = paths[0], paths[len(paths) // 2], paths[-1]
    (copy / gone).unlink()
    data = bytearray((copy / flipped).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / flipped).write_bytes(bytes(data))
    (copy / cut).write_bytes((copy / cut).read_bytes()[:-1])
    (copy / "icpsr" / "notes.txt").write_text("subject 12 is the mayor's brother\n")
    (copy / ".DS_Store").write_bytes(b"\0")
    result = fixity.verify_release(copy, ws=built[0])
    assert not result.ok
    assert found(result) == sorted(
        [("REL031", gone), ("REL032", flipped), ("REL032", cut), ("REL033", "icpsr/notes.txt"), ("REL033", ".DS_Store")]
    )
    assert main(["--home", str(built[0].home), "release", "verify", str(copy)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ERROR   [REL031]") and gone in line for line in lines)
    assert "5 error(s)" in lines[-1]
    assert main(["--home", str(built[0].home), "release", "verify", str(copy), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert_valid(doc, "findings-report.schema.json")
    assert doc["summary"]["errors"] == 5 and len(doc["findings"]) == 5


def test_symbolic_links_are_refused_not_followed(built, copy, tmp_path):
    doc = manifest(copy)
    victim = doc["files"][1]["path"]
    outside = tmp_path / "outside.bin"
    shutil.copyfile(copy / victim, outside)  # same bytes: following the link would pass
    (copy / victim).unlink()
    (copy / victim).symlink_to(outside)
    (copy / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    result = fixity.verify_release(copy, ws=built[0])
    assert found(result) == [("REL033", "linked-dir"), ("REL034", victim)]


@pytest.mark.parametrize(
    "bad", ["../outside.bin", "/etc/passwd", "icpsr/../../outside.bin", "icpsr//x", "icpsr\\x", "MANIFEST.json"]
)
def test_unsafe_manifest_paths_are_never_opened(built, copy, tmp_path, bad):
    (tmp_path / "outside.bin").write_bytes(b"secret")
    doc = manifest(copy)
    doc["files"].append({"path": bad, "size": 6, "sha256": "0" * 64, "archive": "icpsr", "source_revision_id": None})
    write_manifest(copy, doc)
    result = fixity.verify_release(copy)
    assert ("REL034", bad) in found(result) and not result.ok


def test_a_listed_path_twice_is_refused(copy):
    doc = manifest(copy)
    doc["files"].append(dict(doc["files"][0]))
    write_manifest(copy, doc)
    assert ("REL034", doc["files"][0]["path"]) in found(fixity.verify_release(copy))


@pytest.mark.parametrize(
    "damage, where",
    [
        (lambda d: d["files"][0].update(sha256="ABC"), "files/0/sha256"),
        (lambda d: d["files"][2].update(size=-1), "files/2/size"),
        (lambda d: d.pop("release"), "(top)"),
        (lambda d: d.update(extra="field"), "(top)"),
        (lambda d: d["files"][0].update(archive="dropbox"), "files/0/archive"),
    ],
)
def test_a_manifest_against_its_schema(copy, damage, where):
    doc = manifest(copy)
    damage(doc)
    write_manifest(copy, doc)
    result = fixity.verify_release(copy)
    [f] = result.report.findings
    assert (f.code, f.path) == ("REL030", release.MANIFEST) and f"at {where}:" in f.message


def test_no_manifest_or_not_json(copy, tmp_path):
    (copy / release.MANIFEST).write_text('{"format": 1, "files": [')
    assert found(fixity.verify_release(copy)) == [("REL030", release.MANIFEST)]
    (copy / release.MANIFEST).unlink()
    assert found(fixity.verify_release(copy)) == [("REL030", release.MANIFEST)]
    assert found(fixity.verify_release(tmp_path / "nowhere")) == [("REL030", str(tmp_path / "nowhere"))]


def test_a_consistently_edited_release_is_caught_by_the_registry(built, copy, tmp_path):
    """Files and manifest edited together pass on their own; the registry's stored manifest catches
    them: an error once the release is published, a warning while it is only built."""
    ws, specs, _ = built
    doc = manifest(copy)
    entry = next(f for f in doc["files"] if f["path"] == "bids/participants.tsv")
    new = (copy / entry["path"]).read_bytes() + b"\n"
    (copy / entry["path"]).write_bytes(new)
    entry.update(size=len(new), sha256=hashlib.sha256(new).hexdigest())
    write_manifest(copy, doc)
    assert fixity.verify_release(copy).ok  # no registry: its own manifest only (REL036 says so)
    assert found(fixity.verify_release(copy)) == [("REL036", release.MANIFEST)]
    built_only = fixity.verify_release(copy, ws=ws)
    assert built_only.ok and [(f.code, f.severity) for f in built_only.report.findings] == [("REL035", "warning")]

    pub_ws = build_export_registry(tmp_path / "pub")  # a registry of its own, where T1.0 is published
    release.build(pub_ws, "T1.0", tmp_path / "pub-T1.0", specs=specs)
    release.publish(pub_ws, "T1.0", specs=specs)
    assert fixity.verify_release(tmp_path / "pub-T1.0", ws=pub_ws).ok
    published = fixity.verify_release(copy, ws=pub_ws)
    assert not published.ok and sorted((f.code, f.severity) for f in published.report.findings) == [
        ("REL035", "error"),
        ("REL036", "warning"),
    ]  # and the copy lacks the zip written at publication


def test_a_downloaded_release_needs_no_workspace(built, copy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "no-workspace-here"
    assert main(["--home", str(home), "release", "verify", str(copy), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert_valid(doc, "findings-report.schema.json")
    assert doc["summary"]["errors"] == 0 and doc["summary"]["release"] == "T1.0"
    assert [f["code"] for f in doc["findings"]] == ["REL036"]
    assert not home.exists() and not (tmp_path / "atlas-workspace").exists()


def test_a_file_that_goes_away_or_becomes_a_link_during_the_check(copy, tmp_path, monkeypatch):
    """Between the walk and the hashing, one file is deleted and one replaced by a link to a copy of
    itself: both are named, neither is followed, the check does not crash."""
    doc = manifest(copy)
    gone, linked = doc["files"][3]["path"], doc["files"][4]["path"]
    real_walk = fixity._on_disk

    def walk_then_change(root):
        found = real_walk(root)
        (root / gone).unlink()
        shutil.copyfile(root / linked, tmp_path / "same-bytes")
        (root / linked).unlink()
        (root / linked).symlink_to(tmp_path / "same-bytes")
        return found

    monkeypatch.setattr(fixity, "_on_disk", walk_then_change)
    result = fixity.verify_release(copy)
    assert [(f.code, f.path) for f in result.report.errors] == sorted([("REL031", gone), ("REL031", linked)])


def test_an_unreachable_registry_is_said_not_hidden(copy, tmp_path):
    from atlas_registry.config import Workspace

    ws = Workspace(tmp_path / "ws", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    result = fixity.verify_release(copy, ws=ws)
    [f] = result.report.findings
    assert result.ok and f.code == "REL036" and f.message.startswith("the registry could not be read")
