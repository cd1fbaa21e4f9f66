"""Run every benchmark and rewrite docs/benchmarks.md from bench/results/*.json.

    python bench/run.py                 # everything (full scale: tens of minutes)
    python bench/run.py --quick         # small scale only
    python bench/run.py --report-only   # just rewrite docs/benchmarks.md from the results on disk

Each script writes bench/results/<name>.json with its medians, samples and the machine; this
script turns them into one page, each figure with its floor or peer and its target, met or not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, machine  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"


def runs(quick: bool) -> list[list[str]]:
    scale = "small" if quick else "full"
    return [
        ["synth.py", "--scale", "small", "--runs", "3"],
        *([] if quick else [["synth.py", "--scale", "full", "--runs", "1"]]),
        ["validate.py", "--scale", scale, "--runs", "1" if not quick else "3"],
        ["release.py", "--scale", scale, "--runs", "3"],
        ["intake.py", "--scale", scale, "--scans", "300", "--runs", "1"],
        ["peers.py", "--scale", "small", "--runs", "3"],
        ["store.py", "--scale", scale, "--runs", "3"],
        ["store.py", "--scale", scale, "--cohort", "all", "--runs", "1"],
        ["sql.py"],
        ["score.py", "--scale", scale, "--runs", "3"],
        ["standardize.py", "--scale", "small"],
    ]


def load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def rows() -> list[tuple[str, str, str, str, str]]:
    out = []
    for scale in ("small", "full"):
        r = load(f"synth-{scale}")
        if r:
            out.append(
                (
                    f"synth, all 304 scans, {scale} scale",
                    f"{r['seconds']:.1f} s",
                    "—",
                    f"≤ {r['target_s']:.0f} s",
                    mark(r["met"]),
                )
            )
    for scale in ("small", "full"):
        r = load(f"validate-{scale}")
        if r:
            floor = (
                f"`gzip -dc` of {r['files']} files ({r['bytes'] / 1e9:.2f} GB): {r['floor_gzip_dc_parallel_s']:.1f} s"
            )
            out.append(
                (
                    f"validate native + standard, {scale} scale",
                    f"{r['validate_s']:.1f} s ({r['validate_ratio']:.2f}×)",
                    floor,
                    "≤ 1.5× floor",
                    mark(r["validate_ratio"] <= 1.5),
                )
            )
            out.append(
                (
                    f"ingest native + standard, {scale} scale",
                    f"{r['ingest_s']:.1f} s ({r['ingest_ratio']:.2f}×)",
                    floor,
                    "≤ 2× floor",
                    mark(r["ingest_ratio"] <= 2.0),
                )
            )
    for scale in ("small", "full"):
        r = load(f"intake-{scale}")
        if r:
            out.append(
                (
                    f"intake of a DICOM delivery ({r['scans']} scans, {r['dicom_files']} files), {scale} scale",
                    f"{r['intake_s']:.1f} s ({r['ratio']:.2f}×)",
                    f"dcm2niix alone on the {r['series_converted']} T1 series ({r['procs']} at once): "
                    f"{r['dcm2niix_s']:.1f} s",
                    "≤ 1.5× dcm2niix",
                    mark(r["ratio"] <= 1.5),
                )
            )
    for scale in ("small", "full"):
        r = load(f"release-{scale}") or (load("release") if scale == "full" else None)
        if r and r.get("scale", scale) == scale:
            out.append(
                (
                    f"release build (full), {scale} scale",
                    f"{r['full_build_cold_s']:.1f} s ({r['full_over_cp']:.2f}×)",
                    f"`cp -r` of {r['files']} files ({r['bytes'] / 1e9:.2f} GB): {r['cp_r_s']:.1f} s",
                    "≤ 1.5× copy",
                    mark(r["full_over_cp"] <= 1.5),
                )
            )
            out.append(
                (
                    f"release build after one revised mask, {scale} scale",
                    f"{r['incremental_build_s']:.2f} s ({100 * r['incremental_over_full']:.1f} % of full)",
                    f"full build {r['full_build_cold_s']:.1f} s",
                    "≤ 5 % of full",
                    mark(r["incremental_over_full"] <= 0.05),
                )
            )
            if "unchanged_build_s" in r:
                out.append(
                    (
                        f"release build of an unchanged registry into the previous build, {scale} scale",
                        f"{r['unchanged_build_s']:.3f} s ({100 * r['unchanged_over_full']:.1f} % of full)",
                        f"full build {r['full_build_cold_s']:.1f} s",
                        "≤ 2 % of full",
                        mark(r["unchanged_over_full"] <= 0.02),
                    )
                )
            if "publication_s" in r:
                out.append(
                    (
                        f"release publish: deposit zip ({r['zip_bytes'] / 1e9:.2f} GB), {scale} scale",
                        f"{r['publication_s']:.2f} s ({r['publication_over_floor']:.2f}×)",
                        f"`cp -r` of the bag {r['bag_copy_s']:.2f} s + SHA-256 of it {r['bag_sha256_s']:.2f} s",
                        "≤ 1.5× floor",
                        mark(r["publication_over_floor"] <= 1.5),
                    )
                )
            if "zip_floor_over_full" in r:  # what any build after a change must at least do
                out.append(
                    (
                        f"floor of a build after any change: copy + SHA-256 of the deposit zip, {scale} scale",
                        f"{r['zip_copy_s']:.2f} + {r['zip_sha256_s']:.2f} s "
                        f"({100 * r['zip_floor_over_full']:.1f} % of full)",
                        f"{r['zip_bytes'] / 1e9:.2f} GB zip",
                        "none (floor)",
                        "—",
                    )
                )
            if "verify_s" in r:
                out.append(
                    (
                        f"release verify of the build ({r['files']} files, {r['bytes'] / 1e9:.2f} GB), {scale} scale",
                        f"{r['verify_s']:.2f} s ({r['verify_over_floor']:.2f}×)",
                        f"SHA-256 of every file in one thread: {r['verify_floor_sha256_one_thread_s']:.2f} s",
                        "none (peer: the least a checker does)",
                        "—",
                    )
                )
    for name in ("store-small", "store-small-all", "store-full", "store-full-all"):
        r = load(name)
        if r:
            scale = r["scale"]
            who = "every cohort" if r["cohort"] == "all" else f"cohort {r['cohort']}"
            what = f"{who} ({r['objects']} objects, {r['bytes'] / 1e9:.2f} GB), {scale} scale"
            out.append(
                (
                    f"ingest into S3 ({r['server']} on loopback), {what}",
                    f"{r['ingest_s3_s']:.1f} s ({r['ingest_ratio']:.2f}×)",
                    f"the same ingest into a folder: {r['ingest_folder_s']:.1f} s",
                    "≤ 1.5× folder",
                    mark(r["ingest_ratio"] <= 1.5),
                )
            )
            out.append(
                (
                    f"store verify on S3 ({r['server']} on loopback), {what}",
                    f"{r['verify_s3_s']:.2f} s ({r['verify_ratio']:.2f}×)",
                    f"every object read once through the same client: {r['read_all_s3_s']:.2f} s",
                    "≤ 1.5× reading",
                    mark(r["verify_ratio"] <= 1.5),
                )
            )
            out.append(
                (
                    f"release build from S3 (objects fetched, no hard links), {what}",
                    f"{r['build_s3_s']:.1f} s ({r['build_ratio']:.2f}×)",
                    f"the same build from a folder store: {r['build_folder_s']:.1f} s",
                    "none (measured: the cost of S3)",
                    "—",
                )
            )
    r = load("sql")
    if r and "snapshot_upkeep" in r:  # sql on the registry's snapshot (issue 15)
        size = f"{r['scans']:,} scans, {r['lesions']:,} lesions"
        kinds = list(r["queries"])
        names = [n for n in r["queries"][kinds[0]] if not n.startswith("_")]
        for name in names:
            qs = {k: r["queries"][k][name] for k in kinds}
            figure = ", ".join(
                f"{'SQLite' if k == 'sqlite' else 'PostgreSQL'} registry {q['ms']:.0f} ms ({q['ratio']:.2f}×)"
                for k, q in qs.items()
            )
            peer = "DuckDB directly on the snapshot file " + ", ".join(
                f"{q['duckdb_direct_ms']:.0f} ms" for q in qs.values()
            )
            ok = all(q["meets_target"] and q["same_answer"] for q in qs.values())
            out.append(
                (
                    f"SQL: {name} ({size}), sql with its freshness check",
                    figure,
                    peer,
                    f"≤ {r['target_ms']:.0f} ms and ≤ {r['target_ratio_vs_duckdb_direct']}× DuckDB direct",
                    mark(ok),
                )
            )
        for k, u in r["snapshot_upkeep"].items():
            reg = "SQLite" if k == "sqlite" else "PostgreSQL"
            out.append(
                (
                    f"SQL snapshot refresh after a one-scan revision, {reg} registry ({size})",
                    f"{u['one_scan_s']:.2f} s",
                    f"full export {u['full_build_s']:.1f} s",
                    f"≤ {r['target_refresh_one_scan_s']:.0f} s",
                    mark(u["one_scan_s"] <= r["target_refresh_one_scan_s"]),
                )
            )
            out.append(
                (
                    f"SQL snapshot refresh after a 55-scan cohort / 1,000 scans, {reg} registry ({size})",
                    f"{u['cohort_55_scans_s']:.2f} s / {u['1000_scans_s']:.2f} s",
                    "—",
                    "≤ 10 % of the ingest of the cohort",
                    "see notes",
                )
            )
    for scale in ("small", "full"):
        for world in ("", "-scanner"):
            r = load(f"standardize-{scale}{world}")
            if r:
                got = _standardize_rows(r, scale + (" scale, scanner world" if world else ""))
                out += got[:2] if world else got  # speed: from the default world's run
    for scale in ("small", "full"):
        r = load(f"peers-{scale}")
        if r:
            v = r["bids_validator"]
            out.append(
                (
                    f"BIDS archive check ({r['bids_files']} files), ours vs bids-validator-deno",
                    f"ours {r['our_bids_check_s']:.1f} s",
                    f"bids-validator-deno {r['bids_validator_deno_s']:.1f} s "
                    f"({v.get('errors')} errors, {v.get('warnings')} warnings)",
                    "peer comparison",
                    "—",
                )
            )
            n = r["left_subcortical_masks"]
            out.append(
                (
                    "left subcortical lesion masks: our SQL vs pybids BIDSLayout + get",
                    f"SQL {1000 * r['sql_s']:.1f} ms ({n['sql']} masks)",
                    f"pybids {r['pybids_index_and_get_s']:.1f} s ({n['pybids']} masks)",
                    "peer comparison",
                    "—",
                )
            )
    for scale in ("small", "full"):
        r = load(f"score-{scale}")
        if r:
            out.append(
                (
                    f"score: a {r['scans_scored']}-scan submission on the test split ({r['registry_scans']}-scan "
                    f"registry), {scale} scale",
                    f"{r['score_s']:.2f} s ({r['ratio']:.2f}×)",
                    f"reading every truth and predicted mask once: {r['read_masks_once_s']:.2f} s",
                    f"≤ {r['target_ratio']:g}× floor",
                    mark(r["ratio"] <= r["target_ratio"]),
                )
            )
    return out


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def _standardize_rows(r: dict, scale: str) -> list[tuple[str, str, str, str, str]]:
    n = f"{r['scans']} scans, {scale}" + ("" if "world" in scale else " scale")
    med, p95 = r["dice_shortfall_median"], r["dice_shortfall_p95"]
    qc_ok = None
    if r["flawed_flagged"] is not None and r["clean_flagged"] is not None:
        qc_ok = r["flawed_flagged"] >= 0.9 and r["clean_flagged"] <= 0.05
        if r["large_lesion_pass"] is not None:
            qc_ok = qc_ok and r["large_lesion_pass"] >= 0.8
    cpu = r["cpu_s_per_scan_median"]
    all304 = r.get("estimated_all_304_on_2_cores_s") or (304 * cpu / 2 if cpu is not None else None)
    small = scale.startswith("small")
    fast = r["speedup_2_workers"] >= 1.7 and (not small or (all304 is not None and all304 <= 180))
    return [
        (
            f"standardize: lesion Dice vs the synthetic truth ({r['masks_compared']} masks, {n})",
            f"median {r['dice_median']:.3f}; shortfall median {med:.3f}, 95th pct {p95:.3f}",
            f"the true transform alone: median {r['dice_true_affine_median']:.3f}",
            "shortfall ≤ 0.03 (median), ≤ 0.10 (95th pct)",
            mark(med is not None and med <= 0.03 and p95 <= 0.10),
        ),
        (
            f"standardize QC ({n})",
            f"flawed flagged {_pct(r['flawed_flagged'])} of {r['flawed']}, clean flagged "
            f"{_pct(r['clean_flagged'])} of {r['clean']}, large lesions passing {_pct(r['large_lesion_pass'])} "
            f"of {r['large_lesion']}",
            "—",
            "≥ 90 % flawed, ≤ 5 % clean flagged; ≥ 80 % large lesions pass",
            mark(qc_ok),
        ),
        (
            f"standardize speed ({n})",
            f"{cpu:.2f} CPU s per scan (median"
            + (f"; clean {r['cpu_s_per_clean_scan_median']:.2f} s" if r.get("cpu_s_per_clean_scan_median") else "")
            + f"; all 304 on 2 cores ≈ {all304 / 60:.1f} min); "
            f"1 worker {r['wall_s']['1']:.1f} s, "
            f"2 workers {r['wall_s']['2']:.1f} s ({r['speedup_2_workers']:.2f}×)"
            + ("" if r.get("same_bytes_1_vs_2_workers") else "; bytes differ"),
            "—",
            "2 workers ≥ 1.7× one" + ("; all 304 ≤ 3 min on 2 cores" if small else "; ≤ 30 s per scan"),
            mark(fast),
        ),
    ]


def _machine_text(m: dict) -> str:
    return f"{m['cpus']} cores ({m['cpu']}), {m['memory']} memory, Python {m['python']}, {m['platform']}"


def machines() -> list[str]:
    """One line per machine the results on disk were measured on, naming its results (scripts can
    be re-run one at a time, so the page may combine several machines)."""
    seen: dict[str, list[str]] = {}
    for p in sorted(RESULTS.glob("*.json")):
        r = json.loads(p.read_text())
        when = f" ({r['measured_at']})" if r.get("measured_at") else ""
        seen.setdefault(_machine_text(r.get("machine") or machine()), []).append(p.stem + when)
    return [f"- {m}: {', '.join(names)}." for m, names in seen.items()]


def write_doc() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Rewritten by `python bench/run.py` (or `make bench`) from `bench/results/*.json`; every figure is the",
        "median of the runs its script made, measured in the same run as its floor or peer.",
        "",
        "Measured on:",
        *machines(),
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| benchmark | figure | floor or peer | target | status |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows()]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    DOC.write_text("\n".join(lines) + "\n")
    print(f"wrote {DOC}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        for cmd in runs(args.quick):
            print("$ python bench/" + " ".join(cmd), flush=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / cmd[0]), *cmd[1:]], check=False)
    write_doc()


if __name__ == "__main__":
    main()
