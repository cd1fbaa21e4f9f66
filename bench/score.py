"""Benchmark: scoring a 300-scan submission against reading its masks once (issue #20).

Target: `atlas-registry score` of a submission of 300 predicted masks on the test split takes at most
2x the floor of reading every mask involved once (each truth mask decoded from the object store and
each predicted mask read from its file with the same strict reader, ``niio.decode``, as boolean arrays,
one thread).

The registry is made directly (ORM rows, like the tests' export registry), shaped like ATLAS R2.0: 1,271
scans of 3 cohorts, a release whose splits are recorded as 655 training, 300 test and 316 hidden scans.
Only the test scans' standard-space masks are real files (1-3 ellipsoid lesions each, on the MNI152 2009
grid: 197 x 233 x 189 at 1 mm with ``--scale full``, 66 x 78 x 63 at 3 mm with ``--scale small``); every
other file row points at one small placeholder object (scoring reads none of them, the release view
reads their rows). The submission is each truth shifted by one voxel with one false-positive voxel.

    python bench/score.py [--scale full|small] [--runs 3] [--submissions 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from atlas_registry.config import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, timed, write_result  # noqa: E402

GRIDS = {"full": ((197, 233, 189), 1.0), "small": ((66, 78, 63), 3.0)}
SPLITS = {"training": 655, "test": 300, "hidden": 316}
RELEASE = "B2.0"
SPEC = f'''name = "{RELEASE}"
version = "2.0.0"
date = "2026-12-03"
title = "Scoring benchmark release"
cohorts = "all"
archives = ["parquet"]

[splits]
seed = 20
training = 655
test = 300
hidden = 316
'''


def _affine(shape, vox):
    a = np.diag([vox, vox, vox, 1.0])
    a[:3, 3] = [-(shape[0] // 2) * vox, -(shape[1] // 2) * vox, -(shape[2] // 2) * vox]
    return a


def _lesion(rng, shape, vox) -> np.ndarray:
    """One ellipsoid lesion (radii 2-25 mm) somewhere in the middle of the grid."""
    r = rng.uniform(2.0, 25.0, 3) / vox
    c = [rng.uniform(0.3, 0.7) * n for n in shape]
    lo = [max(int(c[i] - r[i]) - 1, 0) for i in range(3)]
    hi = [min(int(c[i] + r[i]) + 2, shape[i]) for i in range(3)]
    zz = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    inside = sum(((zz[i] - c[i]) / max(r[i], 0.5)) ** 2 for i in range(3)) <= 1.0
    out = np.zeros(shape, np.uint8)
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = inside
    return out


def _id(row) -> int:
    assert row.id is not None
    return int(row.id)


def make(home: Path, scale: str) -> tuple[Workspace, Path]:
    """The registry (and the submission folder ``home/pred``), made once per scale."""
    import nibabel as nib
    from sqlmodel import Session

    from atlas_registry import db, niio
    from atlas_registry.models import (
        Cohort,
        Image,
        Lesion,
        LesionMask,
        PublicId,
        Release,
        ReleaseScan,
        Revision,
        StoredObject,
        Subject,
        Timepoint,
    )
    from atlas_registry.store import ObjectStore

    ws = Workspace(home / "ws")
    pred = home / "pred"
    if (home / ".complete").exists():
        return ws, pred
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    pred.mkdir()
    db.upgrade(ws)
    store = ObjectStore(ws.objects_dir)
    shape, vox = GRIDS[scale]
    aff = _affine(shape, vox)
    rng = np.random.default_rng(20)
    when = datetime(2026, 12, 3, tzinfo=UTC)
    with Session(db.engine(ws)) as s:

        def put(data: bytes) -> str:
            sha = store.put(data, fsync=False)
            if s.get(StoredObject, sha) is None:
                s.add(
                    StoredObject(sha256=sha, size_bytes=len(data), media_type="application/x-nifti-gz", created_at=when)
                )
                s.flush()
            return sha

        hdr = nib.Nifti1Header()
        hdr.set_data_dtype(np.uint8)
        placeholder = put(niio.encode_nifti(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), aff)))
        rev = Revision(kind="ingest", author="bench", reason="bench registry", created_at=when)
        s.add(rev)
        s.flush()
        cohorts = []
        for code in ("c0001", "c0002", "c0003"):
            c = Cohort(code=code, site=f"site {code}")
            s.add(c)
            cohorts.append(c)
        s.flush()
        rel = Release(
            name=RELEASE,
            version="2.0.0",
            spec=SPEC,
            status="built",
            last_revision_id=_id(rev),
            manifest_sha256="0" * 64,
            built_at=when,
        )
        s.add(rel)
        s.flush()
        n = 0
        for split, count in SPLITS.items():
            for _ in range(count):
                n += 1
                cohort = cohorts[2] if split == "hidden" else cohorts[n % 2]
                sub = Subject(cohort_id=_id(cohort), code=f"{cohort.code}s{n:04d}", number=n)
                s.add(sub)
                s.flush()
                s.add(PublicId(subject_id=_id(sub), label=f"b{n:05d}", created_at=when))
                tp = Timepoint(subject_id=_id(sub), code=f"{sub.code}t01", number=1, standard_status="included")
                s.add(tp)
                s.flush()
                for space, (sh, vx) in (("native", ((2, 2, 2), 1.0)), ("MNI152NLin2009aSym", (shape, vox))):
                    s.add(
                        Image(
                            timepoint_id=_id(tp),
                            space=space,
                            sha256=placeholder,
                            source_name="x",
                            shape_x=sh[0],
                            shape_y=sh[1],
                            shape_z=sh[2],
                            voxel_x_mm=vx,
                            voxel_y_mm=vx,
                            voxel_z_mm=vx,
                            dtype="int16",
                            affine="[]",
                            defaced=space != "native",
                            created_rev_id=_id(rev),
                        )
                    )
                union = np.zeros(shape, bool) if split == "test" else None
                for k in range(1 + int(rng.integers(0, 3)) if split == "test" else 1):
                    les = Lesion(timepoint_id=_id(tp), number=k, created_rev_id=_id(rev))
                    s.add(les)
                    s.flush()
                    sha = placeholder
                    if union is not None:
                        m = _lesion(rng, shape, vox)
                        union |= m > 0
                        sha = put(niio.encode_nifti(nib.Nifti1Image(m, aff, hdr)))
                    for space, digest in (("native", placeholder), ("MNI152NLin2009aSym", sha)):
                        s.add(
                            LesionMask(
                                lesion_id=_id(les),
                                variant="smooth_nii",
                                space=space,
                                sha256=digest,
                                source_name="x",
                                voxel_count=1,
                                volume_mm3=1000.0,
                                centroid_x_mm=0,
                                centroid_y_mm=0,
                                centroid_z_mm=0,
                                n_components=1,
                                hemisphere="left",
                                location="cortical",
                                created_rev_id=_id(rev),
                            )
                        )
                s.add(
                    ReleaseScan(
                        release_id=_id(rel),
                        timepoint_id=_id(tp),
                        in_standard=True,
                        scan=tp.code,
                        cohort=cohort.code,
                        public_label=f"b{n:05d}",
                        split=split,
                    )
                )
                if union is not None:
                    p = np.roll(union, 1, axis=0)
                    p[0, 0, 0] = True
                    name = f"sub-b{n:05d}_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"
                    nib.save(nib.Nifti1Image(p.astype(np.uint8), aff, hdr), pred / name)
        s.commit()
    (home / ".complete").write_text("ok\n")
    return ws, pred


def read_once(ws, pred: Path) -> int:
    """The floor: every truth mask decoded from the store and every prediction read, once."""
    from sqlalchemy import text

    from atlas_registry import db, niio
    from atlas_registry.store import ObjectStore

    store = ObjectStore(ws.objects_dir)
    with db.engine(ws).connect() as conn:
        shas = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT m.sha256 FROM lesion_mask m JOIN lesion l ON l.id = m.lesion_id"
                    " JOIN release_scan rs ON rs.timepoint_id = l.timepoint_id"
                    " WHERE rs.split = 'test' AND m.space != 'native'"
                )
            )
        ]
    n = 0
    for sha in shas:
        n += int((np.asanyarray(niio.decode(store.get(sha), sha).dataobj) > 0).any())
    for p in sorted(pred.iterdir()):  # with the fastest reader here (the strict one score uses)
        img: Any = niio.decode(p.read_bytes(), p.name)
        n += int((np.asanyarray(img.dataobj) != 0).any())
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=list(GRIDS), default="full")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--submissions", type=int, default=3, help="folders of the leaderboard run")
    args = ap.parse_args()
    from atlas_registry.scoring import score

    t0 = time.perf_counter()
    ws, pred = make(WORK / f"score-{args.scale}", args.scale)
    made = time.perf_counter() - t0
    floor, floor_s = timed(lambda: read_once(ws, pred), args.runs)
    result = {}

    def one():
        result["r"] = score(ws, [pred], RELEASE, ["test"])

    took, took_s = timed(one, args.runs)
    sub = result["r"].submissions[0]
    assert len(sub.splits["test"].scans) == SPLITS["test"]
    board, _ = timed(lambda: score(ws, [pred] * args.submissions, RELEASE, ["test"]), 1)
    rows = {
        "scale": args.scale,
        "grid": list(GRIDS[args.scale][0]),
        "scans_scored": SPLITS["test"],
        "registry_scans": sum(SPLITS.values()),
        "setup_s": round(made, 1),
        "read_masks_once_s": round(floor, 2),
        "read_masks_once_samples": [round(x, 2) for x in floor_s],
        "score_s": round(took, 2),
        "score_samples": [round(x, 2) for x in took_s],
        "ratio": round(took / floor, 2),
        "target_ratio": 2.0,
        f"leaderboard_{args.submissions}_submissions_s": round(board, 2),
        "mean_dice": round(sub.splits["test"].summary["dice"], 4),
    }
    path = write_result(f"score-{args.scale}", rows)
    print("| scale | scans | read masks once | score | ratio (target ≤ 2) | leaderboard |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.scale} | {SPLITS['test']} | {floor:.2f} s | {took:.2f} s | {took / floor:.2f}× | "
        f"{args.submissions} submissions {board:.2f} s |"
    )
    print(f"(median of {args.runs}; samples {rows['score_samples']} vs {rows['read_masks_once_samples']}) -> {path}")
    print(f"load average: {statistics.mean(__import__('os').getloadavg()):.1f}")


if __name__ == "__main__":
    main()
