"""Revisions on real synthetic data (cohorts c0001 and c0009 ingested for real): the whole
issue -> revision -> release loop, derivation, renumbering, refusals, history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from sqlalchemy import func
from sqlmodel import Session, select
from test_ingest import snapshot  # row counts of every table and the store's file list

from atlas_registry import db, fixity, niio, release, revise, tracker
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.history import scan_history
from atlas_registry.models import Issue, Lesion, LesionAnnotation, LesionMask, Revision, ScanReport, Timepoint
from atlas_registry.naming import STANDARD_SPACE
from atlas_registry.revise import MaskFiles
from atlas_registry.store import ObjectStore, sha256_file

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
TWO_LESIONS = "c0009s0012t01"  # standardized, primary and one secondary
SEVEN_LESIONS = "c0009s0025t01"
LOW_RES = "c0001s0006t01"  # 1.5 T cohort: no standard-space files


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def masks_of(ws, scan: str) -> dict[tuple[int, str, str], LesionMask]:
    """Current mask rows of ``scan`` by (lesion number, variant, space)."""
    with Session(db.engine(ws)) as s:
        q = (
            select(Lesion.number, LesionMask)
            .join(LesionMask, LesionMask.lesion_id == Lesion.id)
            .join(Timepoint, Timepoint.id == Lesion.timepoint_id)
            .where(Timepoint.code == scan)
            .where(Lesion.retired_rev_id.is_(None), LesionMask.retired_rev_id.is_(None))
        )
        return {(n, m.variant, m.space): m for n, m in s.exec(q).all()}


def mask_bytes(ws, scan: str, number: int, variant: str = "raw_voi", space: str = "native") -> bytes:
    return ObjectStore(ws.objects_dir).get(masks_of(ws, scan)[(number, variant, space)].sha256)


def eroded(data: bytes) -> bytes:
    """A raw VOI made one voxel thinner (a plausible correction), drawn on the same T1."""
    img = niio.decode(data, "LesionRaw.voi")
    return niio.encode_voi(ndi.binary_erosion(np.asanyarray(img.dataobj) != 0), img)


def current_state(ws, sql: str, scan: str):
    """One value from the current-state views (``scans``/``lesions``) that queries read."""
    from sqlalchemy import text

    with db.engine(ws).connect() as c:
        return c.execute(text(sql), {"scan": scan}).scalar_one()


def largest_single_lesion_scan(ws) -> str:
    with Session(db.engine(ws)) as s:
        single = (
            select(Lesion.timepoint_id)
            .where(Lesion.retired_rev_id.is_(None))
            .group_by(Lesion.timepoint_id)
            .having(func.count() == 1)
        )
        return s.exec(
            select(Timepoint.code)
            .join(Lesion, Lesion.timepoint_id == Timepoint.id)
            .join(LesionMask, LesionMask.lesion_id == Lesion.id)
            .where(Timepoint.standard_status == "included", Timepoint.id.in_(single), LesionMask.variant == "raw_voi")
            .order_by(LesionMask.voxel_count.desc())
        ).first()


def test_issue_revision_release_loop(ingested_two, tmp_path):
    """Ingest, build and publish R1.1, open an issue against a mask, revise it, build R1.2: the diff
    and CHANGES name exactly that change, and R1.1 rebuilt afterwards is byte-identical."""
    ws = ingested_two  # releases/R1.1.toml and R1.2.toml as the project has them
    first = release.build(ws, "R1.1", tmp_path / "R1.1")
    release.publish(ws, "R1.1")
    r11 = tree(tmp_path / "R1.1")

    scan = largest_single_lesion_scan(ws)
    issue = tracker.open_issue(
        ws,
        scan,
        "Primary lesion mask includes a rim of normal tissue",
        file_kind=f"{scan}_LesionRaw.voi",
        url="https://github.com/npnl/ATLAS/issues/42",
    )
    new_raw = eroded(mask_bytes(ws, scan, 0))
    with pytest.raises(AtlasError) as e:  # a release is published: the revision must cite its issue
        revise.replace_mask(ws, scan, 0, MaskFiles(raw=new_raw), reason="thinner")
    assert e.value.code == "REV002"
    before = masks_of(ws, scan)
    out = revise.replace_mask(ws, scan, 0, MaskFiles(raw=new_raw), issue=issue.number)
    assert out.details["standard"] == "regenerated"
    assert {f["file"] for f in out.details["files"]} == {
        f"{scan}_LesionRaw.voi",
        f"{scan}_LesionSmooth.voi",
        f"{scan}_LesionSmooth.nii.gz",
        f"{scan}_LesionSmooth_stx.nii.gz",
    }
    assert tracker.show_issue(ws, issue.number).status == "closed"

    # history is kept: the old rows are retired, not changed or deleted, and their files stay
    with Session(db.engine(ws)) as s:
        for old in before.values():
            row = s.get(LesionMask, old.id)
            assert row.sha256 == old.sha256 and row.retired_rev_id == out.revision
            assert ObjectStore(ws.objects_dir).has(old.sha256)
        assert s.exec(
            select(func.count()).select_from(LesionMask).join(Lesion).join(Timepoint).where(Timepoint.code == scan)
        ).one() == 2 * len(before)
    entries = scan_history(ws, scan)
    assert [e.kind for e in entries] == ["ingest", "attach_standard", "replace_mask"]
    assert entries[-1].issue["number"] == issue.number and entries[0].first_release == "R1.1"
    assert entries[-1].first_release is None

    assert current_state(ws, "SELECT releases FROM scans WHERE scan = :scan", scan) == "R1.1"
    release.build(ws, "R1.2", tmp_path / "R1.2")
    d = release.diff(ws, "R1.1", "R1.2")
    assert [(s.scan, s.status) for s in d.scans] == [(scan, "changed")]
    assert d.issues == [issue.number]
    assert [c.kind for c in d.scans[0].changes] == ["replace_mask"]
    changed = {Path(f["path"]).name for f in d.scans[0].files}
    assert f"{scan}_LesionRaw.voi" in changed and f"{scan}.nii.gz" not in changed  # the T1 did not change
    bids = sorted(f["path"].split("_label-L_")[-1] for f in d.scans[0].files if f["path"].startswith("bids/"))
    assert bids == ["desc-T1lesion_mask.nii.gz", "desc-primary_mask.json", "desc-primary_mask.nii.gz"], bids
    changes = (tmp_path / "R1.2" / "bids" / "CHANGES").read_text()
    block = changes.split("\n\n")[0].splitlines()
    assert block == [
        "1.2.0 2026-06-01",
        f"  - Primary lesion mask includes a rim of normal tissue (issue #{issue.number}, "
        "https://github.com/npnl/ATLAS/issues/42): lesion mask replaced",
    ]
    assert changes.split("\n\n")[1].startswith("1.1.0 2018-02-20\n")

    again = release.build(ws, "R1.1", tmp_path / "R1.1-again")
    assert again.reproduced and again.manifest_sha256 == first.manifest_sha256
    assert tree(tmp_path / "R1.1-again") == r11
    # both folders check out against their manifests and the registry's (no REL036: it knows them)
    for name in ("R1.1", "R1.2"):
        checked = fixity.verify_release(tmp_path / name, ws=ws)
        assert checked.ok and checked.report.findings == [] and checked.release == name


def test_derived_files_are_the_archive_files(_ingested_two_sqlite):
    """Smoothing a raw VOI and resampling it to standard space give back, byte for byte, the files
    the archive holds for every lesion: regeneration is the archive's own recipe."""
    ws = _ingested_two_sqlite
    store = ObjectStore(ws.objects_dir)
    checked = 0
    with Session(db.engine(ws)) as s:
        for tp in s.exec(select(Timepoint).order_by(Timepoint.code)).all():
            scan = revise._load(s, tp, store)
            for les in scan.lesions:
                m = {k: v.sha256 for k, v in les.masks.items()}
                voi, nii = revise.derive_smoothed(store.get(m[("raw_voi", "native")]), scan.image("native"))
                assert voi == store.get(m[("smooth_voi", "native")])
                assert nii == store.get(m[("smooth_nii", "native")])
                if scan.t1_std is not None:
                    std = revise.derive_standard(nii, scan.image(STANDARD_SPACE))
                    assert std == store.get(m[("smooth_nii", STANDARD_SPACE)])
                    checked += 1
    assert checked >= 20


