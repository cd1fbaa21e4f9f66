"""Benchmark: typical queries on the registry views, SQLite vs PostgreSQL vs DuckDB on Parquet.

A registry of 100,000 synthetic metadata-only scans and 250,000 lesions is bulk loaded
(:mod:`atlas_registry.bulkload`, current-state tables included) into SQLite and PostgreSQL, and the
views are exported to Parquet (the release layout: one flat file per view). Each query runs
unchanged on the three engines (but the quartiles: SQLite has no percentile function, so it runs
the window form that returns what ``percentile_disc`` returns on the others), on connections set up
as ``atlas-registry sql`` sets them up (SQLite read-only with ``query_only``, PostgreSQL in a
read-only transaction); the median of ``--runs`` runs after one warm-up is reported, with the load
average of the machine while they ran and the CPU time the query itself used (SQLite: this process;
PostgreSQL: its server process, from ``/proc/PID/schedstat``; parallel workers not counted), which
a loaded machine inflates far less than the wall-clock time. All engines must return the same rows.
Reference queries (not targets) time one pass over every lesion, the join of every lesion with its
scan and the numbering of the lesions of each territory by volume (the cheapest window function):
the floors of the counts, of the join and of quantiles through a window function on each engine.

Targets (issue 7): each query at most 100 ms median on SQLite and on PostgreSQL, and within 3x of
DuckDB on the same data exported to Parquet, all measured in the same run.

    python bench/sql.py [--scans 100000] [--lesions 250000] [--runs 7] [--pg URL | --no-pg]

Prints a markdown table and writes ``bench/results/sql.json``. Also reported: the bulk load times;
DuckDB on the normalized tables exported to Parquet with the views' join definitions
(``duckdb_tables``: an independent check that the current-state tables hold what the joins give);
and the upkeep of the current-state layer (:mod:`atlas_registry.facts`): refreshing one scan, 1,000
scans, every scan, and the ``releases`` column after a publication.
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
from common import WORK, timed, write_result  # noqa: E402

_QUARTILES_WINDOW = """
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
ORDER BY territory"""
_QUARTILES_STANDARD = """
SELECT vascular_territory AS territory, COUNT(*) AS n,
       percentile_disc(0.25) WITHIN GROUP (ORDER BY volume_mm3) AS q25,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY volume_mm3) AS median,
       percentile_disc(0.75) WITHIN GROUP (ORDER BY volume_mm3) AS q75
FROM lesions
WHERE volume_mm3 IS NOT NULL
GROUP BY vascular_territory
ORDER BY vascular_territory"""
# A query is one text for every engine, or its text per engine where the engines' SQL differs: the
# nearest-rank quartiles are SQL's ordered-set aggregate percentile_disc on PostgreSQL and DuckDB,
# and (SQLite 3.40 has no percentile function) the window form of docs/sql.md, which returns the
# same values.
QUERIES = {
    "counts by cohort x hemisphere x location": """
SELECT cohort, hemisphere, location, COUNT(*) AS n
FROM lesions
GROUP BY cohort, hemisphere, location
ORDER BY cohort, hemisphere, location""",
    "volume quartiles by vascular territory": {"sqlite": _QUARTILES_WINDOW, "postgresql": _QUARTILES_STANDARD,
                                               "duckdb": _QUARTILES_STANDARD},
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
# Not targets: what one pass over the lesions costs each engine, below any query over all of them
# (the floors of the counts and of the join), and the least a window function over them costs
# (the floor of quantiles on an SQLite without percentile functions).
REFERENCES = {
    "reference: one pass over every lesion": "SELECT COUNT(*) AS n, SUM(volume_mm3) AS total FROM lesions",
    "reference: every lesion joined to its scan": """
SELECT COUNT(*) AS n, SUM(s.n_lesions) AS total
FROM lesions l
JOIN scans s ON s.scan = l.scan""",
    "reference: numbering the lesions of each territory by volume": """
