"""``atlas-registry sql``: strictly read-only on SQLite and PostgreSQL, whatever the query says.

Every write attempt must be refused with an AtlasError (``SQL0xx``) and leave the registry exactly
as it was: row counts of every table and view, the schema objects, and (per backend) pragmas,
sequences, large objects, replication slots and files on disk. (Advisory locks are not compared:
other sessions take them, and a query's own die with its connection, closed after every call.)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from atlas_registry import db, query
from atlas_registry.errors import AtlasError

TMP = Path("/tmp")  # world-writable: a file the PostgreSQL server could create if a write slipped through


def _snapshot(ws) -> dict:
    from sqlmodel import SQLModel

    import atlas_registry.models  # noqa: F401
    from atlas_registry import views

    snap = {}
    with db.engine(ws).connect() as c:
        for name in sorted(SQLModel.metadata.tables) + list(views.VIEWS):
            snap[name] = c.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar()
        snap["fingerprint"] = c.execute(text(
            "SELECT COUNT(*), SUM(number), MAX(code) FROM timepoint")).one()
        if ws.is_sqlite:
            snap["schema"] = c.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()
            snap["user_version"] = c.exec_driver_sql("PRAGMA user_version").scalar()
            snap["journal_mode"] = c.exec_driver_sql("PRAGMA journal_mode").scalar()
        else:
            snap["schema"] = c.execute(text(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() ORDER BY 1")).all()
            snap["columns"] = c.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() ORDER BY 1, 2")).all()
            snap["sequence"] = c.execute(text("SELECT last_value, is_called FROM cohort_id_seq")).one()
            snap["large_objects"] = c.execute(text("SELECT COUNT(*) FROM pg_largeobject_metadata")).scalar()
            snap["slots"] = c.execute(text("SELECT COUNT(*) FROM pg_replication_slots")).scalar()
    return snap


class _Unchanged:
    """Context: the registry (and the marker file) must be exactly as before on exit."""

    def __init__(self, ws):
        self.ws = ws
        self.marker = TMP / f"atlas-sql-test-{uuid.uuid4().hex}"

    def __enter__(self):
        self.before = _snapshot(self.ws)
        return self

    def __exit__(self, *exc):
        assert _snapshot(self.ws) == self.before
        leftovers = list(TMP.glob(self.marker.name + "*"))
        for p in leftovers:
            p.unlink()
        assert not leftovers, f"{leftovers} created"
        return False


@pytest.fixture
def guarded(sql_registry):
    """The shared registry on the parametrized backend, checked unchanged after the test."""
    ws, _plan = sql_registry
    with _Unchanged(ws) as u:
        yield ws, u.marker


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("ATLAS_TEST_POSTGRES_URL") else ["sqlite"]


COMMON_WRITES = [
    "INSERT INTO cohort (code) VALUES ('c0999')",
    "insert into cohort (code) values ('c0999');",
    "UPDATE timepoint SET standard_status = 'pending'",
    "DELETE FROM lesion_annotation",
    "delete from lesion_mask where 1 = 1",
    "DROP VIEW scans",
    "DROP TABLE release_scan",
    "CREATE TABLE evil (x INTEGER)",
    "CREATE VIEW evil AS SELECT 1 AS x",
    "CREATE INDEX evil ON cohort (site)",
    "ALTER TABLE cohort ADD COLUMN evil INTEGER",
    "ALTER TABLE cohort RENAME TO evil",
    "SELECT 1; DELETE FROM cohort",
    "SELECT ';' AS s; DELETE FROM cohort",
    "SELECT 1 /* ; */ ; DELETE FROM cohort",
    "SELECT 1 -- comment\n; DELETE FROM cohort",
    "/* leading comment */ DELETE FROM cohort",
    "(DELETE FROM cohort)",
    "WITH d AS (DELETE FROM lesion RETURNING id) SELECT COUNT(*) FROM d",
    "WITH x AS (SELECT 1) UPDATE cohort SET site = 'x'",
    "WITH x AS (SELECT 1) INSERT INTO cohort (code) SELECT 'c0998' FROM x",
    "SELECT * FROM cohort FOR UPDATE",
    "REPLACE INTO cohort (id, code) VALUES (1, 'c0997')",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s1",
    "TRUNCATE cohort",
    "REINDEX",
    "VACUUM",
    "ANALYZE",
    "GRANT SELECT ON cohort TO PUBLIC",
    "",
    "   ;  ",
]
SQLITE_WRITES = [
    "ATTACH DATABASE '{marker}.db' AS evil",
    "attach '{marker}.db' as evil",
    "DETACH DATABASE main",
    "PRAGMA user_version = 5",
    "PRAGMA user_version=5",
    "PRAGMA main.user_version = 7",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA journal_mode = WAL",
    "PRAGMA journal_mode(DELETE)",
    "PRAGMA query_only = OFF",
    "PRAGMA query_only(0)",
    "PRAGMA writable_schema = ON",
    "PRAGMA foreign_keys = OFF",
    "PRAGMA application_id = 42",
    "PRAGMA optimize",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "PRAGMA incremental_vacuum",
    "VACUUM INTO '{marker}.db'",
    "SELECT load_extension('{marker}')",
    "SELECT writefile('{marker}', 'x')",
    "INSERT INTO [cohort] (code) VALUES ('c0996')",
    "SELECT 1 /* /* */ ; DELETE FROM cohort",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE TRIGGER evil AFTER INSERT ON cohort BEGIN DELETE FROM cohort; END",
]
POSTGRES_WRITES = [
    "COPY cohort TO '{marker}'",
    "COPY (SELECT * FROM cohort) TO '{marker}'",
    "COPY cohort FROM PROGRAM 'touch {marker}'",
    "COPY cohort TO PROGRAM 'touch {marker}'",
    "copy cohort to stdout",
    "SET search_path = x",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION DEFAULT",
    "SET TRANSACTION READ WRITE",
    "RESET ALL",
    "SELECT pg_catalog.set_config('search_path', 'x', false)",
    "SELECT set_config('transaction_read_only', 'off', true)",
    'SELECT "set_config"(\'search_path\', \'x\', false)',
    "SELECT nextval('cohort_id_seq')",
    "SELECT setval('cohort_id_seq', 1000)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_from_bytea(0, 'x'::bytea)",
    "SELECT pg_catalog.lo_create(0)",
    "SELECT lo_export(1, '{marker}')",
    "SELECT pg_advisory_lock(42)",
    "SELECT pg_try_advisory_lock(42)",
    "SELECT pg_advisory_xact_lock(42)",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT pg_ls_dir('.')",
    "SELECT pg_stat_reset()",
    "SELECT pg_reload_conf()",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT pg_create_physical_replication_slot('evil')",
    "SELECT pg_logical_emit_message(false, 'x', 'y')",
    "SELECT query_to_xml('DELETE FROM cohort', true, true, '')",
    "SELECT * FROM ts_stat('SELECT 1')",
    "SELECT pg_sleep(0.01)",
    "SELECT txid_current()",
    "SELECT pg_notify('chan', 'x')",
    "DO $$ BEGIN DELETE FROM cohort; END $$",
    "SELECT $$;$$; DELETE FROM cohort",
    "SELECT E'\\';'; DELETE FROM cohort",
    "CALL evil()",
    "LOCK TABLE cohort",
    "LISTEN chan",
    "NOTIFY chan",
    "PREPARE p AS DELETE FROM cohort",
    "EXPLAIN ANALYZE DELETE FROM cohort",
    "SELECT * INTO evil FROM cohort",
    "CREATE TEMP TABLE t AS SELECT 1",
    "DISCARD ALL",
    "CHECKPOINT",
    "SELECT * FROM cohort FOR SHARE",
    "MERGE INTO cohort c USING cohort d ON c.id = d.id WHEN MATCHED THEN DELETE",
    "CREATE EXTENSION dblink",
]


def _cases(extra: dict[str, list[str]], common: list[str]) -> list:
    return [pytest.param(b, w, id=f"{b}-{k}") for b in _backends() for k, w in enumerate(common + extra[b])]


@pytest.mark.parametrize("backend_name,stmt", _cases({"sqlite": SQLITE_WRITES, "postgresql": POSTGRES_WRITES},
                                                     COMMON_WRITES))
def test_every_write_is_refused_and_nothing_changes(sql_registry_factory, backend_name, stmt):
    e = _refused(sql_registry_factory(backend_name)[0], query.run, stmt)
    assert e.code.startswith("SQL") and "\n" not in str(e)


def _refused(ws, runner, stmt: str) -> AtlasError:
    """The AtlasError ``runner(ws, stmt)`` raises; the registry and the disk must be unchanged."""
    with _Unchanged(ws) as u:
        with pytest.raises(AtlasError) as e:
            runner(ws, stmt.format(marker=u.marker))
    return e.value


# What the database alone refuses (no statement check): the second and third layers hold by themselves.
DB_LAYER_WRITES = [
    "INSERT INTO cohort (code) VALUES ('c0999')",
    "UPDATE timepoint SET standard_status = 'pending'",
    "DELETE FROM lesion_annotation",
    "DROP VIEW scans",
    "CREATE TABLE evil (x INTEGER)",
    "ALTER TABLE cohort ADD COLUMN evil INTEGER",
    "WITH d AS (DELETE FROM lesion RETURNING id) SELECT COUNT(*) FROM d",
]
DB_LAYER_SQLITE = ["PRAGMA user_version = 5", "PRAGMA journal_mode = DELETE", "PRAGMA query_only = OFF",
                   "ATTACH DATABASE '{marker}.db' AS evil", "SELECT load_extension('{marker}')"]
DB_LAYER_POSTGRES = ["SELECT nextval('cohort_id_seq')", "SELECT setval('cohort_id_seq', 1000)",
                     "SELECT * INTO evil FROM cohort", "SELECT * FROM cohort FOR UPDATE",
                     "SELECT set_config('transaction_read_only', 'off', false)"]


@pytest.mark.parametrize("backend_name,stmt", _cases({"sqlite": DB_LAYER_SQLITE, "postgresql": DB_LAYER_POSTGRES},
                                                     DB_LAYER_WRITES))
def test_the_database_layer_alone_refuses_writes(sql_registry_factory, backend_name, stmt):
    e = _refused(sql_registry_factory(backend_name)[0], query.execute_readonly, stmt)
    assert e.code in ("SQL006", "SQL008"), str(e)


def test_session_settings_do_not_survive_a_call(guarded):
    """A read-only transaction may change settings of its own connection; each call gets a fresh one."""
    ws, _ = guarded
    first = query.run(ws, "SELECT COUNT(*) FROM cohort").rows
    if not ws.is_sqlite:
        query.execute_readonly(ws, "SELECT set_config('search_path', 'nowhere', false)")
    assert query.run(ws, "SELECT COUNT(*) FROM cohort").rows == first


def test_reads_work(guarded):
    ws, _ = guarded
    n = query.run(ws, "SELECT COUNT(*) AS n FROM scans").rows[0][0]
    assert n == 150
    r = query.run(ws, "SELECT 'DELETE FROM cohort; DROP TABLE x' AS s, 1 AS n -- ; DELETE\n;")
    assert r.columns == ["s", "n"] and r.rows == [("DELETE FROM cohort; DROP TABLE x", 1)]
    assert query.run(ws, "SELECT 'it''s' AS s").rows == [("it's",)]
    assert query.run(ws, "VALUES (1)").rows == [(1,)]
    assert query.run(ws, "EXPLAIN SELECT * FROM lesions WHERE is_primary").rows
    rows = query.run(ws, "SELECT scan FROM lesions WHERE is_primary = TRUE ORDER BY scan").rows
    assert len(rows) == 150
    if ws.is_sqlite:
        cols = [r[1] for r in query.run(ws, "PRAGMA table_info(scans)").rows]
        assert cols[:3] == ["scan", "cohort", "subject"]
        assert query.run(ws, "PRAGMA user_version").rows == [(0,)]
    else:
        assert query.run(ws, "SELECT $$;$$ AS s").rows == [(";",)]
        assert query.run(ws, "  (SELECT 2) ").rows == [(2,)]
        assert query.run(ws, "SHOW transaction_read_only").rows == [("on",)]
        assert query.run(ws, "SELECT current_setting('transaction_read_only')").rows == [("on",)]


def test_max_rows_and_errors_are_one_line(guarded):
    ws, _ = guarded
    assert len(query.run(ws, "SELECT * FROM lesions", max_rows=7).rows) == 7
    with pytest.raises(AtlasError) as e:
        query.run(ws, "SELECT no_such_column FROM scans")
    assert e.value.code == "SQL008" and "\n" not in str(e.value)


def test_time_limit(guarded):
    ws, _ = guarded
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
            if ws.is_sqlite else "SELECT COUNT(*) FROM generate_series(1, 10000000000)")
    with pytest.raises(AtlasError) as e:
        query.run(ws, slow, timeout_s=0.3)
    assert e.value.code == "SQL007"


def test_missing_sqlite_registry_is_refused(tmp_path):
    from atlas_registry.config import Workspace

    ws = Workspace(tmp_path / "nothing")
    with pytest.raises(AtlasError) as e:
        query.run(ws, "SELECT 1")
    assert e.value.code == "SQL009"
    assert not (tmp_path / "nothing" / "registry.sqlite").exists()


def test_tokenizer_splits_only_outside_quotes_and_comments():
    ok = [
        ("SELECT ';'", "sqlite"), ('SELECT 1 AS ";"', "sqlite"), ("SELECT 1 AS [;]", "sqlite"),
        ("SELECT 1 AS `;`", "sqlite"), ("SELECT 1 /* ; */", "sqlite"), ("SELECT $$;$$", "postgresql"),
        ("SELECT $tag$ ; $ $tag$", "postgresql"), ("SELECT E'\\';'", "postgresql"), ("SELECT 1 /* /* ; */ */", "postgresql"),
    ]
    for sql, dialect in ok:  # accepted; a trailing comment is dropped
        assert query.check_statement(sql, dialect) == sql.split(" /*")[0]
    bad = [
        ("SELECT 1 /* /* */ ; DELETE FROM t", "sqlite"), ("SELECT E'\\';' ; DELETE FROM t", "sqlite"),
        ("SELECT 'unterminated", "sqlite"), ("SELECT $$ ; ", "postgresql"), ("SELECT 1 /* ", "postgresql"),
        ("SELECT [x;] ; DELETE FROM t", "postgresql"),
    ]
    for sql, dialect in bad:
        with pytest.raises(AtlasError):
            query.check_statement(sql, dialect)


def _cli(ws) -> list[str]:
    return ["--home", str(ws.home)] + (["--db", ws.db] if ws.db else [])


def test_cli_formats_and_refusal(guarded, capsys):
    import json

    from atlas_registry.cli import main

    ws, _ = guarded
    q = "SELECT cohort, COUNT(*) AS n FROM scans GROUP BY cohort ORDER BY cohort"
    assert main(_cli(ws) + ["sql", q, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["cohort"] == "c0001" and sum(r["n"] for r in rows) == 150
    assert main(_cli(ws) + ["sql", q, "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "cohort,n" and out[1].startswith("c0001,")
    assert main(_cli(ws) + ["sql", q]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["cohort", "n"] and out[-1] == "(11 rows)"
    assert main(_cli(ws) + ["sql", "DELETE FROM cohort"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [SQL003]")
    assert main(_cli(ws) + ["sql", "SELECT 1", "--format", "xml"]) == 2


# ---------------------------------------------------------------------------------------------
# sql --release: DuckDB on the release's Parquet files, in memory and locked down

RELEASE_REFUSALS = [
    "COPY scans TO '{marker}'",
    "COPY (SELECT 1) TO '{marker}' (FORMAT csv)",
    "EXPORT DATABASE '{marker}'",
    "ATTACH '{marker}.db' AS evil",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SELECT * FROM read_csv('/etc/hostname')",
    "SELECT * FROM read_parquet('{parquet}')",
    "FROM read_text('/etc/hostname')",
    "SELECT * FROM '{parquet}'",
    "CREATE TABLE x AS SELECT 1",
    "DROP TABLE scans",
    "SELECT 1; DROP TABLE scans",
    "DELETE FROM lesions",
]


@pytest.fixture
def release(sql_registry_factory, release_parquet):
    import hashlib

    ws = release_parquet(sql_registry_factory("sqlite")[0], "R1.0", "R1.0")
    folder = query.release_dir(ws, "R1.0") / "parquet"
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    yield ws, folder
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == digest


def test_release_queries_run_on_parquet(release, sql_registry_factory):
    ws, _folder = release
    reg, plan = sql_registry_factory("sqlite")
    r = query.run_release(ws, "R1.0", "SELECT COUNT(*) AS n FROM scans")
    assert r.rows == [(len(plan.release_scans["R1.0"]),)]
    q = "SELECT cohort, hemisphere, location, COUNT(*) FROM lesions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    sub = "WHERE scan IN (SELECT scan FROM release_scans WHERE release = 'R1.0')"
    want = query.run(reg, q.replace("FROM lesions", f"FROM lesions {sub}")).rows
    assert query.run_release(ws, "R1.0", q).rows == want
    assert query.run_release(ws, "R1.0", "SELECT COUNT(*) FROM lesions WHERE is_primary").rows == [
        (len(plan.release_scans["R1.0"]),)]
    with pytest.raises(AtlasError) as e:
        query.run_release(ws, "nope", "SELECT 1")
    assert e.value.code == "SQL009"


@pytest.mark.parametrize("stmt", RELEASE_REFUSALS)
def test_release_queries_cannot_write_or_read_other_files(release, stmt):
    ws, folder = release
    marker = TMP / f"atlas-sql-test-{uuid.uuid4().hex}"
    with pytest.raises(AtlasError) as e:
        query.run_release(ws, "R1.0", stmt.format(marker=marker, parquet=folder / "scans.parquet"))
    assert e.value.code.startswith("SQL")
    assert not list(TMP.glob(marker.name + "*"))


@pytest.mark.parametrize("stmt", ["COPY scans TO '{marker}'", "SELECT * FROM read_csv('/etc/hostname')",
                                  "INSTALL httpfs", "SET enable_external_access = true",
                                  "ATTACH '{marker}.db' AS evil"])
def test_release_lockdown_alone_refuses(release, stmt):
    """Without the statement check, the locked DuckDB connection refuses file access by itself."""
    _ws, folder = release
    marker = TMP / f"atlas-sql-test-{uuid.uuid4().hex}"
    con = query.release_connection(folder)
    try:
        import duckdb

        with pytest.raises(duckdb.Error):
            con.execute(stmt.format(marker=marker)).fetchall()
    finally:
        con.close()
    assert not list(TMP.glob(marker.name + "*"))


def test_cli_release(release, capsys):
    from atlas_registry.cli import main

    ws, _ = release
    assert main(_cli(ws) + ["sql", "SELECT COUNT(*) AS n FROM scans", "--release", "R1.0", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "n"
    assert main(_cli(ws) + ["sql", "COPY scans TO '/tmp/x.csv'", "--release", "R1.0"]) == 1
