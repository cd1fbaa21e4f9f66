"""Benchmark against peers, measured in the same run on the same BIDS archive (issue 8):

1. validating the BIDS archive: our fail-closed check of every file that leaves (NIfTI headers,
   extensions, defacing of every T1, sidecars, TSV text) against the official
   `bids-validator-deno DIR --format json`;
2. "all lesion masks in left subcortical white matter": our read-only SQL on the registry (and on
   the release's Parquet with DuckDB) against pybids `BIDSLayout` indexing plus `layout.get`
   filtered on the mask sidecars' Hemisphere/Location.

    python bench/peers.py [--scale small|full] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, synth_data, timed, write_result  # noqa: E402

SQL = (
    "SELECT scan, lesion, volume_mm3 FROM lesions WHERE hemisphere = 'left' AND location = 'subcortical' "
    "ORDER BY scan, lesion"
)


def release_workspace(scale: str):
    """A workspace with the synthetic release ingested and R1.1 built (reused across runs)."""
    from atlas_registry import release
    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path

    data = synth_data(scale)
    home = WORK / f"peers-{scale}"
    out = home / "releases" / "R1.1"
    ws = Workspace(home)
    if not (out / "MANIFEST.json").exists():
        shutil.rmtree(home, ignore_errors=True)
        ingest_path(ws, data / "native")
        ingest_path(ws, data / "standard")
        release.build(ws, "R1.1", out, cache_dir=home / "cache")
    return ws, out


def our_bids_check(bids: Path) -> int:
    """Every file of the BIDS archive through the same fail-closed gate the exporter uses."""
    import csv

    from atlas_registry.export.deid_gate import Gate
    from atlas_registry.store import sha256_bytes

    gate = Gate(None)  # no verdict cache: check everything
    n = 0
    for p in sorted(bids.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(bids).as_posix()
        n += 1
        if p.name.endswith(".nii.gz"):
            data = p.read_bytes()
            sha = sha256_bytes(data)
            gate.nifti(rel, data, sha, mask=p.name.endswith("_mask.nii.gz"))
            if p.name.endswith("_T1w.nii.gz"):
                gate.defaced(rel, p, sha)
        elif p.suffix == ".json":
            obj = json.loads(p.read_text())
            if isinstance(obj, dict) and p.name not in ("dataset_description.json",):
                gate.sidecar(rel, obj)
        elif p.suffix == ".tsv":
            with open(p, newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
            cols = list(rows[0]) if rows else []
            gate.table(rel, p.stem, cols, rows)
    return n


def bids_validator(bids: Path) -> dict:
    exe = shutil.which("bids-validator-deno") or str(Path(sys.executable).parent / "bids-validator-deno")
    out = subprocess.run([exe, str(bids), "--format", "json"], capture_output=True, text=True)
    try:
        issues = json.loads(out.stdout).get("issues", {}).get("issues", [])
    except json.JSONDecodeError:
        issues = []
    return {
        "exit": out.returncode,
        "errors": sum(1 for i in issues if i.get("severity") == "error"),
        "warnings": sum(1 for i in issues if i.get("severity") == "warning"),
    }


def pybids_query(bids: Path) -> int:
    from bids import BIDSLayout
    from bids.layout import BIDSLayoutIndexer

    layout = BIDSLayout(bids, validate=False, is_derivative=True, indexer=BIDSLayoutIndexer(index_metadata=True))
    files = layout.get(suffix="mask", extension=".nii.gz", Hemisphere="left", Location="subcortical")
    return len([f for f in files if "desc-T1lesion" not in f.filename])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", choices=["full", "small"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from atlas_registry.query import run, run_release

    ws, out = release_workspace(args.scale)
    bids = out / "bids"
    ours_s, ours_samples = timed(lambda: our_bids_check(bids), args.runs)
    verdict = {}
    theirs_s, theirs_samples = timed(lambda: verdict.update(bids_validator(bids)), args.runs)

    # the same question three ways; the standardized subset only, as the BIDS archive holds it
    sql_std = SQL.replace("WHERE", "WHERE standard_status = 'included' AND")
    n_sql = len(run(ws, sql_std).rows)
    sql_s, _ = timed(lambda: run(ws, sql_std), max(args.runs, 5))
    n_parquet = None
    try:
        n_parquet = len(run_release(ws, "R1.1", sql_std).rows)
    except Exception as e:  # noqa: BLE001 - report, don't hide
        print(f"parquet query failed: {e}", file=sys.stderr)
    n_pybids = pybids_query(bids)
    pybids_s, _ = timed(lambda: pybids_query(bids), args.runs)

    res = {
        "scale": args.scale,
        "bids_files": sum(1 for p in bids.rglob("*") if p.is_file()),
        "our_bids_check_s": ours_s,
        "bids_validator_deno_s": theirs_s,
        "bids_validator": verdict,
        "our_over_bids_validator": ours_s / theirs_s,
        "left_subcortical_masks": {"sql": n_sql, "parquet": n_parquet, "pybids": n_pybids},
        "sql_s": sql_s,
        "pybids_index_and_get_s": pybids_s,
        "pybids_over_sql": pybids_s / sql_s,
        "samples": {"ours": ours_samples, "bids_validator": theirs_samples},
    }
    write_result(f"peers-{args.scale}", res)
    print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