@SQLITE_ONLY
def test_remove_and_add_lesion_renumber_by_size(ingested_two):
    ws = ingested_two
    before = masks_of(ws, SEVEN_LESIONS)
    n = max(k[0] for k in before) + 1
    sizes = [before[(i, "smooth_nii", "native")].voxel_count for i in range(1, n)]
    assert sizes == sorted(sizes, reverse=True)
    removed_raw = mask_bytes(ws, SEVEN_LESIONS, 1)
    with Session(db.engine(ws)) as s:
        note = s.exec(
            select(LesionAnnotation).where(LesionAnnotation.lesion_id == before[(1, "raw_voi", "native")].lesion_id)
        ).one()

    out = revise.remove_lesion(ws, SEVEN_LESIONS, 1, reason="a microbleed, not a lesion")
    assert out.details["renumbered"] == [[i, i - 1] for i in range(2, n)]
    after = masks_of(ws, SEVEN_LESIONS)
    assert max(k[0] for k in after) == n - 2
    for i in range(2, n):  # same files under the next lower number
        for variant, space in (("raw_voi", "native"), ("smooth_nii", "native"), ("smooth_nii", STANDARD_SPACE)):
            assert after[(i - 1, variant, space)].sha256 == before[(i, variant, space)].sha256
        assert after[(i - 1, "raw_voi", "native")].source_name == f"{SEVEN_LESIONS}_LesionRaw_{i - 1}.voi"
    with Session(db.engine(ws)) as s:
        assert (
            s.exec(
                select(func.count())
                .select_from(Lesion)
                .join(Timepoint)
                .where(Timepoint.code == SEVEN_LESIONS, Lesion.retired_rev_id == out.revision)
            ).one()
            == n - 1
        )
    assert current_state(ws, "SELECT n_lesions FROM scans WHERE scan = :scan", SEVEN_LESIONS) == n - 1
    assert current_state(ws, "SELECT MAX(lesion) FROM lesions WHERE scan = :scan", SEVEN_LESIONS) == n - 2

    # adding it back: it is the largest secondary again, so it becomes _1 and the others move up;
    # its derived and standard-space files are exactly the ones it had
    back = revise.add_lesion(
        ws,
        SEVEN_LESIONS,
        MaskFiles(raw=removed_raw),
        tracer=note.tracer,
        reviewer=note.reviewer,
        reason="it was a lesion after all",
    )
    assert back.details["renumbered"] == [[i - 1, i] for i in range(2, n)]
    final = masks_of(ws, SEVEN_LESIONS)
    assert {k: m.sha256 for k, m in final.items()} == {k: m.sha256 for k, m in before.items()}
    assert [e.kind for e in scan_history(ws, SEVEN_LESIONS)][-2:] == ["remove_lesion", "add_lesion"]


