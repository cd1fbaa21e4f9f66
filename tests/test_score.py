"""``atlas-registry score`` (issue #20): metrics checked by hand on small cases and against an independent
implementation (plain numpy + scipy, written here) on the test split of a release of the tiny export
registry; every refusal names the file; the leaderboard ranks by weighted mean rank; nothing is written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import EXPORT_SPEC, assert_valid, build_export_registry
from scipy import ndimage
from sqlmodel import Session, select

from atlas_registry import db, release
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.scoring import rank, scan_metrics, score
from atlas_registry.store import sha256_file

# Cohort c0003 only; seed 0 puts c0003s0002 (two standardized scans, three lesions at t01) in the test set,
# c0003s0001 (one standardized scan) in the hidden set and c0003s0003 in training.
# (Parquet only: scoring reads the registry, not the archives; a quicker build.)
SPEC = (
    EXPORT_SPEC.replace('cohorts = "all"', 'cohorts = ["c0003"]').replace(
        'archives = ["icpsr", "bids", "parquet"]', 'archives = ["parquet"]'
    )
    + "\n[splits]\nseed = 0\ntest = 1\nhidden = 2\n"
)


def vol(*boxes, shape=(12, 12, 12)) -> np.ndarray:
    a = np.zeros(shape, bool)
    for b in boxes:
        a[b] = True
    return a


# -- hand-computed cases ----------------------------------------------------------------------------


def test_empty_versus_empty_is_perfect():
    m = scan_metrics(vol(), vol(), 1.0)
    assert m == {"dice": 1.0, "volume_diff_mm3": 0.0, "volume_diff_voxels": 0, "lesion_count_diff": 0, "lesion_f1": 1.0}


def test_a_missed_lesion_and_a_lesion_predicted_in_an_empty_scan():
    t = vol(np.s_[2:4, 2:4, 2:4])  # 8 voxels
    m = scan_metrics(t, vol(), 2.0)
    assert m == {
        "dice": 0.0,
        "volume_diff_mm3": 16.0,
        "volume_diff_voxels": 8,
        "lesion_count_diff": 1,
        "lesion_f1": 0.0,
    }
    m = scan_metrics(vol(), t, 2.0)
    assert m["dice"] == 0.0 and m["lesion_f1"] == 0.0 and m["lesion_count_diff"] == 1


def test_a_split_lesion():
    """One true lesion (a 1x1x8 bar), predicted as two pieces of it: detected once, no false positive."""
    t = vol(np.s_[5, 5, 2:10])
    p = vol(np.s_[5, 5, 2:4], np.s_[5, 5, 7:10])  # 2 + 3 voxels, a gap of three between them
    m = scan_metrics(t, p, 1.0)
    assert m["dice"] == pytest.approx(2 * 5 / (8 + 5))
    assert m["lesion_count_diff"] == 1
    assert m["lesion_f1"] == 1.0  # TP 1, FP 0, FN 0
    assert (m["volume_diff_voxels"], m["volume_diff_mm3"]) == (3, 3.0)


def test_a_merged_lesion():
    """Two true lesions predicted as one blob covering both and the gap between them."""
    t = vol(np.s_[2:4, 2:4, 2:4], np.s_[2:4, 2:4, 6:8])  # 8 + 8
    p = vol(np.s_[2:4, 2:4, 2:8])  # 24, one component
    m = scan_metrics(t, p, 1.0)
    assert m["dice"] == pytest.approx(2 * 16 / (16 + 24))
    assert m["lesion_count_diff"] == 1
    assert m["lesion_f1"] == 1.0  # both true lesions detected, the one predicted component touches truth


def test_a_lesion_touched_by_one_voxel_and_a_false_positive():
    t = vol(np.s_[3:6, 3:6, 3:6])  # 27 voxels
    p = vol(np.s_[4, 4, 4], np.s_[9:11, 9:11, 9])  # one voxel inside it, and 4 voxels far away
    m = scan_metrics(t, p, 1.0)
    assert m["dice"] == pytest.approx(2 * 1 / (27 + 5))
    assert m["lesion_f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 0))  # TP 1, FP 1, FN 0
    assert m["lesion_count_diff"] == 1
    # a lesion only next to the prediction (no voxel in it) is not detected
    m = scan_metrics(t, vol(np.s_[6, 4, 4]), 1.0)
    assert m["dice"] == 0.0 and m["lesion_f1"] == 0.0


def test_components_are_26_connected():
    t = vol(np.s_[1, 1, 1], np.s_[2, 2, 2])  # touching at a corner: one lesion
    p = vol(np.s_[1, 1, 1], np.s_[3, 3, 3])  # two lesions
    m = scan_metrics(t, p, 1.0)
    assert m["lesion_count_diff"] == 1
    assert m["lesion_f1"] == pytest.approx(2 / 3)  # TP 1, FP 1 (the corner voxel at 3,3,3), FN 0


def test_rank_weights_the_hidden_set_four_times():
    from atlas_registry.scoring import SplitScore, Submission

    def sub(name, test, hidden):
        s = Submission(name, name)
        for split, v in (("test", test), ("hidden", hidden)):
            summary = {"dice": v, "volume_diff_mm3": 1 - v, "volume_diff_voxels": 1 - v, "lesion_count_diff": 1 - v}
            s.splits[split] = SplitScore(split, [], {**summary, "lesion_f1": v})
        return s

    # A is better on the public test set, B on the hidden set: B wins (4x weight)
    subs = [sub("A", 0.9, 0.5), sub("B", 0.6, 0.7), sub("C", 0.1, 0.1)]
    rank(subs)
    assert [(s.name, s.rank) for s in subs] == [("B", 1), ("A", 2), ("C", 3)]
    assert subs[0].mean_rank == pytest.approx((1 * 2 + 4 * 1) / 5)
    tied = [sub("X", 0.5, 0.5), sub("Y", 0.5, 0.5)]
    rank(tied)
    assert [s.rank for s in tied] == [1, 1] and tied[0].mean_rank == 1.5


# -- on a release ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored_release(tmp_path_factory):
    """The tiny registry with a release split as above, built (not published)."""
    root = tmp_path_factory.mktemp("score")
    ws = build_export_registry(root / "ws")
    specs = root / "specs"
    specs.mkdir()
    (specs / "T1.0.toml").write_text(SPEC, encoding="utf-8")
    release.build(ws, "T1.0", root / "out", specs=specs)
    return ws, root


def truth_masks(ws, split: str) -> dict[str, nib.Nifti1Image]:
    """public scan -> union of its standard-space masks, read here straight from the tables and the
    store files (not through the release view the scorer uses)."""
    from atlas_registry.models import Lesion, LesionMask, PublicId, Release, ReleaseScan, Timepoint

    out: dict[str, nib.Nifti1Image] = {}
    with Session(db.engine(ws)) as s:
        rel = s.exec(select(Release).where(Release.name == "T1.0")).one()
        rows = s.exec(
            select(Timepoint, PublicId, LesionMask)
            .join(ReleaseScan, ReleaseScan.timepoint_id == Timepoint.id)
            .join(PublicId, PublicId.subject_id == Timepoint.subject_id)
            .join(Lesion, Lesion.timepoint_id == Timepoint.id)
            .join(LesionMask, LesionMask.lesion_id == Lesion.id)
            .where(ReleaseScan.release_id == rel.id, ReleaseScan.split == split, LesionMask.space != "native")
        ).all()
    for tp, pid, m in rows:
        raw = gzip.decompress((ws.objects_dir / m.sha256[:2] / m.sha256[2:]).read_bytes())  # objects/ab/cdef...
        img = nib.Nifti1Image.from_bytes(raw)
        key = f"sub-{pid.label}_ses-{tp.number}"
        data = np.asarray(img.dataobj) > 0
        if key in out:
            data = data | (np.asarray(out[key].dataobj) > 0)
        out[key] = nib.Nifti1Image(data.astype(np.uint8), img.affine)
    return out


def independent(t: np.ndarray, p: np.ndarray, voxel: float) -> dict:
    """The metrics as an independent reading of their definitions (loops over labels, no bounding box)."""
    t, p = t.astype(bool), p.astype(bool)
    dice = 1.0 if t.sum() + p.sum() == 0 else 2 * (t & p).sum() / (t.sum() + p.sum())
    st = ndimage.generate_binary_structure(3, 3)
    lt, nt = ndimage.label(t, st)
    lp, npred = ndimage.label(p, st)
    tp = sum(1 for i in range(1, nt + 1) if p[lt == i].any())
    fp = sum(1 for j in range(1, npred + 1) if not t[lp == j].any())
    fn = nt - tp
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return {
        "dice": float(dice),
        "volume_diff_mm3": abs(int(p.sum()) - int(t.sum())) * voxel,
        "volume_diff_voxels": abs(int(p.sum()) - int(t.sum())),
        "lesion_count_diff": abs(npred - nt),
        "lesion_f1": f1,
    }


def write_predictions(folder: Path, truth: dict, how, *, bids_names: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (scan, img) in enumerate(sorted(truth.items())):
        data = how(np.asarray(img.dataobj).astype(bool), i)
        name = f"{scan}_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz" if bids_names else f"{scan}.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.uint8), img.affine), folder / name)
        out[scan] = data
    return out


def _shift(a: np.ndarray, i: int) -> np.ndarray:
    b = np.roll(a, 1 + i % 2, axis=0)
    b[0, 0, 0] = True  # and a false positive in the corner
    return b


def test_scores_agree_with_an_independent_implementation(scored_release, tmp_path):
    ws, _ = scored_release
    truth = truth_masks(ws, "test")
    assert len(truth) == 2
    preds = write_predictions(tmp_path / "shifted", truth, _shift)
    before = {p: sha256_file(p) for p in ws.home.rglob("*") if p.is_file() and "lock" not in p.name}
    r = score(ws, [tmp_path / "shifted"], "T1.0", ["test"])
    sub = r.submissions[0]
    rows = {row["scan"]: row for row in sub.splits["test"].scans}
    assert set(rows) == set(truth)
    for scan, img in truth.items():
        want = independent(np.asarray(img.dataobj), preds[scan], 1.0)
        assert {k: rows[scan][k] for k in want} == pytest.approx(want), scan
    mean_dice = np.mean([independent(np.asarray(truth[k].dataobj), preds[k], 1.0)["dice"] for k in truth])
    assert sub.splits["test"].summary["dice"] == pytest.approx(mean_dice)
    # the scorer wrote nothing: not into the registry's home, not beside the predictions
    after = {p: sha256_file(p) for p in ws.home.rglob("*") if p.is_file() and "lock" not in p.name}
    assert after == before
    from atlas_registry.export import bids
    from atlas_registry.scoring import union_mask_name

    sc = type("S", (), {"bids_subject": "sub-ab1", "bids_session": "ses-2", "public_scan": "sub-ab1_ses-2"})()
    assert union_mask_name("sub-ab1_ses-2", "X") == Path(bids.mask_path(sc, "X", bids.UNION_DESC)).name
    assert sorted(p.name for p in (tmp_path / "shifted").iterdir()) == sorted(
        f"{k}_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz" for k in truth
    )


def test_leaderboard_over_both_splits_on_the_command_line(scored_release, tmp_path, capsys):
    ws, _ = scored_release
    truth = {**truth_masks(ws, "test"), **truth_masks(ws, "hidden")}
    assert len(truth) == 3
    write_predictions(tmp_path / "perfect", truth, lambda a, i: a, bids_names=False)
    write_predictions(tmp_path / "shifted", truth, _shift)
    write_predictions(tmp_path / "empty", truth, lambda a, i: np.zeros_like(a))
    args = ["--home", str(ws.home), "score", *(str(tmp_path / n) for n in ("empty", "shifted", "perfect"))]
    page = tmp_path / "board.html"
    assert (
        main(
            [
                *args,
                "--release",
                "T1.0",
                "--split",
                "test",
                "--split",
                "hidden",
                "--format",
                "json",
                "--html",
                str(page),
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    html = page.read_text()
    assert html.index(">perfect<") < html.index(">shifted<") < html.index(">empty<")
    assert "hidden (weight 4)" in html and "<script" not in html and "http" not in html.split("</style>")[1]
    assert_valid(doc, "output/score.schema.json")
    assert [s["name"] for s in doc["submissions"]] == ["perfect", "shifted", "empty"]
    assert [s["rank"] for s in doc["submissions"]] == [1, 2, 3]
    assert doc["weights"] == {"test": 1.0, "hidden": 4.0}
    best = doc["submissions"][0]["splits"]
    assert best["test"]["summary"]["dice"] == 1.0 and best["hidden"]["summary"]["lesion_f1"] == 1.0
    assert best["test"]["n_scans"] == 2 and best["hidden"]["n_scans"] == 1
    assert main([*args[:3], str(tmp_path / "perfect"), "--release", "T1.0", "--split", "hidden"]) == 1  # test files
    assert "SCORE003" in capsys.readouterr().err
    assert main([*args[:3], str(tmp_path / "shifted"), "--release", "T1.0"]) == 1  # hidden files are extra
    capsys.readouterr()


def _expect(ws, folder: Path, code: str, name: str | None = None, split: str = "test") -> None:
    with pytest.raises(AtlasError) as e:
        score(ws, [folder], "T1.0", [split])
    assert e.value.code == code, e.value
    if name is not None:
        assert Path(e.value.path).name == name, e.value.path


def test_refusals_name_the_file(scored_release, tmp_path):
    ws, _ = scored_release
    truth = truth_masks(ws, "test")
    first, second = sorted(truth)
    ok = tmp_path / "ok"
    write_predictions(ok, truth, lambda a, i: a)
    bids = "_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"

    def variant(name: str):
        import shutil

        d = tmp_path / name
        shutil.copytree(ok, d)
        return d

    d = variant("missing")
    (d / f"{second}{bids}").unlink()
    _expect(ws, d, "SCORE002", f"{second}{bids}")
    d = variant("extra")
    (d / "notes.txt").write_text("hello")
    _expect(ws, d, "SCORE003", "notes.txt")
    d = variant("twice")
    nib.save(nib.Nifti1Image(np.asarray(truth[first].dataobj), truth[first].affine), d / f"{first}.nii.gz")
    _expect(ws, d, "SCORE003")
    d = variant("grid")
    img = truth[first]
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.uint8), img.affine), d / f"{first}{bids}")
    _expect(ws, d, "SCORE005", f"{first}{bids}")
    d = variant("affine")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine * 2), d / f"{first}{bids}")
    _expect(ws, d, "SCORE005", f"{first}{bids}")
    d = variant("binary")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 0.7, img.affine), d / f"{first}{bids}")
    _expect(ws, d, "SCORE006", f"{first}{bids}")
    d = variant("broken")
    (d / f"{second}{bids}").write_bytes(b"\x1f\x8b\x08\x00not a gzip stream")
    _expect(ws, d, "SCORE004", f"{second}{bids}")
    d = variant("header")  # a header nibabel cannot make sense of (datatype code 11)
    raw = bytearray(nib.Nifti1Image(np.asarray(img.dataobj), img.affine).to_bytes())
    raw[70:72] = (11).to_bytes(2, "little")
    (d / f"{second}{bids}").write_bytes(gzip.compress(bytes(raw)))
    _expect(ws, d, "SCORE004", f"{second}{bids}")
    _expect(ws, tmp_path / "nowhere", "SCORE007")
    _expect(ws, ok, "SCORE001", split="training")  # not a withheld split: it has nothing to score


def test_a_release_without_splits_cannot_be_scored(export_ws_fresh, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "T1.0.toml").write_text(EXPORT_SPEC.replace('"icpsr", "bids", ', ""), encoding="utf-8")
    release.build(export_ws_fresh, "T1.0", tmp_path / "out", specs=specs)
    (tmp_path / "p").mkdir()
    _expect(export_ws_fresh, tmp_path / "p", "SCORE001")
    with pytest.raises(AtlasError) as e:
        score(export_ws_fresh, [tmp_path / "p"], "T9.9", ["test"])
    assert e.value.code == "SCORE001"


def test_a_scan_without_lesions_is_scored_on_the_grid_of_its_t1(scored_release, tmp_path):
    from dataclasses import replace

    from atlas_registry.scoring import _score, truths
    from atlas_registry.store import ObjectStore

    ws, _ = scored_release
    _, ts = truths(ws, "T1.0", "test")
    bare = [replace(ts[0], masks=()), *ts[1:]]  # as if the first scan had no lesion
    truth = truth_masks(ws, "test")
    first = ts[0].public_scan
    write_predictions(tmp_path / "p", truth, lambda a, i: np.zeros_like(a) if i == 0 else a)
    got = _score(ObjectStore(ws.objects_dir), tmp_path / "p", bare, "test", {})
    row = next(r for r in got.scans if r["scan"] == first)
    assert (row["dice"], row["lesion_f1"], row["volume_diff_voxels"]) == (1.0, 1.0, 0)


def test_region_by_region_labelling_agrees_on_random_masks():
    """Masks of scattered voxels, blobs and chains crossing the labelling blocks (8 voxels), overlapping
    region boxes and corner contacts across block edges: the scorer agrees with the independent reading."""
    rng = np.random.default_rng(11)
    for trial in range(25):
        shape = (40, 37, 33)
        masks = []
        for _ in range(2):
            a = rng.random(shape) < rng.choice([0.002, 0.01, 0.05])
            for _ in range(rng.integers(0, 4)):  # blobs
                c = rng.integers(0, 30, 3)
                a[
                    c[0] : c[0] + rng.integers(1, 10),
                    c[1] : c[1] + rng.integers(1, 10),
                    c[2] : c[2] + rng.integers(1, 10),
                ] = True
            i = int(rng.integers(0, 20))  # a diagonal chain through block corners (26-connected only)
            for k in range(15):
                a[i + k, i + k, min(i + k, 32)] = True
            masks.append(a)
        t, p = masks
        if trial == 0:
            p = np.zeros(shape, bool)
        got = scan_metrics(t, p, 1.5)
        want = independent(t, p, 1.5)
        assert {k: got[k] for k in want} == pytest.approx(want), trial
