"""Benchmark: building a release against copying it, and an incremental build after one revision.

Targets (issue 5): a full build of the synthetic release takes at most 1.5x the time of `cp -r` of
the built tree (measured in the same run), and a build that differs from the previous one by one
revised mask takes under 5 % of the full build (derived files come from the export cache,
``<home>/cache``).

    python bench/release.py [--scale full|small] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, synth_data, timed, write_result  # noqa: E402

RELEASE = "R1.2"


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


def largest_standard_primary(ws) -> str:
    """A standardized scan whose primary lesion is large (erosion keeps it well above 10 mm³) and has
    no secondary lesion (so the revision cannot reorder lesions)."""
    from sqlalchemy import func
    from sqlmodel import select

    from atlas_registry import db
    from atlas_registry.models import Lesion, LesionMask, Timepoint

    with db.session(ws) as s:
        single = select(Lesion.timepoint_id).where(Lesion.retired_rev_id.is_(None)).group_by(
            Lesion.timepoint_id).having(func.count() == 1)
        row = s.exec(select(Timepoint.code).join(Lesion, Lesion.timepoint_id == Timepoint.id)
                     .join(LesionMask, LesionMask.lesion_id == Lesion.id)
                     .where(Timepoint.standard_status == "included", Lesion.number == 0,
                            Lesion.retired_rev_id.is_(None), LesionMask.variant == "smooth_nii",
                            LesionMask.space == "native", Timepoint.id.in_(single))
                     .order_by(LesionMask.volume_mm3.desc())).first()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="full", choices=["full", "small"])
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()

    from atlas_registry import release, tracker
    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path
    from atlas_registry.revise import MaskFiles, replace_mask
    from atlas_registry.store import ObjectStore

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
            os.sync()  # every timed step starts with nothing left to write back (not timed)
            return builds / f"b{n[0]}"

        def build(dest: Path):
            return lambda: release.build(ws, RELEASE, dest, cache_dir=cache)

        # folders and the cache are removed outside the timed calls
        s_full = []
        for _ in range(args.runs):  # cold: nothing cached
            shutil.rmtree(cache, ignore_errors=True)
            s_full.append(timed(build(out()), 1)[0])
        built = builds / f"b{n[0]}"
        files, size = tree_bytes(built)
        s_cp, copy = [], tmp / "copy"
        for _ in range(max(args.runs, 3)):
            shutil.rmtree(copy, ignore_errors=True)
            os.sync()
            s_cp.append(timed(lambda: subprocess.run(["cp", "-r", str(built), str(copy)], check=True), 1)[0])
        shutil.rmtree(copy)
        t_full, t_cp = statistics.median(s_full), statistics.median(s_cp)
        t_warm, s_warm = timed(build(out()), 1)

        # one revised mask, then the incremental build (derived files of everything else come from the cache)
        scan = largest_standard_primary(ws)
        issue = tracker.open_issue(ws, scan, "Primary lesion mask includes a rim of normal tissue",
                                   file_kind=f"{scan}_LesionRaw.voi")
        raw = revised_raw(ws, scan, ObjectStore(ws.objects_dir))
        t_rev, _ = timed(lambda: replace_mask(ws, scan, 0, MaskFiles(raw=raw), issue=issue.number), 1)
        t_incr, s_incr = timed(build(out()), 1)
        changed = _changed(builds / f"b{n[0] - 1}", builds / f"b{n[0]}")
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
        "targets": {"full_over_cp": 1.5, "incremental_over_full": 0.05},
        "samples": {"full": s_full, "cp": s_cp, "warm": s_warm, "incremental": s_incr},
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


if __name__ == "__main__":
    main()