@SQLITE_ONLY
def test_invalid_or_pointless_revisions_write_nothing(ingested_two):
    ws = ingested_two
    other = tracker.open_issue(ws, SEVEN_LESIONS, "unrelated")
    mine = tracker.open_issue(ws, TWO_LESIONS, "masks")
    both = niio.encode_voi(
        (np.asanyarray(niio.decode(mask_bytes(ws, TWO_LESIONS, 0), "a.voi").dataobj) != 0)
        | (np.asanyarray(niio.decode(mask_bytes(ws, TWO_LESIONS, 1), "b.voi").dataobj) != 0),
        niio.decode(mask_bytes(ws, TWO_LESIONS, 0), "a.voi"),
    )
    empty_img = niio.decode(mask_bytes(ws, TWO_LESIONS, 0), "a.voi")
    empty = niio.encode_voi(np.zeros(empty_img.shape, bool), empty_img)
    before = snapshot(ws)
    attempts = [
        ("MASK006", lambda: revise.replace_mask(ws, TWO_LESIONS, 0, MaskFiles(raw=both), issue=mine.number)),
        ("MASK002", lambda: revise.replace_mask(ws, TWO_LESIONS, 1, MaskFiles(raw=empty), issue=mine.number)),
        ("REV003", lambda: revise.replace_mask(ws, TWO_LESIONS, 0, MaskFiles(raw=both), issue=other.number)),
        (
            "REV004",
            lambda: revise.replace_mask(
                ws, TWO_LESIONS, 0, MaskFiles(raw=mask_bytes(ws, TWO_LESIONS, 0)), reason="same"
            ),
        ),
        ("REV005", lambda: revise.remove_lesion(ws, TWO_LESIONS, 5, reason="x")),
        ("REV006", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"pvh": "7"}, reason="x")),
        ("REV006", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"age": "70"}, reason="x")),
        ("REV006", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"location": "elsewhere"}, lesion=0, reason="x")),
        ("REV010", lambda: revise.remove_lesion(ws, TWO_LESIONS, 1)),  # no reason, no issue
        (
            "REV009",
            lambda: revise.replace_mask(
                ws, LOW_RES, 0, MaskFiles(raw=mask_bytes(ws, LOW_RES, 0), standard=b"x"), reason="x"
            ),
        ),
        ("REV001", lambda: revise.remove_lesion(ws, "c0009s0999t01", 0, reason="x")),
        ("DEID007", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"notes": "call jdoe@example.org"}, reason="x")),
        ("REV008", lambda: revise.include_scan(ws, TWO_LESIONS, reason="x")),
        ("REV008", lambda: revise.include_scan(ws, LOW_RES, reason="x")),
    ]
    for code, attempt in attempts:
        with pytest.raises(AtlasError) as e:
            attempt()
        assert e.value.code == code, (code, str(e.value))
        assert snapshot(ws) == before, code
    assert tracker.show_issue(ws, mine.number).status == "open"


