"""Benchmark: validating and ingesting a synthetic archive against the decompress-once floor.

Targets (issue 4): validating everything takes at most 1.5x the time of decompressing every
file once (`gzip -dc` of the same files, measured in the same run), ingest at most 2x.
The floor is measured with as many `gzip -dc` processes as the machine has cores, since the
validator uses every core too.

    python bench/validate.py [--scale full|small] [--runs 3]
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
from common import WORK, synth_data, timed, write_result  # noqa: E402


def gz_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".gz", ".voi"))


def decompress_all(files: list[Path], procs: int) -> None:
    # xargs -P: as many gzip processes as cores, each decompressing its share once.
    listing = "\0".join(str(f) for f in files).encode()
    subprocess.run(
        ["xargs", "-0", "-n", "16", "-P", str(procs), "sh", "-c", 'for f; do gzip -dc "$f" >/dev/null; done', "sh"],
        input=listing,
        check=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="full", choices=["full", "small"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path
    from atlas_registry.validate.runner import validate_path

    data = synth_data(args.scale)
    native, standard = data / "native", data / "standard"
    files = gz_files(native) + gz_files(standard)
    size = sum(f.stat().st_size for f in files)
    procs = os.cpu_count() or 1

    def read_all():  # warm the page cache so both sides read from memory
        for f in files:
            f.read_bytes()

    read_all()
    floor, floor_s = timed(lambda: decompress_all(files, procs), args.runs)
    floor1, _ = timed(lambda: decompress_all(files, 1), 1)

    def validate():  # as the `validate` command runs it: nothing is stored, so nothing is deflated
        for root in (native, standard):
            r = validate_path(root, stored_form=False)
            assert r.report.ok, r.report.to_text()[:2000]

    val, val_s = timed(validate, args.runs)

    def ingest():
        home = Path(tempfile.mkdtemp(dir=WORK, prefix="ws-"))
        try:
            ws = Workspace(home)
            ingest_path(ws, native)
            ingest_path(ws, standard)
        finally:
            shutil.rmtree(home, ignore_errors=True)

    ing, ing_s = timed(ingest, args.runs)
    res = {
        "scale": args.scale,
        "files": len(files),
        "bytes": size,
        "floor_gzip_dc_parallel_s": floor,
        "floor_gzip_dc_single_s": floor1,
        "validate_s": val,
        "ingest_s": ing,
        "validate_ratio": val / floor,
        "ingest_ratio": ing / floor,
        "validate_target": 1.5,
        "ingest_target": 2.0,
        "samples": {"floor": floor_s, "validate": val_s, "ingest": ing_s},
    }
    write_result(f"validate-{args.scale}", res)
    print(f"| files | {len(files)} ({size / 1e6:.0f} MB) |")
    print(f"| gzip -dc, {procs} procs (floor) | {floor:.2f} s |")
    print(f"| validate | {val:.2f} s ({val / floor:.2f}x, target <= 1.5x) |")
    print(f"| ingest | {ing:.2f} s ({ing / floor:.2f}x, target <= 2x) |")


if __name__ == "__main__":
    main()