SELECT COUNT(*) AS n, MAX(rn) AS largest_territory
FROM (SELECT ROW_NUMBER() OVER (PARTITION BY vascular_territory ORDER BY volume_mm3) AS rn
      FROM lesions WHERE volume_mm3 IS NOT NULL) AS numbered""",
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


def _time(run, runs: int, cpu=None) -> dict:
    """Median wall (and CPU, with ``cpu``: a clock in ms) time of ``runs`` runs after a warm-up."""
    rows = run()
    wall, used = [], []
    load = os.getloadavg()[0]
    for _ in range(runs):
        c0 = cpu() if cpu else 0.0
        t0 = time.perf_counter()
        rows = run()
        wall.append((time.perf_counter() - t0) * 1000)
        used.append(cpu() - c0 if cpu else 0.0)
    return {"ms": statistics.median(wall), "cpu_ms": statistics.median(used) if cpu else None, "rows": rows,
            "load": round((load + os.getloadavg()[0]) / 2, 1)}


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
            for flag in ("is_primary", "in_standard", "withdrawn"):  # SQLite 0/1 -> Parquet booleans
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


def _pg_runner(url: str):
    """A read-only-transaction query runner on a fresh connection (as ``atlas-registry sql``), and
    the CPU clock (ms) of its server process."""
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

    pid = run("SELECT pg_backend_pid()")[0][0]
    stat = Path(f"/proc/{pid}/schedstat")  # the server runs on this machine (else: no CPU figures)
    cpu = (lambda: int(stat.read_text().split()[0]) / 1e6) if stat.is_file() else None
    return run, cpu, raw


def _upkeep(ws, runs: int) -> dict:
    """Seconds to refresh the current-state rows of 1 scan and of 1,000 scans (medians of ``runs``
    runs), of every scan (once), each committed, and the ``releases`` column after publishing a
    release that holds every scan (once, rolled back). PostgreSQL is vacuumed between the cases
    (not timed), so that rewritten rows do not pile up on the disk."""
    from sqlmodel import Session

    from atlas_registry import db, facts

    eng = db.engine(ws)
    with eng.connect() as c:
        ids = [r[0] for r in c.exec_driver_sql("SELECT id FROM timepoint ORDER BY id")]
    step = max(1, len(ids) // 1000)

    def refresh(some):
        with Session(eng) as s:
            facts.refresh(s, some)
            s.commit()

    def publish():
        with Session(eng) as s:
            s.connection().exec_driver_sql("UPDATE release SET status = 'published' WHERE name = 'R2.0'")
            facts.refresh_releases(s)
            s.rollback()

    def vacuum():
        if eng.dialect.name == "postgresql":
            with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM scan_current")
                c.exec_driver_sql("VACUUM lesion_current")

    cases = (("one_scan", lambda: refresh(ids[len(ids) // 2:len(ids) // 2 + 1]), runs),
             ("1000_scans", lambda: refresh(ids[::step][:1000]), runs),
             ("releases_after_publish", publish, 1), ("all_scans", lambda: refresh(None), 1))
    out = {}
    for name, fn, n in cases:
        out[name + "_s"] = round(timed(fn, n)[0], 4)
        vacuum()
    return out


def _sql_for(query: str | dict[str, str], engine: str) -> str:
    """The text of ``query`` on ``engine`` (``duckdb_tables`` is DuckDB)."""
    return query if isinstance(query, str) else query[engine.split("_")[0]]


def _measure(engines: dict, runs: int, rows: dict[str, dict]) -> None:
    """Time every query on every engine (name -> (run, CPU clock or None)), interleaved query by
    query so that engines compared with each other run under the same machine load."""
    for name, query in {**QUERIES, **REFERENCES}.items():
        row = rows.setdefault(name, {"query": name, "target": name in QUERIES, "answers": {}})
        for eng, (run, cpu) in engines.items():
            sql = _sql_for(query, eng)
            row.setdefault("sql", {})[eng.split("_")[0]] = sql.strip()
            t = _time(lambda: run(sql), runs, cpu)
            row[f"{eng}_ms"] = round(t["ms"], 2)
            row[f"{eng}_load_average"] = t["load"]
            if t["cpu_ms"] is not None:
                row[f"{eng}_cpu_ms"] = round(t["cpu_ms"], 2)
            row["answers"][eng] = _norm(t["rows"])
        print(f"  {name}: " + ", ".join(f"{e} {row[e + '_ms']:.1f} ms" for e in engines), file=sys.stderr)


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
    load_s, upkeep, rows = {}, {}, {}

    # Phase 1: SQLite, the Parquet export of its views and DuckDB. The SQLite registry is removed
    # before PostgreSQL is loaded (both at once need about 1 GB of disk).
    print(f"loading {args.scans} scans / {args.lesions} lesions into SQLite ...", file=sys.stderr)
    ws_lite = Workspace(work / "sqlite")
    load_s["sqlite"] = _load(ws_lite, args.scans, args.lesions)
    sqlite_path = str(ws_lite.home / "registry.sqlite")
    print("exporting Parquet ...", file=sys.stderr)
    _export_parquet(sqlite_path, work / "parquet")
    lite = query.connect_sqlite_readonly(sqlite_path, timeout_s=3600)
    duck = _duckdb(work / "parquet" / "views", views.VIEWS)
    duck_t = _duckdb(work / "parquet" / "tables", TABLES,
                     {v: views.select_sql(v, "sqlite", views.JOINS) for v in views.VIEWS})
    run_duck = (lambda sql: duck.execute(sql).fetchall(), None)
    _measure({"sqlite": (lambda sql: lite.execute(sql).fetchall(), lambda: time.process_time() * 1000),
              "duckdb": run_duck, "duckdb_tables": (lambda sql: duck_t.execute(sql).fetchall(), None)},
             args.runs, rows)
    lite.close()
    duck_t.close()
    print("timing the upkeep of the current-state tables ...", file=sys.stderr)
    upkeep["sqlite"] = _upkeep(ws_lite, args.runs)
    db.engine(ws_lite).dispose()
    shutil.rmtree(ws_lite.home)

    # Phase 2: PostgreSQL, with DuckDB again beside it.
    if not args.no_pg:
        schema = "bench_sql_" + uuid.uuid4().hex[:8]
        pg_eng = create_engine(args.pg)
        with pg_eng.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
            ws_pg = Workspace(work / "pg", url.render_as_string(hide_password=False))
            print("loading PostgreSQL ...", file=sys.stderr)
            load_s["postgresql"] = _load(ws_pg, args.scans, args.lesions)
            run, cpu, raw = _pg_runner(ws_pg.url)
            pg_rows: dict[str, dict] = {}
            _measure({"postgresql": (run, cpu), "duckdb": run_duck}, args.runs, pg_rows)
            raw.close()
            for name, r in pg_rows.items():
                row = rows[name]
                row.update({k: v for k, v in r.items() if k.startswith("postgresql_")})
                row["duckdb_ms_beside_postgresql"] = r["duckdb_ms"]
                row["answers"]["postgresql"] = r["answers"]["postgresql"]
            upkeep["postgresql"] = _upkeep(ws_pg, args.runs)
            db.engine(ws_pg).dispose()
        finally:
            with pg_eng.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            pg_eng.dispose()
    duck.close()

    results = []
    for row in rows.values():
        answers = row.pop("answers")
        ref = answers["sqlite"]
        row["same_answer"] = all(a == ref for a in answers.values())
        row["rows"] = len(ref)
        for eng, duck_key in (("sqlite", "duckdb_ms"), ("postgresql", "duckdb_ms_beside_postgresql")):
            if f"{eng}_ms" in row:  # against DuckDB timed beside it, under the same load
                row[f"{eng}_vs_duckdb"] = round(row[f"{eng}_ms"] / max(row[duck_key], 1e-3), 2)
                if row["target"]:
                    row[f"{eng}_meets_target"] = (row[f"{eng}_ms"] <= TARGET_MS
                                                  and row[f"{eng}_vs_duckdb"] <= TARGET_RATIO)
        results.append(row)

    engines = [e for e in ("sqlite", "postgresql") if e in load_s]
    head = (["query"] + [f"{e} ms" for e in engines] + ["duckdb ms", "duckdb_tables ms"]
            + [f"{e} CPU ms" for e in engines] + [f"{e}/duckdb" for e in engines]
            + [f"load avg ({e})" for e in engines])
    print(f"\nSQL views, {args.scans:,} scans / {args.lesions:,} lesions, median of {args.runs} runs "
          f"(targets: <= {TARGET_MS:.0f} ms and <= {TARGET_RATIO:.0f}x DuckDB on Parquet)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cells = ([r["query"]] + [f"{r[e + '_ms']:.1f}" for e in engines] + [f"{r['duckdb_ms']:.1f}",
                 f"{r['duckdb_tables_ms']:.1f}"] + [f"{r.get(e + '_cpu_ms', float('nan')):.1f}" for e in engines]
                 + [f"{r[e + '_vs_duckdb']:.1f}x" for e in engines] + [f"{r[e + '_load_average']:.1f}" for e in engines])
        print("| " + " | ".join(cells) + " |")
    print("\nbulk load: " + ", ".join(f"{k} {v:.1f} s" for k, v in load_s.items()))
    print("refresh: " + "; ".join(f"{k} " + ", ".join(f"{n[:-2]} {v:.3f} s" for n, v in u.items())
                                  for k, u in upkeep.items()))
    load_avg = os.getloadavg()
    path = write_result("sql", {
        "load_average_1_5_15min_at_end": [round(x, 2) for x in load_avg],
        "scans": args.scans, "lesions": args.lesions, "runs": args.runs, "target_ms": TARGET_MS,
        "target_ratio_vs_duckdb": TARGET_RATIO, "bulk_load_s": {k: round(v, 2) for k, v in load_s.items()},
        "refresh_s": upkeep, "queries": results,
        "all_targets_met": all(r.get("sqlite_meets_target", True) and r.get("postgresql_meets_target", True)
                               for r in results),
    })
    print(f"\nresults: {path}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