@SQLITE_ONLY
def test_metadata_exclusion_and_history_cli(ingested_two, capsys, tmp_path):
    ws = ingested_two
    argv = ["--home", str(ws.home)]
    with Session(db.engine(ws)) as s:
        old = s.exec(
            select(ScanReport).join(Timepoint).where(Timepoint.code == TWO_LESIONS, ScanReport.retired_rev_id.is_(None))
        ).one()
    new_pvh = (old.pvh + 1) % 4
    assert (
        main(
            argv
            + [
                "issue",
                "open",
                "--scan",
                TWO_LESIONS,
                "--file",
                "metadata",
                "--title",
                "PVH misgraded",
                "--format",
                "json",
            ]
        )
        == 0
    )
    number = json.loads(capsys.readouterr().out)["number"]
    assert main(argv + ["revise", "metadata", TWO_LESIONS, "--set", f"pvh={new_pvh}", "--issue", str(number)]) == 0
    assert f"pvh: {old.pvh!r} -> {new_pvh!r}" in capsys.readouterr().out
    assert (
        main(
            argv
            + [
                "revise",
                "metadata",
                TWO_LESIONS,
                "--lesion",
                "1",
                "--set",
                "tracer=T99",
                "--reason",
                "tracer recorded wrongly",
            ]
        )
        == 0
    )
    assert (
        main(argv + ["revise", "exclude", TWO_LESIONS, "--note", "motion in the standardized image", "--reason", "QC"])
        == 0
    )
    capsys.readouterr()
    assert current_state(ws, "SELECT pvh FROM scans WHERE scan = :scan", TWO_LESIONS) == new_pvh
    assert current_state(ws, "SELECT standard_status FROM scans WHERE scan = :scan", TWO_LESIONS) == "excluded"
    plan = release.plan(ws, "R1.2")
    assert plan.exclusions.get("revision") == 1
    assert main(argv + ["revise", "include", TWO_LESIONS, "--reason", "QC passed on second look"]) == 0
    capsys.readouterr()
    assert release.plan(ws, "R1.2").exclusions.get("revision") is None
    with Session(db.engine(ws)) as s:  # each toggle records the state it found (for rebuilds of earlier releases)
        toggles = s.exec(
            select(Revision.kind, Revision.details)
            .where(Revision.kind.in_(("exclude_scan", "include_scan")))
            .order_by(Revision.id)
        ).all()
    assert [(k, json.loads(d)["before"]) for k, d in toggles] == [
        ("exclude_scan", ["included", None, None]),
        ("include_scan", ["excluded", "revision", "motion in the standardized image"]),
    ]

    # a revised mask from files on disk, with its smoothed NIfTI given
    raw = tmp_path / "raw.voi"
    raw.write_bytes(eroded(mask_bytes(ws, TWO_LESIONS, 1)))
    voi, nii = revise.derive_smoothed(
        raw.read_bytes(), niio.decode(ObjectStore(ws.objects_dir).get(_t1_sha(ws, TWO_LESIONS)), "t1.nii.gz")
    )
    (tmp_path / "smooth.nii.gz").write_bytes(nii)
    assert (
        main(
            argv
            + [
                "revise",
                "mask",
                TWO_LESIONS,
                "--lesion",
                "1",
                "--raw",
                str(raw),
                "--smooth-nii",
                str(tmp_path / "smooth.nii.gz"),
                "--reason",
                "thinner",
                "--format",
                "json",
            ]
        )
        == 0
    )
    done = json.loads(capsys.readouterr().out)
    now_masks = masks_of(ws, TWO_LESIONS)
    assert now_masks[(1, "smooth_nii", "native")].sha256 == sha256_file(tmp_path / "smooth.nii.gz")
    assert now_masks[(1, "smooth_voi", "native")].sha256 == next(
        f["new"] for f in done["details"]["files"] if f["file"].endswith("_LesionSmooth_1.voi")
    )

    assert main(argv + ["history", TWO_LESIONS]) == 0
    text = capsys.readouterr().out
    assert f"issue #{number} 'PVH misgraded'" in text and "tracer: 'T" in text and "T99" in text
    assert "standardized subset: included -> excluded (revision)" in text
    assert main(argv + ["history", TWO_LESIONS, "--format", "json"]) == 0
    kinds = [e["kind"] for e in json.loads(capsys.readouterr().out)]
    assert kinds == [
        "ingest",
        "attach_standard",
        "correct_metadata",
        "correct_metadata",
        "exclude_scan",
        "include_scan",
        "replace_mask",
    ]

    # the registry as of before the correction still holds the old grade
    from atlas_registry.export import build_view
    from atlas_registry.release_spec import load_spec

    with Session(db.engine(ws)) as s:
        first_fix = s.exec(select(func.min(Revision.id)).where(Revision.issue_id == number)).one()
        then = build_view(s, load_spec("R1.2"), as_of_revision=first_fix - 1).scan(TWO_LESIONS)
        now = build_view(s, load_spec("R1.2")).scan(TWO_LESIONS)
        assert (then.report.pvh, now.report.pvh) == (old.pvh, new_pvh)
        assert then.lesions[1].tracer != "T99" and now.lesions[1].tracer == "T99"
        assert s.get(Issue, number).status == "closed"


