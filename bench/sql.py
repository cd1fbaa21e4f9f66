"""Benchmark: ``atlas-registry sql`` (DuckDB over the registry's SQL snapshot) on SQLite and
PostgreSQL registries, against DuckDB directly on the same snapshot file, and the snapshot's upkeep.

A registry of 100,000 synthetic metadata-only scans and 250,000 lesions is bulk loaded
(:mod:`atlas_registry.bulkload`) into SQLite and into PostgreSQL. For each, the four benchmark
queries run through :func:`atlas_registry.query.run` exactly as ``sql`` runs them: the freshness
check (one read of the registry's change counter), a connection on the locked snapshot (kept open
by the process while the counter does not move), the statement checks, the time limit and row cap;
beside it, DuckDB directly on the same snapshot file (one connection kept open, no checks). Also
reported, not a target: the first query of a process (attaching and locking the snapshot, cold
buffers), what a one-off ``atlas-registry sql`` pays on top of starting Python. Median of ``--runs`` runs after a
warm-up, the two run in turn; both must return the same rows.

Upkeep of the snapshot (:mod:`atlas_registry.snapshot`): a full build (the first query, or after a
release is published); the refresh after a one-scan revision (the revision's transaction raises the
counter and recomputes the scan's current-state rows, then the snapshot replaces that scan's rows;
only the refresh is timed, median of ``--runs``); the refresh after an ingest of a cohort (55 scans,
the largest cohort of ATLAS R1.1) and of 1,000 scans.

Targets (issue 15): each query <= 100 ms and <= 1.5x DuckDB directly on the same snapshot file, on a
SQLite and a PostgreSQL registry alike; the refresh after a one-scan revision <= 1 s.

    python bench/sql.py [--scans 100000] [--lesions 250000] [--runs 7] [--pg URL | --no-pg]
                        [--sqlite-home DIR] [--pg-schema NAME] [--work DIR]

``--sqlite-home`` / ``--pg-schema``: use a registry already loaded there (same sizes) instead of
loading one (the load takes minutes). Prints a markdown table, writes ``bench/results/sql.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import WORK, write_result  # noqa: E402

QUERIES = {
    "counts by cohort x hemisphere x location": """
SELECT cohort, hemisphere, location, COUNT(*) AS n
FROM lesions
GROUP BY cohort, hemisphere, location
ORDER BY cohort, hemisphere, location""",
    "volume quartiles by vascular territory": """
SELECT vascular_territory AS territory, COUNT(*) AS n,
       percentile_disc(0.25) WITHIN GROUP (ORDER BY volume_mm3) AS q25,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY volume_mm3) AS median,
       percentile_disc(0.75) WITHIN GROUP (ORDER BY volume_mm3) AS q75
FROM lesions
WHERE volume_mm3 IS NOT NULL
GROUP BY vascular_territory
ORDER BY vascular_territory""",
    "scans with PVH >= 2 and a subcortical lesion": """
SELECT COUNT(DISTINCT scan) AS scans
FROM lesions
WHERE pvh >= 2 AND location = 'subcortical'""",
    "join: release x scans x lesions": """
