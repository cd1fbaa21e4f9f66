"""Benchmark: typical queries on the registry views, SQLite vs PostgreSQL vs DuckDB on Parquet.

A registry of 100,000 synthetic metadata-only scans and 250,000 lesions is bulk loaded
(:mod:`atlas_registry.bulkload`) into SQLite and PostgreSQL, and the views are exported to Parquet
(the release layout: one flat file per view). Each query runs unchanged on the three engines, on
connections set up as ``atlas-registry sql`` sets them up (SQLite read-only with ``query_only``,
PostgreSQL in a read-only transaction); the median of ``--runs`` runs after one warm-up is
reported. All engines must return the same rows.

Targets (issue 7): each query at most 100 ms median on SQLite and on PostgreSQL, and within 3x of
DuckDB on the same data exported to Parquet, all measured in the same run.

    python bench/sql.py [--scans 100000] [--lesions 250000] [--runs 7] [--pg URL | --no-pg]

Prints a markdown table and writes ``bench/results/sql.json``. The bulk load times are reported
too. For reference, two more measurements: DuckDB on the normalized tables exported to Parquet
with the same view definitions (``duckdb_tables``), and SQLite/PostgreSQL on the views copied into
plain tables (``*_flat``: what a denormalized read model maintained by ingest would give).
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
WITH ranked AS (
  SELECT vascular_territory AS territory, volume_mm3 AS v,
         CUME_DIST() OVER (PARTITION BY vascular_territory ORDER BY volume_mm3) AS cd
  FROM lesions
  WHERE volume_mm3 IS NOT NULL
)
SELECT territory, COUNT(*) AS n,
       MIN(CASE WHEN cd >= 0.25 THEN v END) AS q25,
       MIN(CASE WHEN cd >= 0.5 THEN v END) AS median,
       MIN(CASE WHEN cd >= 0.75 THEN v END) AS q75
FROM ranked
GROUP BY territory
ORDER BY territory""",
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
TARGET_RATIO = 3.0
TABLES = ("cohort", "scanner", "subject", "timepoint", "scan_report", "lesion", "lesion_annotation", "lesion_mask",
          "release", "release_scan")


def _norm(rows) -> list[tuple]:
    out = []
    for r in rows:
        vals = []
        for v in r:
            if isinstance(v, bool):
                v = int(v)
            elif hasattr(v, "as_integer_ratio") and not isinstance(v, int):
                v = float(f"{float(v):.9g}")
            vals.append(v)
        out.append(tuple(vals))
    return out


def _time(run, runs: int) -> tuple[float, list]:
    rows = run()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = run()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), rows


def _load(ws, scans: int, lesions: int) -> float:
    from atlas_registry import bulkload, db

    db.upgrade(ws)
    t0 = time.perf_counter()
    bulkload.load(ws, scans, lesions, seed=1)
    return time.perf_counter() - t0