def _t1_sha(ws, scan: str) -> str:
    from atlas_registry.models import Image

    with Session(db.engine(ws)) as s:
        return s.exec(
            select(Image.sha256)
            .join(Timepoint)
            .where(Timepoint.code == scan, Image.space == "native", Image.retired_rev_id.is_(None))
        ).one()


@SQLITE_ONLY
def test_concurrent_revisions_are_serialized(ingested_two):
    """Two revisions of the same mask at once: the write lock makes the second see the first, so
    exactly one row per file stays current and the second retires what the first wrote."""
    from concurrent.futures import ThreadPoolExecutor

    ws = ingested_two
    raw = mask_bytes(ws, TWO_LESIONS, 1)
    once = eroded(raw)
    img = niio.decode(raw, "LesionRaw_1.voi")
    shifted = niio.encode_voi(np.roll(np.asanyarray(img.dataobj) != 0, 1, axis=1), img)
    with ThreadPoolExecutor(2) as ex:
        outs = list(
            ex.map(
                lambda data: revise.replace_mask(ws, TWO_LESIONS, 1, MaskFiles(raw=data), reason="fix"), [once, shifted]
            )
        )
    first, second = sorted(outs, key=lambda o: o.revision)
    current = masks_of(ws, TWO_LESIONS)
    with Session(db.engine(ws)) as s:
        rows = s.exec(
            select(LesionMask)
            .join(Lesion)
            .join(Timepoint)
            .where(Timepoint.code == TWO_LESIONS, Lesion.number == 1, LesionMask.variant == "raw_voi")
        ).all()
    assert sum(r.retired_rev_id is None for r in rows) == 1 and len(rows) == 3
    raw_new = {f["file"]: f for f in first.details["files"]}[f"{TWO_LESIONS}_LesionRaw_1.voi"]["new"]
    assert {f["file"]: f for f in second.details["files"]}[f"{TWO_LESIONS}_LesionRaw_1.voi"]["old"] == raw_new
    assert current[(1, "raw_voi", "native")].created_rev_id == second.revision


