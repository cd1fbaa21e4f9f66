"""Benchmark: intake of a DICOM delivery against dcm2niix alone on the same series.

Target (issue 19): intake of a 300-scan DICOM delivery takes at most 1.5x the time dcm2niix alone
takes to convert the same T1 series (gzip-compressed output, as people run it), both with as many
processes as the machine has cores, measured in the same run. Intake does more: it reads every
file's header (localizers and FLAIRs included), chooses the series, converts, re-encodes the T1 and
writes three files per lesion, writes the metadata and validates the whole cohort.

    python bench/intake.py [--scale small|full] [--scans 300] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLI, WORK, synth_data, timed, write_result  # noqa: E402


def native_of(scale: str, cohorts: str) -> Path:
    """The synthetic native root: every cohort (shared with the other benchmarks) or only ``cohorts``."""
    if not cohorts:
        return synth_data(scale) / "native"
    out = WORK / f"synth-{scale}-{cohorts.replace(',', '-')}"
    if not (out / ".complete").exists():
        subprocess.run(
            CLI + ["synth", str(out), "--scale", scale, "--cohorts", cohorts, "--no-reliability", "--force"], check=True
        )
        (out / ".complete").write_text("ok\n")
    return out / "native"


def delivery(scale: str, n: int, cohorts: str = "") -> tuple[Path, dict]:
    """A DICOM delivery of the first ``n`` scans (all cohorts, as one site would never send, but the
    same series): generated once and reused."""
    import json

    from atlas_registry.synth.delivery import write_delivery

    out = WORK / f"intake-dicom-{scale}-{n}{'-' + cohorts.replace(',', '-') if cohorts else ''}"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        native = native_of(scale, cohorts)
        cohorts = sorted(p.name for p in native.iterdir() if p.is_dir())
        taken, infos = 0, {}
        for c in cohorts:
            scans = sorted(p.name for p in (native / c).iterdir())[: n - taken]
            if not scans:
                break
            infos[c] = write_delivery(native, c, out / c, kind="dicom", scans=scans)["scans"]
            taken += len(scans)
        (out / "scans.json").write_text(json.dumps(infos))
        (out / ".complete").write_text("ok\n")
    return out, json.loads((out / "scans.json").read_text())


def dcm2niix_alone(series: list[Path], procs: int, dst: Path) -> None:
    from atlas_registry.intake.dicom import dcm2niix_path

    exe = dcm2niix_path()
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    listing = "\0".join(f"{s}" for s in series).encode()
    # xargs -P: one dcm2niix per series, as many at once as cores; -z y: gzip as people convert
    subprocess.run(
        [
            "xargs",
            "-0",
            "-n",
            "1",
            "-P",
            str(procs),
            "sh",
            "-c",
            f'd="{dst}/$(echo "$1" | md5sum | cut -c1-12)"; mkdir -p "$d"; '
            f'"{exe}" -z y -b y -ba y -v 0 -o "$d" "$1" >/dev/null',
            "sh",
        ],
        input=listing,
        check=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", choices=["full", "small"])
    ap.add_argument("--scans", type=int, default=300)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cohorts", default="", help="synthesize only these cohorts (e.g. c0003 at full scale)")
    args = ap.parse_args()

    from atlas_registry import db
    from atlas_registry.config import Workspace
    from atlas_registry.intake import run

    root, infos = delivery(args.scale, args.scans, args.cohorts)
    cohorts = sorted(infos)
    series = sorted(p for p in root.rglob("s003_mprage") if p.is_dir())
    procs = len(os.sched_getaffinity(0))
    files = sum(1 for p in root.rglob("*.dcm"))
    size = sum(p.stat().st_size for p in root.rglob("*.dcm"))

    def intake_all() -> None:
        tmp = Path(tempfile.mkdtemp(dir=WORK))
        try:
            ws = Workspace(tmp / "ws")
            db.upgrade(ws)
            for n, c in enumerate(cohorts):
                run(root / c, f"c{90 + n:04d}", tmp / f"native-{c}", ws, workers=procs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    base_s, base_samples = timed(lambda: dcm2niix_alone(series, procs, WORK / "intake-dcm2niix-out"), args.runs)
    intake_s, intake_samples = timed(intake_all, args.runs)
    shutil.rmtree(WORK / "intake-dcm2niix-out", ignore_errors=True)
    scans = sum(len(v) for v in infos.values())
    result = {
        "scale": args.scale,
        "scans": scans,
        "series_converted": len(series),
        "dicom_files": files,
        "dicom_bytes": size,
        "procs": procs,
        "intake_s": round(intake_s, 2),
        "dcm2niix_s": round(base_s, 2),
        "ratio": round(intake_s / base_s, 2),
        "samples": {"intake": intake_samples, "dcm2niix": base_samples},
        "met": intake_s / base_s <= 1.5,
    }
    write_result(f"intake-{args.scale}", result)
    print(
        f"intake of {scans} scans ({files} DICOM files, {size / 1e9:.2f} GB): {intake_s:.1f} s; dcm2niix alone on "
        f"the {len(series)} T1 series: {base_s:.1f} s ({intake_s / base_s:.2f}x)"
    )


if __name__ == "__main__":
    main()
