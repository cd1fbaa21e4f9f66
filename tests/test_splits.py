"""Benchmark splits of a release (issue #20): the ``[splits]`` specification, a deterministic, grouped and
stratified assignment recorded in ``release_scan.split`` and frozen at publication, and archives that follow
the splits without leaking anything of a withheld (test or hidden) mask.

The leak test builds the same release from two registries that differ only in the withheld scans' masks
(other shapes, volumes, places, one more lesion), their lesion annotations, reports and an issue: every
file of the two releases (archives, manifest, deposit zip, release notes) and of their HTML reports must be
byte-identical. A control changes one training mask instead, and the files must differ.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import EXPORT_SPEC, build_export_registry
from sqlmodel import Session, select

from atlas_registry import db, release, splits
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.release_spec import parse_spec
from atlas_registry.store import sha256_file

# seed 1 puts subject c0003s0002 (two timepoints, three lesions at the first) in the test set; cohort
# c0001 is the hidden set; c0003s0001 and c0003s0003 are training
SPLITS = '\n[splits]\nseed = 1\ntest = 2\nhidden_cohorts = ["c0001"]\n'
TEST = ("c0003s0002t01", "c0003s0002t02")
HIDDEN = ("c0001s0001t01", "c0001s0002t01")
TRAINING = ("c0003s0001t01", "c0003s0003t01")


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def specs_dir(tmp_path: Path, text: str = EXPORT_SPEC + SPLITS) -> Path:
    d = tmp_path / "specs"
    d.mkdir(exist_ok=True)
    (d / "T1.0.toml").write_text(text, encoding="utf-8")
    return d


def alter_masks(ws, codes, *, extra_lesion: bool = True) -> None:
    """Give the scans ``codes`` other lesion masks (native and standard: another place and size), other
    annotations and reports, an extra lesion and an issue, as if their tracings had been different. The
    revisions stay the same."""
    from atlas_registry import niio
    from atlas_registry.models import (
        Image,
        Issue,
        Lesion,
        LesionAnnotation,
        LesionMask,
        ScanReport,
        StoredObject,
        Timepoint,
    )
    from atlas_registry.store import ObjectStore

    store = ObjectStore(ws.objects_dir)
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    with Session(db.engine(ws)) as s:

        def put(img) -> str:
            data = niio.encode_nifti(img)
            sha = store.put(data)
            if s.get(StoredObject, sha) is None:
                s.add(
                    StoredObject(sha256=sha, size_bytes=len(data), media_type="application/x-nifti-gz", created_at=when)
                )
                s.flush()
            return sha

        for code in codes:
            tp = s.exec(select(Timepoint).where(Timepoint.code == code)).one()
            ref = {
                i.space: niio.decode(store.get(i.sha256), i.sha256)
                for i in s.exec(select(Image).where(Image.timepoint_id == tp.id)).all()
            }
            lesions = s.exec(select(Lesion).where(Lesion.timepoint_id == tp.id)).all()
            if extra_lesion:
                les = Lesion(timepoint_id=tp.id, number=len(lesions), created_rev_id=lesions[0].created_rev_id)
                s.add(les)
                s.flush()
                for m in s.exec(select(LesionMask).where(LesionMask.lesion_id == lesions[0].id)).all():
                    s.add(LesionMask(**{**m.model_dump(exclude={"id"}), "lesion_id": les.id}))
                a = s.exec(select(LesionAnnotation).where(LesionAnnotation.lesion_id == lesions[0].id)).one()
                s.add(LesionAnnotation(**{**a.model_dump(exclude={"id"}), "lesion_id": les.id}))
                s.flush()
                lesions = [*lesions, les]
            for k, les in enumerate(lesions):
                for m in s.exec(select(LesionMask).where(LesionMask.lesion_id == les.id)).all():
                    img = ref[m.space]
                    data = np.zeros(img.shape, np.uint8)
                    data[6 - k : 9, 7:11, 5 + k % 2 : 8] = 1  # elsewhere, larger, one per lesion
                    m.sha256 = put(nib.Nifti1Image(data, img.affine, img.header))
                    m.voxel_count, m.volume_mm3 = int(data.sum()), float(data.sum()) * 1.7
                    m.centroid_x_mm, m.hemisphere, m.location = 12.5, "right", "cortical"
                    s.add(m)
                a = s.exec(select(LesionAnnotation).where(LesionAnnotation.lesion_id == les.id)).one()
                a.hemisphere, a.location = "right", "cortical"
                s.add(a)
            r = s.exec(select(ScanReport).where(ScanReport.timepoint_id == tp.id)).one()
            r.primary_location, r.notes, r.pvh = "insula and putamen", "large lesion, right insula", 3
            s.add(r)
            tp.primary_chosen_by_neuroradiologist = True
            s.add(tp)
            s.add(
                Issue(
                    timepoint_id=tp.id,
                    title=f"{code}: the lesion reaches the right insula",
                    body="mask misses 40 voxels",
                    status="open",
                    opened_by="tester",
                    opened_at=when,
                )
            )
        s.commit()


def build_and_publish(ws, specs: Path, out: Path) -> dict[str, str]:
    release.build(ws, "T1.0", out, specs=specs)
    release.publish(ws, "T1.0", specs=specs, out=out)
    return tree(out)


# -- the specification --------------------------------------------------------------------------


def test_spec_section_is_read_and_checked():
    sp = parse_spec(EXPORT_SPEC + SPLITS).splits
    assert sp is not None and (sp.seed, sp.test, sp.hidden_cohorts) == (1, 2, ("c0001",))
    assert parse_spec(EXPORT_SPEC).splits is None
    weights = parse_spec(EXPORT_SPEC + "\n[splits]\nseed = 3\ntraining = 655\ntest = 300\nhidden = 316\n").splits
    assert splits.targets(weights, 1271) == pytest.approx({"training": 655, "test": 300, "hidden": 316})
    fractions = parse_spec(EXPORT_SPEC + "\n[splits]\nseed = 3\ntest = 0.25\nhidden = 0.25\n").splits
    assert splits.targets(fractions, 100) == {"test": 25, "hidden": 25, "training": 50}
    for bad, code in (
        ("seed = 1\ntest = 0.6\nhidden = 0.5", "REL008"),  # nothing left for training
        ('seed = 1\ntest = 2\nhidden = 1\nhidden_cohorts = ["c0001"]', "REL008"),
        ("seed = 1\nhidden = 2", "REL008"),  # no test set
        ("seed = 1\ntest = 2\nsize_classes_mm3 = [9.0, 3.0]", "REL008"),
        ("test = 2", "REL007"),  # no seed
        ("seed = 1\ntest = 1.5", "REL007"),  # a fraction must be below 1
        ("seed = 1\ntest = -3", "REL007"),
        ("seed = 1\ntest = 2\nstratify = 3", "REL007"),
    ):
        with pytest.raises(AtlasError) as e:
            parse_spec(EXPORT_SPEC + "\n[splits]\n" + bad + "\n")
        assert e.value.code == code, bad
    with pytest.raises(AtlasError) as e:  # a hidden cohort outside the release's cohorts
        parse_spec(EXPORT_SPEC.replace('cohorts = "all"', 'cohorts = ["c0003"]') + SPLITS)
    assert e.value.code == "REL008"


# -- the assignment --------------------------------------------------------------------------------


class _Scan:
    def __init__(self, code: str, volume: float):
        self.code, self.subject, self.cohort, self.timepoint = code, code[:10], code[:5], int(code[-2:])

        class _M:
            volume_mm3 = volume

        class _L:
            metrics = _M()

        self.lesions = (_L(),)


def _population(n_subjects: int = 120) -> list[_Scan]:
    rng = np.random.default_rng(5)
    scans = []
    for i in range(n_subjects):
        cohort = f"c{1 + i % 4:04d}"
        vol = float(rng.choice([800.0, 9000.0, 90000.0]))
        for t in range(1, 2 + (i % 5 == 0)):  # every fifth subject has two timepoints
            scans.append(_Scan(f"{cohort}s{i:04d}t{t:02d}", vol))
    return scans


def test_assignment_is_grouped_stratified_deterministic_and_sized():
    scans = _population()
    spec = parse_spec(EXPORT_SPEC + '\n[splits]\nseed = 7\ntest = 0.25\nhidden_cohorts = ["c0004"]\n').splits
    got = splits.assign(scans, spec)
    assert got == splits.assign(list(reversed(scans)), spec)  # the order of the rows does not matter
    assert got != splits.assign(scans, parse_spec(EXPORT_SPEC + SPLITS.replace("seed = 1", "seed = 8")).splits)
    by_subject: dict[str, set] = {}
    for s in scans:
        by_subject.setdefault(s.subject, set()).add(got[s.code])
    assert all(len(v) == 1 for v in by_subject.values())  # a participant is in one split
    assert {got[s.code] for s in scans if s.cohort == "c0004"} == {"hidden"}
    assert "hidden" not in {got[s.code] for s in scans if s.cohort != "c0004"}
    pool = [s for s in scans if s.cohort != "c0004"]
    n_test = sum(got[s.code] == "test" for s in pool)
    assert abs(n_test - 0.25 * len(pool)) <= 1
    # stratified: every (cohort, size class) stratum has its share of the test set, within a subject or two
    for cohort in ("c0001", "c0002", "c0003"):
        for vol in (800.0, 9000.0, 90000.0):
            stratum = [s for s in pool if s.cohort == cohort and s.lesions[0].metrics.volume_mm3 == vol]
            share = sum(got[s.code] == "test" for s in stratum)
            assert abs(share - 0.25 * len(stratum)) <= 2.5, (cohort, vol, share, len(stratum))


def test_counts_beyond_the_release_are_refused(export_ws, tmp_path):
    specs = specs_dir(tmp_path, EXPORT_SPEC + '\n[splits]\nseed = 1\ntest = 9\nhidden_cohorts = ["c0001"]\n')
    with pytest.raises(AtlasError) as e:
        release.plan(export_ws, "T1.0", specs=specs)
    assert e.value.code == "REL018"


def test_plan_shows_the_splits_and_build_records_them_frozen(export_ws_fresh, tmp_path, capsys):
    from atlas_registry.models import Release, ReleaseScan

    ws, specs = export_ws_fresh, specs_dir(tmp_path)
    p = release.plan(ws, "T1.0", specs=specs)
    assert p.splits == {
        "training": {"scans": 2, "subjects": 2, "standard": 1},
        "test": {"scans": 2, "subjects": 1, "standard": 2},
        "hidden": {"scans": 2, "subjects": 2, "standard": 0},
    }
    assert main(["--home", str(ws.home), "release", "plan", "T1.0", "--specs", str(specs)]) == 0
    assert "splits (seed 1): training 2 scans" in capsys.readouterr().out
    release.build(ws, "T1.0", tmp_path / "out", specs=specs)
    release.publish(ws, "T1.0", specs=specs, out=tmp_path / "out")
    with Session(db.engine(ws)) as s:
        rel = s.exec(select(Release).where(Release.name == "T1.0")).one()
        got = dict(s.exec(select(ReleaseScan.scan, ReleaseScan.split).where(ReleaseScan.release_id == rel.id)).all())
    assert got == {
        **dict.fromkeys(TEST, "test"),
        **dict.fromkeys(HIDDEN, "hidden"),
        **dict.fromkeys(TRAINING, "training"),
    }
    # frozen: published, the recorded splits hold whatever the specification file says now
    (specs / "T1.0.toml").write_text(EXPORT_SPEC + SPLITS.replace("seed = 1", "seed = 0"), encoding="utf-8")
    assert release.plan(ws, "T1.0", specs=specs).splits["test"]["subjects"] == 1
    with Session(db.engine(ws)) as s:
        from atlas_registry.export.view import recorded_view

        rel = s.exec(select(Release).where(Release.name == "T1.0")).one()
        view = recorded_view(s, parse_spec(rel.spec), rel)
    assert {sc.code for sc in view.scans if sc.split == "test"} == set(TEST)
    assert release.build(ws, "T1.0", tmp_path / "again", specs=specs).reproduced


# -- archives follow the splits; nothing of a withheld mask leaks ---------------------------------


def test_archives_follow_the_splits(export_ws_fresh, tmp_path):
    ws, specs = export_ws_fresh, specs_dir(tmp_path)
    out = tmp_path / "out"
    release.build(ws, "T1.0", out, specs=specs)
    files = set(tree(out))
    labels = {}
    with Session(db.engine(ws)) as s:
        from atlas_registry.models import PublicId, Subject

        for sub, pid in s.exec(select(Subject, PublicId).join(PublicId, PublicId.subject_id == Subject.id)).all():
            labels[sub.code] = f"sub-{pid.label}"
    test_sub, train_sub = labels["c0003s0002"], labels["c0003s0001"]
    # BIDS: training with masks, test with T1 only, hidden absent
    assert any(f.startswith(f"bids/{train_sub}/") and f.endswith("_mask.nii.gz") for f in files)
    assert any(f.startswith(f"bids/{test_sub}/") and f.endswith("_T1w.nii.gz") for f in files)
    assert not any(test_sub in f and "mask" in f for f in files)
    for code in HIDDEN:
        assert not any(labels[code[:10]] in f or code in f for f in files)
    # ICPSR: training in native/ with masks, test T1 only in test/, hidden absent
    assert "icpsr/native/c0003/c0003s0001t01/c0003s0001t01_LesionSmooth.nii.gz" in files
    assert {f for f in files if "c0003s0002" in f} == {
        "icpsr/test/c0003/c0003s0002t01/c0003s0002t01.nii.gz",
        "icpsr/test/c0003/c0003s0002t02/c0003s0002t02.nii.gz",
    } | {
        f
        for f in files
        if f.startswith("packages/") and "c0003s0002" in f and f.endswith(".nii.gz") and "Lesion" not in f
    }
    # every table says the split
    part = (out / "bids/participants.tsv").read_text().splitlines()
    head = part[0].split("\t")
    rows = {r.split("\t")[0]: dict(zip(head, r.split("\t"), strict=True)) for r in part[1:]}
    assert head[-1] == "split" and rows[test_sub]["split"] == "test" and rows[train_sub]["split"] == "training"
    assert rows[test_sub]["n_lesions"] == rows[test_sub]["lesion_volume"] == rows[test_sub]["primary_location"] == "n/a"
    assert json.loads((out / "bids/participants.json").read_text())["split"]["Levels"]
    scans = pq.read_table(out / "parquet/scans.parquet").to_pylist()
    assert {r["split"] for r in scans} == {"training", "test"} and len(scans) == 4
    assert all(r["n_lesions"] is None and r["total_volume_mm3"] is None for r in scans if r["split"] == "test")
    lesions = pq.read_table(out / "parquet/lesions.parquet").to_pylist()
    assert {r["scan"].split("_")[0] for r in lesions} == {train_sub, labels["c0003s0003"]}
    masks = pq.read_table(out / "parquet/masks.parquet").to_pylist()
    assert {r["scan"].split("_")[0] for r in masks} == {train_sub}
    crosswalk = (out / "icpsr/crosswalk.csv").read_text().splitlines()
    assert crosswalk[0].endswith(",split") and len(crosswalk) == 5
    assert "test" in (out / "bids/README").read_text().lower()
    notes = (out / "icpsr/README.md").read_text()
    assert "Benchmark splits: training 2 scans" in notes and "hidden 2 scans (not released)" in notes
    assert "low_resolution" not in notes  # the low-resolution scans are the hidden cohort's: not released


def test_no_withheld_mask_information_reaches_any_file(tmp_path):
    """Two registries differing only in the withheld scans' masks (and what describes them) give
    byte-identical releases and reports; a changed training mask changes them (the test can fail)."""
    from atlas_registry.report import build_report

    trees, reports, lesions = {}, {}, {}
    for name, altered in (("a", ()), ("b", TEST + HIDDEN), ("c", TRAINING[:1])):
        ws = build_export_registry(tmp_path / name / "ws")
        if altered:
            alter_masks(ws, altered, extra_lesion=name == "b")
        specs = specs_dir(tmp_path / name)
        plan = release.plan(ws, "T1.0", specs=specs)
        if name != "c":
            assert plan.splits["test"]["subjects"] == 1  # the same assignment
        lesions[name] = plan.n_lesions
        trees[name] = build_and_publish(ws, specs, tmp_path / name / "out")
        build_report(ws, tmp_path / name / "report", release="T1.0")
        reports[name] = tree(tmp_path / name / "report")
    assert lesions["b"] == lesions["a"] + 4  # the registries differ: b has other masks and more lesions
    assert trees["a"] == trees["b"]
    assert reports["a"] == reports["b"]
    assert trees["a"] != trees["c"] and reports["a"] != reports["c"]
    # and the texts of b name nothing of what was changed
    for root in (tmp_path / "b" / "out", tmp_path / "b" / "report"):
        for p in root.rglob("*"):
            if p.is_file() and p.suffix in (".md", ".tsv", ".json", ".csv", ".html", ".txt", ""):
                text = p.read_text(errors="replace")
                assert "insula" not in text and "40 voxels" not in text, p