def test_withdraw_and_reinstate_a_scan(ingested_two, synth_two_cohorts, tmp_path, capsys):
    """A withdrawn scan leaves the views and every later release; the published release keeps it and
    is rebuilt byte-identical; ingest does not bring it back; reinstating does, as it was."""
    from atlas_registry import status

    ws = ingested_two
    scan = TWO_LESIONS
    lesions = current_state(ws, "SELECT n_lesions FROM scans WHERE scan = :scan", scan)
    release.build(ws, "R1.1", tmp_path / "R1.1")
    release.publish(ws, "R1.1")
    r11 = tree(tmp_path / "R1.1")
    before = status.status(ws).content

    issue = tracker.open_issue(ws, scan, "Participant withdrew consent", url="https://github.com/npnl/ATLAS/issues/77")
    out = revise.withdraw_scan(ws, scan, issue=issue.number)
    assert out.kind == "withdraw_scan" and tracker.show_issue(ws, issue.number).status == "closed"
    assert current_state(ws, "SELECT COUNT(*) FROM scans WHERE scan = :scan", scan) == 0
    assert current_state(ws, "SELECT COUNT(*) FROM lesions WHERE scan = :scan", scan) == 0
    assert current_state(ws, "SELECT COUNT(*) FROM release_scans WHERE scan = :scan AND release = 'R1.1'", scan) == 1
    after = status.status(ws).content
    assert (after["scans"], after["lesions"]) == (before["scans"] - 1, before["lesions"] - lesions)
    assert (before["withdrawn"], after["withdrawn"]) == (0, 1)
    from atlas_registry import stats  # the overlap map of the current subset leaves it out, R1.1's keeps it

    assert scan not in [c for c, _ in stats._overlap_sources(ws, None)]
    assert scan in [c for c, _ in stats._overlap_sources(ws, "R1.1")]
    from atlas_registry import query  # docs/sql.md: scans a release published, withdrawn since

    r = query.run(
        ws,
        "SELECT rs.release, rs.scan, rs.cohort FROM release_scans rs LEFT JOIN scans s "
        "ON s.scan = rs.scan WHERE s.scan IS NULL ORDER BY rs.release, rs.scan",
    )
    assert [tuple(row) for row in r.rows] == [("R1.1", scan, scan[:5])]

    with pytest.raises(AtlasError) as e:  # nothing else applies to a withdrawn scan
        revise.exclude_scan(ws, scan, issue=tracker.open_issue(ws, scan, "exclude it").number)
    assert e.value.code == "REV011"
    with pytest.raises(AtlasError) as e:
        revise.withdraw_scan(ws, scan, issue=tracker.open_issue(ws, scan, "withdraw it again").number)
    assert e.value.code == "REV011"

    planned = release.plan(ws, "R1.2")
    assert planned.removed == [scan] and [(c.kind, c.scan) for c in planned.changes] == [("withdraw_scan", scan)]
    release.build(ws, "R1.2", tmp_path / "R1.2")
    assert [h.first_release for h in scan_history(ws, scan)][-1] is None  # built, not yet published
    release.publish(ws, "R1.2")
    assert fixity.verify_release(tmp_path / "R1.2", ws=ws).ok
    assert not any(scan in str(p) for p in (tmp_path / "R1.2" / "icpsr").rglob("*"))
    d = release.diff(ws, "R1.1", "R1.2")
    [change] = [c for c in d.scans if c.scan == scan]
    assert change.status == "removed" and [c.kind for c in change.changes] == ["withdraw_scan"]
    assert issue.number in d.issues
    changes = (tmp_path / "R1.2" / "bids" / "CHANGES").read_text().split("\n\n")[0]
    assert (
        f"Participant withdrew consent (issue #{issue.number}, https://github.com/npnl/ATLAS/issues/77): "
        "scan withdrawn" in changes
    )
    again = release.build(ws, "R1.1", tmp_path / "R1.1-again")  # the published release still holds it
    assert again.reproduced and tree(tmp_path / "R1.1-again") == r11

    snap = snapshot(ws)  # its folder is still in the source: ingest refuses rather than resurrect it
    with pytest.raises(AtlasError) as e:
        from atlas_registry.ingest import ingest_path

        ingest_path(ws, synth_two_cohorts / "native", workers=1)
    assert e.value.code == "ING006" and e.value.path == scan
    assert snapshot(ws) == snap

    back = tracker.open_issue(ws, scan, "Consent withdrawal was recorded against the wrong scan")
    revise.reinstate_scan(ws, scan, issue=back.number)
    assert current_state(ws, "SELECT n_lesions FROM scans WHERE scan = :scan", scan) == lesions
    assert status.status(ws).content == before
    with pytest.raises(AtlasError) as e:
        revise.reinstate_scan(ws, scan, issue=tracker.open_issue(ws, scan, "reinstate it twice").number)
    assert e.value.code == "REV012"
    hist = scan_history(ws, scan)  # the withdrawal is in R1.2, the first published release without the scan
    assert [(h.kind, h.first_release) for h in hist][-2:] == [("withdraw_scan", "R1.2"), ("reinstate_scan", None)]
    assert hist[0].first_release == "R1.1"
    assert main(["--home", str(ws.home), *(["--db", ws.db] if ws.db else []), "history", scan]) == 0
    text = capsys.readouterr().out
    assert "withdrawn from every future release" in text and "reinstated" in text


