"""Benchmark: `atlas-registry synth` for all 304 scans (issue 3 targets: full scale under 5 minutes,
small scale under 30 seconds, on this 2-core machine).

    python bench/synth.py [--scale small|full] [--runs 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, timed, write_result  # noqa: E402

TARGET_S = {"small": 30.0, "full": 300.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", choices=["full", "small"])
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()

    from atlas_registry.synth import generate

    out = WORK / f"synth-bench-{args.scale}"
    summary = {}

    def once():
        shutil.rmtree(out, ignore_errors=True)
        summary.update(generate(out, scale=args.scale, seed=0))

    median, samples = timed(once, args.runs)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if args.scale == "full":  # keep it as the data set of the other benchmarks
        dest = WORK / "synth-full-0"
        if not (dest / ".complete").exists():
            shutil.rmtree(dest, ignore_errors=True)
            out.rename(dest)
            (dest / ".complete").write_text("ok\n")
    shutil.rmtree(out, ignore_errors=True)
    res = {
        "scale": args.scale,
        "seconds": median,
        "samples": samples,
        "target_s": TARGET_S[args.scale],
        "met": median <= TARGET_S[args.scale],
        "scans": summary.get("scans"),
        "lesions": summary.get("lesions"),
        "bytes": size,
        "lesion_volume_mm3": summary.get("lesion_volume_mm3"),
    }
    write_result(f"synth-{args.scale}", res)
    print(f"synth --scale {args.scale}: {median:.1f} s (target {TARGET_S[args.scale]:.0f} s), {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
