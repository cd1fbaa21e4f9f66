"""Published means frozen: a published release rebuilds byte for byte, and `release plan` shows it as
published, whatever the registry went through since (ingests, revisions, exclusions, withdrawals)."""

from __future__ import annotations

import shutil

import pytest
from test_revise import eroded, mask_bytes

from atlas_registry import metadata, release, revise, tracker
from atlas_registry.config import Workspace
from atlas_registry.ingest import ingest_path
from atlas_registry.revise import MaskFiles


@pytest.fixture(scope="module")
def staged(synth_two_cohorts, tmp_path_factory):
    """The standardized files of cohort c0009 split in two roots: ``a`` (the first six scans) ingested
    before R1.1 is published, ``b`` (the other six) after it: at publication they are pending."""
    src = synth_two_cohorts / "standard" / "c0009"
    scans = sorted(p.name for p in src.iterdir())
    out = tmp_path_factory.mktemp("frozen")
    roots = {}
    for name, part in (("a", scans[:6]), ("b", scans[6:])):
        root = roots[name] = out / f"standard-{name}"
        for sid in part:
            shutil.copytree(src / sid, root / "c0009" / sid)
        metadata.write_registration_failures(root, [])
    return roots, scans[:6], scans[6:]


def test_published_release_rebuilds_identically_after_every_later_operation(
    workspace, synth_two_cohorts, staged, tmp_path, capsys
):
    from atlas_registry.cli import main

    ws: Workspace = workspace
    roots, early, late = staged
    native = synth_two_cohorts / "native"
    ingest_path(ws, native / "c0009", workers=1)
    ingest_path(ws, roots["a"], workers=1)
    cache = tmp_path / "cache"
    first = release.build(ws, "R1.1", tmp_path / "R1.1", cache_dir=cache)
    release.publish(ws, "R1.1")
    manifest = (tmp_path / "R1.1" / release.MANIFEST).read_bytes()
    plan = release.plan(ws, "R1.1").to_dict()
    assert plan["n_scans"] == 12 and plan["n_standard"] == 6 and plan["exclusions"] == {"pending": 6}
    assert main(["--home", str(ws.home), "--db", ws.url, "release", "plan", "R1.1"]) == 0
    plan_text = capsys.readouterr().out

    def still_frozen(step: str) -> None:
        again = release.build(ws, "R1.1", tmp_path / "again", cache_dir=cache, force=True)
        assert again.reproduced and again.manifest_sha256 == first.manifest_sha256, step
        assert (tmp_path / "again" / release.MANIFEST).read_bytes() == manifest, step
        assert release.plan(ws, "R1.1").to_dict() == plan, step

    def issue(scan: str, title: str) -> int:
        return tracker.open_issue(ws, scan, title).number

    # the standardized files that were pending at publication arrive
    ingest_path(ws, roots["b"], workers=1)
    still_frozen("ingest standard")
    # another cohort
    ingest_path(ws, native / "c0001", workers=1)
    still_frozen("ingest of another cohort")
    # a mask corrected (its standard-space mask regenerated), a report field corrected
    revise.replace_mask(
        ws,
        early[0],
        0,
        MaskFiles(raw=eroded(mask_bytes(ws, early[0], 0))),
        issue=issue(early[0], "Primary lesion over-traced"),
    )
    still_frozen("revise mask")
    revise.correct_metadata(ws, early[1], {"pvh": "3", "notes": "regraded"}, issue=issue(early[1], "PVH is 3"))
    still_frozen("revise metadata")
    # out of the standardized subset and back; a scan pending at publication excluded since
    revise.exclude_scan(ws, early[2], "motion artefact", issue=issue(early[2], "Motion in the standardized T1"))
    still_frozen("exclude")
    revise.include_scan(ws, early[2], issue=issue(early[2], "The motion is acceptable after all"))
    revise.exclude_scan(ws, late[0], "registration drifted", issue=issue(late[0], "Registration off by 5 mm"))
    still_frozen("include")
    revise.withdraw_scan(ws, early[3], issue=issue(early[3], "Consent withdrawn"))
    still_frozen("revise withdraw")

    issue(late[1], "Lesion 1 may be a second infarct")  # opened since, still open: not in R1.1's plan
    assert main(["--home", str(ws.home), "--db", ws.url, "release", "plan", "R1.1"]) == 0
    assert capsys.readouterr().out == plan_text
    assert release.plan(ws, "R1.1").to_dict() == plan
    # the registry did move on: a release built now holds the new cohort, files and corrections
    now = release.plan(ws, "R1.2").to_dict()
    assert now["n_scans"] == 12 + 6 - 1 and now["n_standard"] == 6 + 6 - 2
    assert now["exclusions"] == {"pending": 6, "revision": 1}  # c0001 not standardized; one excluded since
    assert now["exclusions"]["revision"] == 1 and len(now["changes"]) == 6
