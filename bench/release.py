"""Benchmark: building a release against copying it, and an incremental build after one revision.

Targets (issue 5): a full build of the synthetic release takes at most 1.5x the time of `cp -r` of
the built tree (measured in the same run), and a build that differs from the previous one by one
revised mask takes under 5 % of the full build (derived files come from the export cache,
``<home>/cache``). Also timed: the floor of any build after a change, `cp` of the deposit zip and
its SHA-256 (one zip of every ICPSR file, so one changed member makes a new zip of the same size),
and `release verify` of the build against SHA-256 of every file in one thread (no target).

    python bench/release.py [--scale full|small] [--runs 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, synth_data, timed, write_result  # noqa: E402

RELEASE = "R1.2"


def _phases(log: str) -> dict[str, float]:
    """Seconds per phase of a build, from its progress lines (``[  t s] phase: ...``)."""
    marks = [(float(m.group(1)), m.group(2)) for m in re.finditer(r"\[\s*([\d.]+)s\] ([a-z ]+)", log)]
    return {name.strip(): round(t2 - t1, 2) for (t1, name), (t2, _) in zip(marks, marks[1:])}


def tree_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _changed(a: Path, b: Path) -> int:
    """Files whose SHA-256 differs between two builds (by MANIFEST.json)."""
    import json

    def files(d):
        return {f["path"]: f["sha256"] for f in json.loads((d / "MANIFEST.json").read_text())["files"]}

    fa, fb = files(a), files(b)
    return sum(1 for p in set(fa) | set(fb) if fa.get(p) != fb.get(p))


def revised_raw(ws, scan: str, store) -> bytes:
    """The raw VOI of the primary lesion of ``scan``, eroded by one voxel (a plausible correction)."""
    import numpy as np
    from scipy import ndimage as ndi
    from sqlmodel import select

    from atlas_registry import db, niio
    from atlas_registry.models import Lesion, LesionMask, Timepoint

    with db.session(ws) as s:
        m = s.exec(select(LesionMask).join(Lesion, Lesion.id == LesionMask.lesion_id)
                   .join(Timepoint, Timepoint.id == Lesion.timepoint_id)
                   .where(Timepoint.code == scan, Lesion.number == 0, Lesion.retired_rev_id.is_(None),
                          LesionMask.variant == "raw_voi", LesionMask.retired_rev_id.is_(None))).one()
    img = niio.decode(store.get(m.sha256), m.source_name)
    raw = np.asanyarray(img.dataobj) != 0
    return niio.encode_voi(ndi.binary_erosion(raw), img)


def single_lesion_standard_scans(ws, n: int) -> list[str]:
    """``n`` standardized scans whose primary lesion is large (erosion keeps it well above 10 mm³) and
    that have no secondary lesion (so a revision cannot reorder lesions), largest first."""
    from sqlalchemy import func
    from sqlmodel import select

    from atlas_registry import db
    from atlas_registry.models import Lesion, LesionMask, Timepoint

    with db.session(ws) as s:
        single = select(Lesion.timepoint_id).where(Lesion.retired_rev_id.is_(None)).group_by(
            Lesion.timepoint_id).having(func.count() == 1)
        rows = s.exec(select(Timepoint.code).join(Lesion, Lesion.timepoint_id == Timepoint.id)
                      .join(LesionMask, LesionMask.lesion_id == Lesion.id)
                      .where(Timepoint.standard_status == "included", Lesion.number == 0,
                             Lesion.retired_rev_id.is_(None), LesionMask.variant == "smooth_nii",
                             LesionMask.space == "native", Timepoint.id.in_(single))
                      .order_by(LesionMask.volume_mm3.desc())).all()
    return list(rows[:n])


def settle() -> None:
    """Before a timed step (not timed): write back what earlier steps left in memory and give the
    disk a moment (the file system discards freed blocks after the previous build is removed)."""
    os.sync()
    time.sleep(2)


def _verified(result) -> None:
    if not result.ok:
        raise SystemExit("release verify found errors in a fresh build:\n" + result.to_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="full", choices=["full", "small"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from atlas_registry import fixity, release, tracker
    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path
    from atlas_registry.revise import MaskFiles, replace_mask
    from atlas_registry.store import ObjectStore, sha256_file

    data = synth_data(args.scale)
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=WORK, prefix="release-"))
    try:
        ws = Workspace(tmp / "ws")
        ingest_path(ws, data / "native")
        ingest_path(ws, data / "standard")
        cache = ws.home / "cache"
        builds = tmp / "builds"
        n = [0]

        def out() -> Path:  # a new build folder; only the previous build is kept (disk space)
            shutil.rmtree(builds / f"b{n[0] - 1}", ignore_errors=True)
            n[0] += 1
            return builds / f"b{n[0]}"

        def build(dest: Path):
            return lambda: release.build(ws, RELEASE, dest, cache_dir=cache)

        # folders and the cache are removed outside the timed calls; every timed step starts settled
        s_full = []
        for _ in range(args.runs):  # cold: nothing cached
            shutil.rmtree(cache, ignore_errors=True)
            dest = out()
            settle()
            s_full.append(timed(build(dest), 1)[0])
        built = builds / f"b{n[0]}"
        files, size = tree_bytes(built)
        s_cp, copy = [], tmp / "copy"
        for _ in range(args.runs):
            shutil.rmtree(copy, ignore_errors=True)
            settle()
            s_cp.append(timed(lambda: subprocess.run(["cp", "-r", str(built), str(copy)], check=True), 1)[0])
        shutil.rmtree(copy)
        t_full, t_cp = statistics.median(s_full), statistics.median(s_cp)
        # `release verify` of the build (every file's size and SHA-256, hashed by one thread per core)
        # against its floor: SHA-256 of every file, one after another, in one thread
        s_verify, s_hash = [], []
        for _ in range(args.runs):
            settle()
            s_verify.append(timed(lambda: _verified(fixity.verify(built, ws=ws)), 1)[0])
            settle()
            s_hash.append(timed(lambda: [sha256_file(p) for p in sorted(built.rglob("*")) if p.is_file()], 1)[0])
        t_verify, t_hash = statistics.median(s_verify), statistics.median(s_hash)
        dest = out()
        settle()
        t_warm, s_warm = timed(build(dest), 1)

        # one revised mask, then the incremental build (derived files of everything else come from
        # the cache), repeated on different scans
        s_rev, s_incr, changed, parts = [], [], [], []
        store = ObjectStore(ws.objects_dir)
        for scan in single_lesion_standard_scans(ws, args.runs):
            issue = tracker.open_issue(ws, scan, "Primary lesion mask includes a rim of normal tissue",
                                       file_kind=f"{scan}_LesionRaw.voi")
            raw = revised_raw(ws, scan, store)
            s_rev.append(timed(lambda: replace_mask(ws, scan, 0, MaskFiles(raw=raw), issue=issue.number), 1)[0])
            dest = out()
            settle()
            log = io.StringIO()
            with contextlib.redirect_stderr(log):
                s_incr.append(timed(lambda: release.build(ws, RELEASE, dest, cache_dir=cache, progress=True), 1)[0])
            parts.append(_phases(log.getvalue()))
            changed.append(_changed(builds / f"b{n[0] - 1}", builds / f"b{n[0]}"))
        t_rev, t_incr = statistics.median(s_rev), statistics.median(s_incr)
        zip_path = builds / f"b{n[0]}" / "packages" / f"atlas-{RELEASE}-icpsr.zip"
        zip_bytes = zip_path.stat().st_size
        # The floor of any build after a change: the deposit zip holds every ICPSR file, so one new
        # member means a new zip of the same size, written and SHA-256-hashed for the manifest.
        # Timed as `cp` of the last zip (reflinks where the file system has them) and its SHA-256
        # with hashlib, as the build computes it (coreutils' sha256sum is several times slower).
        s_zip_cp, s_zip_sha = [], []
        for _ in range(args.runs):
            copy_zip = tmp / "zip-copy"
            copy_zip.unlink(missing_ok=True)
            settle()
            s_zip_cp.append(timed(lambda: subprocess.run(["cp", "--reflink=auto", str(zip_path), str(copy_zip)],
                                                         check=True), 1)[0])
            settle()
            s_zip_sha.append(timed(lambda: sha256_file(copy_zip), 1)[0])
            copy_zip.unlink()
        t_zip_cp, t_zip_sha = statistics.median(s_zip_cp), statistics.median(s_zip_sha)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    res = {
        "scale": args.scale,
        "release": RELEASE,
        "files": files,
        "bytes": size,
        "full_build_cold_s": t_full,
        "cp_r_s": t_cp,
        "full_over_cp": t_full / t_cp,
        "full_build_warm_cache_s": t_warm,
        "revision_s": t_rev,
        "incremental_build_s": t_incr,
        "incremental_over_full": t_incr / t_full,
        "incremental_changed_files": changed,
        "incremental_phases_s": parts,
        "zip_bytes": zip_bytes,
        "zip_copy_s": t_zip_cp,
        "zip_sha256_s": t_zip_sha,
        "zip_floor_over_full": (t_zip_cp + t_zip_sha) / t_full,
        "verify_s": t_verify,
        "verify_floor_sha256_one_thread_s": t_hash,
        "verify_over_floor": t_verify / t_hash,
        "targets": {"full_over_cp": 1.5, "incremental_over_full": 0.05},
        "samples": {"full": s_full, "cp": s_cp, "warm": s_warm, "incremental": s_incr, "revision": s_rev,
                    "zip_copy": s_zip_cp, "zip_sha256": s_zip_sha, "verify": s_verify,
                    "verify_floor": s_hash},
    }
    write_result("release" if args.scale == "full" else f"release-{args.scale}", res)
    print(f"| release {RELEASE} ({args.scale}) | {files} files, {size / 1e6:.0f} MB |")
    print("|---|---|")
    print(f"| `cp -r` of the built tree | {t_cp:.2f} s |")
    print(f"| full build, cold cache | {t_full:.2f} s ({t_full / t_cp:.2f}x cp, target <= 1.5x) |")
    print(f"| full build, warm cache, no change | {t_warm:.2f} s ({t_warm / t_cp:.2f}x cp) |")
    print(f"| one mask revision (validate + store) | {t_rev:.2f} s |")
    print(f"| incremental build after one revised mask | {t_incr:.2f} s ({100 * t_incr / t_full:.1f} % of full, "
          f"target < 5 %; {changed} files differ) |")
    print(f"| floor after any change: copy + SHA-256 of the {zip_bytes / 1e9:.2f} GB deposit zip | "
          f"{t_zip_cp:.2f} + {t_zip_sha:.2f} s ({100 * (t_zip_cp + t_zip_sha) / t_full:.1f} % of full) |")
    print(f"| release verify of the build | {t_verify:.2f} s ({t_verify / t_hash:.2f}x SHA-256 of every file in one "
          f"thread, {t_hash:.2f} s) |")
    for p in parts:
        print(f"|   phases of one incremental build | {p} |")


if __name__ == "__main__":
    main()