def _export_parquet(sqlite_path: str, out: Path) -> None:
    """The views as flat Parquet files (the release layout) and the tables as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from atlas_registry import query, views

    conn = query.connect_sqlite_readonly(sqlite_path, timeout_s=3600)
    (out / "views").mkdir(parents=True)
    (out / "tables").mkdir(parents=True)
    for folder, names in (("views", views.VIEWS), ("tables", TABLES)):
        for name in names:
            cur = conn.execute(f"SELECT * FROM {name}")
            cols = [d[0] for d in cur.description]
            data = list(zip(*cur.fetchall()))
            table = pa.table({c: pa.array(list(v)) for c, v in zip(cols, data)})
            for flag in ("is_primary", "in_standard"):  # SQLite 0/1 -> Parquet booleans
                if flag in cols:
                    table = table.set_column(cols.index(flag), flag, pa.array([bool(x) for x in table[flag].to_pylist()]))
            pq.write_table(table, out / folder / f"{name}.parquet")
    conn.close()


def _duckdb(folder: Path, names, view_sql: dict | None = None):
    import duckdb

    con = duckdb.connect()
    for name in names:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder / (name + '.parquet')}')")
    for name, sql in (view_sql or {}).items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
    return con


def _flatten_sqlite(sqlite_path: str, flat_path: Path):
    """The views copied into plain tables of another SQLite file (indexed on scan)."""
    import sqlite3

    from atlas_registry import query, views

    con = sqlite3.connect(flat_path)
    con.execute(f"ATTACH DATABASE 'file:{sqlite_path}?mode=ro' AS reg")
    for v in views.VIEWS:
        con.execute(f"CREATE TABLE {v} AS SELECT * FROM reg.{v}")
        con.execute(f"CREATE INDEX ix_{v}_scan ON {v} (scan)")
    con.execute("ANALYZE main")
    con.commit()
    con.close()
    return query.connect_sqlite_readonly(str(flat_path), timeout_s=3600)


def _flatten_pg(pg_eng, schema: str) -> str:
    """The views copied into plain tables of schema ``<schema>_flat`` (indexed on scan)."""
    from sqlalchemy import text

    from atlas_registry import views

    flat = schema + "_flat"
    with pg_eng.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{flat}"'))
        for v in views.VIEWS:
            c.execute(text(f'CREATE TABLE "{flat}".{v} AS SELECT * FROM "{schema}".{v}'))
            c.execute(text(f'CREATE INDEX ON "{flat}".{v} (scan)'))
            c.execute(text(f'ANALYZE "{flat}".{v}'))
    return flat


def _pg_runner(url: str):
    """A read-only-transaction query runner on a fresh connection (as ``atlas-registry sql``)."""
    from atlas_registry import db, query

    raw = db.engine_for(url).raw_connection()
    pg = raw.driver_connection

    def run(sql):
        with pg.cursor() as cur:
            query.begin_pg_readonly(cur, timeout_s=3600)
            cur.execute(sql)
            rows = cur.fetchall()
        pg.rollback()
        return rows

    return run, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scans", type=int, default=100_000)
    ap.add_argument("--lesions", type=int, default=250_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--pg", default=os.environ.get("ATLAS_BENCH_POSTGRES_URL") or os.environ.get(
        "ATLAS_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from atlas_registry import db, query, views
    from atlas_registry.config import Workspace

    work = WORK / "sql"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load_s = {}
    print(f"loading {args.scans} scans / {args.lesions} lesions ...", file=sys.stderr)
    ws_lite = Workspace(work / "sqlite")
    load_s["sqlite"] = _load(ws_lite, args.scans, args.lesions)
    sqlite_path = str(ws_lite.home / "registry.sqlite")
    schema = pg_eng = ws_pg = None
    if not args.no_pg:
        schema = "bench_sql_" + uuid.uuid4().hex[:8]
        pg_eng = create_engine(args.pg)
        with pg_eng.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
        ws_pg = Workspace(work / "pg", url.render_as_string(hide_password=False))
        load_s["postgresql"] = _load(ws_pg, args.scans, args.lesions)
    print("exporting Parquet ...", file=sys.stderr)
    _export_parquet(sqlite_path, work / "parquet")

    engines = {}
    lite = query.connect_sqlite_readonly(sqlite_path, timeout_s=3600)
    engines["sqlite"] = lambda sql: lite.execute(sql).fetchall()
    raws = []
    if ws_pg is not None:
        engines["postgresql"], raw = _pg_runner(ws_pg.url)
        raws.append(raw)
    duck = _duckdb(work / "parquet" / "views", views.VIEWS)
    engines["duckdb"] = lambda sql: duck.execute(sql).fetchall()
    duck_t = _duckdb(work / "parquet" / "tables", TABLES,
                     {v: views.select_sql(v, "sqlite") for v in views.VIEWS})
    engines["duckdb_tables"] = lambda sql: duck_t.execute(sql).fetchall()
    lite_flat = _flatten_sqlite(sqlite_path, work / "flat.sqlite")
    engines["sqlite_flat"] = lambda sql: lite_flat.execute(sql).fetchall()
    if ws_pg is not None:
        flat = _flatten_pg(pg_eng, schema)
        url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={flat}"})
        engines["postgresql_flat"], raw = _pg_runner(url.render_as_string(hide_password=False))
        raws.append(raw)

    results = []
    for name, sql in QUERIES.items():
        row = {"query": name, "sql": sql.strip()}
        answers = {}
        for eng, run in engines.items():
            ms, rows = _time(lambda: run(sql), args.runs)
            row[f"{eng}_ms"] = round(ms, 2)
            answers[eng] = _norm(rows)
        ref = answers["sqlite"]
        row["same_answer"] = all(a == ref for a in answers.values())
        row["rows"] = len(ref)
        for eng in ("sqlite", "postgresql"):
            if f"{eng}_ms" in row:
                row[f"{eng}_vs_duckdb"] = round(row[f"{eng}_ms"] / max(row["duckdb_ms"], 1e-3), 1)
                row[f"{eng}_meets_target"] = row[f"{eng}_ms"] <= TARGET_MS and row[f"{eng}_vs_duckdb"] <= TARGET_RATIO
        results.append(row)
        print(f"  {name}: " + ", ".join(f"{e} {row[e + '_ms']:.1f} ms" for e in engines), file=sys.stderr)

    cols = [e for e in ("sqlite", "postgresql", "duckdb", "duckdb_tables", "sqlite_flat", "postgresql_flat")
            if e in engines]
    head = ["query"] + [f"{c} ms" for c in cols] + [f"{c}/duckdb" for c in ("sqlite", "postgresql") if c in engines]
    print(f"\nSQL views, {args.scans:,} scans / {args.lesions:,} lesions, median of {args.runs} runs "
          f"(targets: <= {TARGET_MS:.0f} ms and <= {TARGET_RATIO:.0f}x DuckDB on Parquet)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cells = [r["query"]] + [f"{r[c + '_ms']:.1f}" for c in cols]
        cells += [f"{r[c + '_vs_duckdb']:.1f}x" for c in ("sqlite", "postgresql") if c in engines]
        print("| " + " | ".join(cells) + " |")
    print("\nbulk load: " + ", ".join(f"{k} {v:.1f} s" for k, v in load_s.items()))
    load_avg = os.getloadavg()
    path = write_result("sql", {
        "load_average_1_5_15min_at_end": [round(x, 2) for x in load_avg],
        "scans": args.scans, "lesions": args.lesions, "runs": args.runs, "target_ms": TARGET_MS,
        "target_ratio_vs_duckdb": TARGET_RATIO, "bulk_load_s": {k: round(v, 2) for k, v in load_s.items()},
        "queries": results,
        "all_targets_met": all(r.get("sqlite_meets_target", True) and r.get("postgresql_meets_target", True)
                               for r in results),
    })
    print(f"\nresults: {path}")

    for conn in [lite, lite_flat, duck, duck_t, *raws]:
        conn.close()
    if ws_pg is not None:
        db.engine(ws_pg).dispose()
        with pg_eng.begin() as c:
            for name in (schema, schema + "_flat"):
                c.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        pg_eng.dispose()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