def test_withdraw_every_scan_of_a_subject(ingested_two, capsys):
    """A participant withdraws consent: every session goes, one revision each, citing one issue about
    any of them; an issue about someone else is refused."""
    ws = ingested_two
    subject, scans = "c0001s0015", ["c0001s0015t01", "c0001s0015t02"]
    other = tracker.open_issue(ws, TWO_LESIONS, "Someone else's problem")
    with pytest.raises(AtlasError) as e:
        revise.withdraw_subject(ws, subject, issue=other.number)
    assert e.value.code == "REV003"
    assert all(current_state(ws, "SELECT COUNT(*) FROM scans WHERE scan = :scan", sc) == 1 for sc in scans)

    issue = tracker.open_issue(ws, scans[1], "Participant withdrew consent for every session")
    assert (
        main(
            [
                "--home",
                str(ws.home),
                *(["--db", ws.db] if ws.db else []),
                "revise",
                "withdraw",
                subject,
                "--issue",
                str(issue.number),
                "--format",
                "json",
            ]
        )
        == 0
    )
    outcomes = json.loads(capsys.readouterr().out)
    assert [(o["scan"], o["kind"], o["issue"]) for o in outcomes] == [
        (sc, "withdraw_scan", issue.number) for sc in scans
    ]
    assert all(current_state(ws, "SELECT COUNT(*) FROM scans WHERE scan = :scan", sc) == 0 for sc in scans)
    assert tracker.show_issue(ws, issue.number).status == "closed"
    with pytest.raises(AtlasError) as e:
        revise.withdraw_subject(ws, subject, reason="again")
    assert e.value.code == "REV011"
    with pytest.raises(AtlasError) as e:
        revise.withdraw_subject(ws, "c0001s0999", reason="nobody")
    assert e.value.code == "REV001"