SELECT s.cohort, COUNT(DISTINCT s.scan) AS scans, COUNT(*) AS lesions, AVG(l.volume_mm3) AS mean_volume_mm3
FROM release_scans rs
JOIN scans s ON s.scan = rs.scan
JOIN lesions l ON l.scan = s.scan
WHERE rs.release = 'R1.1' AND rs.in_standard AND s.n_lesions >= 2
GROUP BY s.cohort
ORDER BY s.cohort""",
}
TARGET_MS = 100.0
TARGET_RATIO = 1.5
TARGET_REFRESH_S = 1.0


def _median_ms(fn, runs: int) -> tuple[float, object]:
    out = fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), out


def _interleaved(fns, runs: int) -> list[tuple[float, object]]:
    """Median ms and last result of each of ``fns``, run in turn ``runs`` times after a warm-up (so
    that the machine's load falls on each alike)."""
    outs = [fn() for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[k] = fn()
            samples[k].append((time.perf_counter() - t0) * 1000)
    return [(statistics.median(x), o) for x, o in zip(samples, outs, strict=False)]


def _load(ws, scans: int, lesions: int) -> float:
    from atlas_registry import bulkload, db

    db.upgrade(ws)
    t0 = time.perf_counter()
    bulkload.load(ws, scans, lesions, seed=1)
    return time.perf_counter() - t0


def _queries(ws, runs: int) -> dict:
    import duckdb

    from atlas_registry import query, snapshot

    query.run(ws, "SELECT 1")  # the snapshot is current
    direct = duckdb.connect(str(snapshot.path(ws)), read_only=True)
    out = {}
    try:
        for name, sql in QUERIES.items():
            (ms, res), (dms, drows) = _interleaved(
                [
                    lambda sql=sql: query.run(ws, sql, limit=query.MAX_LIMIT),
                    lambda sql=sql: direct.execute(sql).fetchall(),
                ],
                runs,
            )
            cold, _ = _median_ms(
                lambda sql=sql: (query.close_cached(), query.run(ws, sql, limit=query.MAX_LIMIT)), runs
            )
            out[name] = {
                "ms": round(ms, 2),
                "duckdb_direct_ms": round(dms, 2),
                "ratio": round(ms / max(dms, 1e-3), 2),
                "first_query_of_a_process_ms": round(cold, 2),
                "rows": len(res.rows),
                "same_answer": res.rows == drows,
                "load_average": round(os.getloadavg()[0], 1),
            }
            out[name]["meets_target"] = out[name]["ms"] <= TARGET_MS and out[name]["ratio"] <= TARGET_RATIO
            print(
                f"  {name}: {ms:.1f} ms, DuckDB directly {dms:.1f} ms, first query of a process {cold:.1f} ms",
                file=sys.stderr,
            )
        # the parts of the path: the freshness check and opening + locking the snapshot
        out["_freshness_check_ms"] = round(_median_ms(lambda: snapshot.registry_state(ws), runs)[0], 2)
        out["_open_and_lock_ms"] = round(
            _median_ms(lambda: (query.close_cached(), query.registry_connection(ws).close()), runs)[0], 2
        )
    finally:
        direct.close()
    return out


def _upkeep(ws, runs: int) -> dict:
    """Seconds: a full build; the snapshot refresh after a one-scan revision (median of ``runs``),
    after 55 scans (a cohort) and after 1,000 scans changed (once each)."""
    from atlas_registry import db, facts, snapshot

    eng = db.engine(ws)
    with eng.connect() as c:
        ids = [r[0] for r in c.exec_driver_sql("SELECT id FROM timepoint ORDER BY id")]

    def write(some: list[int]) -> None:
        """A committed change of these scans (the revision's transaction), without the refresh."""
        with eng.begin() as c:
            c.exec_driver_sql(
                "UPDATE scan_report SET pvh = 3 - pvh WHERE pvh IS NOT NULL AND timepoint_id IN ("
                + ", ".join(str(i) for i in some)
                + ")"
            )
            facts.refresh(c, some)
            c.exec_driver_sql(db.BUMP_COUNTER)

    def refresh_after(some: list[int]) -> float:
        write(some)
        t0 = time.perf_counter()
        state = snapshot.refresh_scans(ws, some)
        took = time.perf_counter() - t0
        assert state is not None and snapshot.read_state(snapshot.path(ws)) == snapshot.registry_state(ws)
        return took

    t0 = time.perf_counter()
    snapshot.build(ws)
    full = time.perf_counter() - t0
    mid = len(ids) // 2
    one = statistics.median(refresh_after(ids[mid + k : mid + k + 1]) for k in range(runs))
    step = max(1, len(ids) // 1000)
    return {
        "full_build_s": round(full, 3),
        "one_scan_s": round(one, 4),
        "cohort_55_scans_s": round(refresh_after(ids[100:155]), 4),
        "1000_scans_s": round(refresh_after(ids[::step][:1000]), 4),
        "snapshot_bytes": snapshot.path(ws).stat().st_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scans", type=int, default=100_000)
    ap.add_argument("--lesions", type=int, default=250_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--pg",
        default=os.environ.get("ATLAS_BENCH_POSTGRES_URL")
        or os.environ.get("ATLAS_TEST_POSTGRES_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--sqlite-home", help="an SQLite workspace already loaded with --scans/--lesions")
    ap.add_argument("--pg-schema", help="a PostgreSQL schema of --pg already loaded with --scans/--lesions")
    ap.add_argument("--work", default=str(WORK / "sql"), help="scratch folder (deleted at the end)")
    args = ap.parse_args()

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from atlas_registry import db
    from atlas_registry.config import Workspace

    work = Path(args.work)
    load_s, results, upkeep = {}, {}, {}

    def measure(kind: str, ws) -> None:
        print(f"{kind}: queries ...", file=sys.stderr)
        results[kind] = _queries(ws, args.runs)
        print(f"{kind}: snapshot upkeep ...", file=sys.stderr)
        upkeep[kind] = _upkeep(ws, args.runs)
        print(f"  {upkeep[kind]}", file=sys.stderr)
        db.engine(ws).dispose()

    if args.sqlite_home:
        measure("sqlite", Workspace(Path(args.sqlite_home)))
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        ws = Workspace(work / "sqlite")
        print(f"loading {args.scans} scans / {args.lesions} lesions into SQLite ...", file=sys.stderr)
        load_s["sqlite"] = _load(ws, args.scans, args.lesions)
        measure("sqlite", ws)
        shutil.rmtree(ws.home)

    if not args.no_pg:
        schema = args.pg_schema or "bench_sql_" + uuid.uuid4().hex[:8]
        pg_eng = create_engine(args.pg)
        if not args.pg_schema:
            with pg_eng.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
            ws = Workspace(work / f"pg-{schema}", url.render_as_string(hide_password=False))
            if not args.pg_schema:
                print("loading PostgreSQL ...", file=sys.stderr)
                load_s["postgresql"] = _load(ws, args.scans, args.lesions)
            measure("postgresql", ws)
            shutil.rmtree(ws.home, ignore_errors=True)
        finally:
            if not args.pg_schema:
                with pg_eng.begin() as c:
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            pg_eng.dispose()

    kinds = list(results)
    print(
        f"\nsql on the snapshot, {args.scans:,} scans / {args.lesions:,} lesions, median of {args.runs} runs "
        f"(targets: <= {TARGET_MS:.0f} ms and <= {TARGET_RATIO}x DuckDB directly on the snapshot file)\n"
    )
    head = ["query"] + [f"{k} registry: sql ms (DuckDB direct ms, ratio)" for k in kinds]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in QUERIES:
        print(
            "| "
            + " | ".join(
                [name]
                + [
                    f"{results[k][name]['ms']:.1f} ({results[k][name]['duckdb_direct_ms']:.1f}, "
                    f"{results[k][name]['ratio']:.2f}x)"
                    for k in kinds
                ]
            )
            + " |"
        )
    print("\nupkeep: " + "; ".join(f"{k} {u}" for k, u in upkeep.items()))
    met = all(
        r["meets_target"] and r["same_answer"] for k in kinds for n, r in results[k].items() if not n.startswith("_")
    )
    met_refresh = all(u["one_scan_s"] <= TARGET_REFRESH_S for u in upkeep.values())
    path = write_result(
        "sql",
        {
            "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
            "scans": args.scans,
            "lesions": args.lesions,
            "runs": args.runs,
            "target_ms": TARGET_MS,
            "target_ratio_vs_duckdb_direct": TARGET_RATIO,
            "target_refresh_one_scan_s": TARGET_REFRESH_S,
            "bulk_load_s": {k: round(v, 2) for k, v in load_s.items()},
            "queries": results,
            "snapshot_upkeep": upkeep,
            "query_targets_met": met,
            "refresh_target_met": met_refresh,
        },
    )
    print(f"\nresults: {path}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
