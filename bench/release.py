"""Benchmark: building a release against copying it, builds that cost what changed, publication.

Targets (issues 5 and 18), medians of ``--runs``:
- a cold full build (empty cache, new folder) takes at most 1.5x `cp -r` of the built tree;
- a build of an unchanged registry into the folder of the previous build (``--force``, as a curator
  iterating on a release does) takes at most 2 % of the cold build;
- after one revised mask, a build into the previous build's folder takes at most 5 % of the cold build;
- `release publish` (the deposit zip, written once) takes at most 1.5x the floor of copying the zip's
  payload (the bag folder, `cp -r`) and hashing it once (SHA-256, hashlib, one thread).
Also timed: `release verify` of the build against SHA-256 of every file in one thread (no target).

    python bench/release.py [--scale full|small] [--runs 3]
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
    return {name.strip(): round(t2 - t1, 2) for (t1, name), (t2, _) in zip(marks, marks[1:], strict=False)}


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
        m = s.exec(
            select(LesionMask)
            .join(Lesion, Lesion.id == LesionMask.lesion_id)
            .join(Timepoint, Timepoint.id == Lesion.timepoint_id)
            .where(
                Timepoint.code == scan,
                Lesion.number == 0,
                Lesion.retired_rev_id.is_(None),
                LesionMask.variant == "raw_voi",
                LesionMask.retired_rev_id.is_(None),
            )
        ).one()
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
        single = (
            select(Lesion.timepoint_id)
            .where(Lesion.retired_rev_id.is_(None))
            .group_by(Lesion.timepoint_id)
            .having(func.count() == 1)
        )
        rows = s.exec(
            select(Timepoint.code)
            .join(Lesion, Lesion.timepoint_id == Timepoint.id)
            .join(LesionMask, LesionMask.lesion_id == Lesion.id)
            .where(
                Timepoint.standard_status == "included",
                Lesion.number == 0,
                Lesion.retired_rev_id.is_(None),
                LesionMask.variant == "smooth_nii",
                LesionMask.space == "native",
                Timepoint.id.in_(single),
            )
            .order_by(LesionMask.volume_mm3.desc())
        ).all()
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
    from atlas_registry.release_spec import load_spec
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

        def build(dest: Path, force: bool = False):
            return lambda: release.build(ws, RELEASE, dest, cache_dir=cache, force=force)

        # folders and the cache are removed outside the timed calls; every timed step starts settled
        s_full = []
        for _ in range(args.runs):  # cold: nothing cached, a new folder
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
            s_verify.append(timed(lambda: _verified(fixity.verify_release(built, ws=ws)), 1)[0])
            settle()
            s_hash.append(timed(lambda: [sha256_file(p) for p in sorted(built.rglob("*")) if p.is_file()], 1)[0])
        t_verify, t_hash = statistics.median(s_verify), statistics.median(s_hash)

        # an unchanged registry, built again into the same folder
        s_same = []
        for _ in range(args.runs):
            settle()
            s_same.append(timed(build(built, force=True), 1)[0])
        t_same = statistics.median(s_same)

        # one revised mask, then a build into the previous build's folder, repeated on different scans
        s_rev, s_incr, changed, parts = [], [], [], []
        store = ObjectStore(ws.objects_dir)
        previous = tmp / "previous-manifest.json"
        for scan in single_lesion_standard_scans(ws, args.runs):
            issue = tracker.open_issue(
                ws, scan, "Primary lesion mask includes a rim of normal tissue", file_kind=f"{scan}_LesionRaw.voi"
            )
            raw = revised_raw(ws, scan, store)
            s_rev.append(
                timed(
                    lambda scan=scan, raw=raw, issue=issue: replace_mask(
                        ws, scan, 0, MaskFiles(raw=raw), issue=issue.number
                    ),
                    1,
                )[0]
            )
            (previous.parent / "prev").mkdir(exist_ok=True)
            shutil.copyfile(built / "MANIFEST.json", previous.parent / "prev" / "MANIFEST.json")
            settle()
            log = io.StringIO()
            with contextlib.redirect_stderr(log):
                s_incr.append(
                    timed(lambda: release.build(ws, RELEASE, built, cache_dir=cache, force=True, progress=True), 1)[0]
                )
            parts.append(_phases(log.getvalue()))
            changed.append(_changed(previous.parent / "prev", built))
        t_rev, t_incr = statistics.median(s_rev), statistics.median(s_incr)

        # publication: the deposit zip of the bag, written once; against copying the bag's payload
        # (`cp -r` of the bag folder) and hashing it once
        spec = load_spec(RELEASE)
        bag = built / "packages" / f"atlas-{RELEASE}-icpsr"
        manifest = (built / "MANIFEST.json").read_bytes()
        s_pub, s_bag_cp, s_bag_sha = [], [], []
        for _ in range(args.runs):
            for p in (built / "packages").glob("*.zip"):
                p.unlink()
            settle()
            s_pub.append(timed(lambda: release._write_publication(built, spec, manifest), 1)[0])
            shutil.rmtree(copy, ignore_errors=True)
            settle()
            s_bag_cp.append(timed(lambda: subprocess.run(["cp", "-r", str(bag), str(copy)], check=True), 1)[0])
            settle()
            s_bag_sha.append(timed(lambda: [sha256_file(p) for p in sorted(copy.rglob("*")) if p.is_file()], 1)[0])
        shutil.rmtree(copy, ignore_errors=True)
        for p in ("packages/SHA256SUMS", "packages/RELEASE-NOTES.md", f"packages/atlas-{RELEASE}-icpsr.zip"):
            (built / p).unlink()
        settle()
        t_publish_cmd = timed(lambda: release.publish(ws, RELEASE, out=built), 1)[0]  # once: it freezes
        zip_bytes = (built / "packages" / f"atlas-{RELEASE}-icpsr.zip").stat().st_size
        t_pub, t_bag_cp, t_bag_sha = (
            statistics.median(s_pub),
            statistics.median(s_bag_cp),
            statistics.median(s_bag_sha),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    floor = t_bag_cp + t_bag_sha
    res = {
        "scale": args.scale,
        "release": RELEASE,
        "files": files,
        "bytes": size,
        "full_build_cold_s": t_full,
        "cp_r_s": t_cp,
        "full_over_cp": t_full / t_cp,
        "unchanged_build_s": t_same,
        "unchanged_over_full": t_same / t_full,
        "revision_s": t_rev,
        "incremental_build_s": t_incr,
        "incremental_over_full": t_incr / t_full,
        "incremental_changed_files": changed,
        "incremental_phases_s": parts,
        "zip_bytes": zip_bytes,
        "publication_s": t_pub,
        "publish_command_s": t_publish_cmd,
        "bag_copy_s": t_bag_cp,
        "bag_sha256_s": t_bag_sha,
        "publication_over_floor": t_pub / floor,
        "verify_s": t_verify,
        "verify_floor_sha256_one_thread_s": t_hash,
        "verify_over_floor": t_verify / t_hash,
        "targets": {
            "full_over_cp": 1.5,
            "incremental_over_full": 0.05,
            "unchanged_over_full": 0.02,
            "publication_over_floor": 1.5,
        },
        "samples": {
            "full": s_full,
            "cp": s_cp,
            "unchanged": s_same,
            "incremental": s_incr,
            "revision": s_rev,
            "publication": s_pub,
            "bag_copy": s_bag_cp,
            "bag_sha256": s_bag_sha,
            "verify": s_verify,
            "verify_floor": s_hash,
        },
    }
    write_result("release" if args.scale == "full" else f"release-{args.scale}", res)
    print(f"| release {RELEASE} ({args.scale}) | {files} files, {size / 1e6:.0f} MB |")
    print("|---|---|")
    print(f"| `cp -r` of the built tree | {t_cp:.2f} s |")
    print(f"| full build, cold cache, new folder | {t_full:.2f} s ({t_full / t_cp:.2f}x cp, target <= 1.5x) |")
    print(
        f"| build of an unchanged registry into the previous build | {t_same:.3f} s "
        f"({100 * t_same / t_full:.1f} % of full, target <= 2 %) |"
    )
    print(f"| one mask revision (validate + store) | {t_rev:.2f} s |")
    print(
        f"| build after one revised mask into the previous build | {t_incr:.2f} s ({100 * t_incr / t_full:.1f} % "
        f"of full, target <= 5 %; {changed} files differ) |"
    )
    print(
        f"| publication: deposit zip ({zip_bytes / 1e9:.2f} GB) + SHA256SUMS + notes | {t_pub:.2f} s "
        f"({t_pub / floor:.2f}x floor: cp -r of the bag {t_bag_cp:.2f} s + SHA-256 {t_bag_sha:.2f} s; "
        f"target <= 1.5x); `release publish` once {t_publish_cmd:.2f} s |"
    )
    print(
        f"| release verify of the build | {t_verify:.2f} s ({t_verify / t_hash:.2f}x SHA-256 of every file in one "
        f"thread, {t_hash:.2f} s) |"
    )
    for p in parts:
        print(f"|   phases of one incremental build | {p} |")


if __name__ == "__main__":
    main()
