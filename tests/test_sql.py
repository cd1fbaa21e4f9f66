"""``atlas-registry sql``: a locked-down DuckDB over the registry's SQL snapshot (SQLite and
PostgreSQL registries) or a release's Parquet files; strictly read-only whatever the query says.

Every write attempt must be refused with an AtlasError (``SQL0xx``) and leave the registry exactly
as it was: row counts of every table and view, the schema objects, and (per backend) pragmas,
sequences, large objects, replication slots and files on disk; attacks that broke the old
registry-connection path (issue 15) are kept, on every path.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from atlas_registry import db, query, snapshot, views
from atlas_registry.errors import AtlasError, UsageError

TMP = Path("/tmp")  # world-writable: a file the PostgreSQL server could create if a write slipped through


def _snapshot(ws) -> dict:
    from sqlmodel import SQLModel

    import atlas_registry.models  # noqa: F401
    from atlas_registry import views

    snap = {}
    with db.engine(ws).connect() as c:
        for name in sorted(SQLModel.metadata.tables) + list(views.VIEWS):
            snap[name] = c.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar()
        snap["fingerprint"] = c.execute(text("SELECT COUNT(*), SUM(number), MAX(code) FROM timepoint")).one()
        if ws.is_sqlite:
            snap["schema"] = c.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()
            snap["user_version"] = c.exec_driver_sql("PRAGMA user_version").scalar()
            snap["journal_mode"] = c.exec_driver_sql("PRAGMA journal_mode").scalar()
        else:
            snap["schema"] = c.execute(
                text(
                    "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() ORDER BY 1"
                )
            ).all()
            snap["columns"] = c.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() ORDER BY 1, 2"
                )
            ).all()
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
    "insert into scans (scan) values ('c0999s0001t01');",
    "UPDATE scans SET stroke_type = 'PWNED'",
    "DELETE FROM lesions",
    "DROP VIEW scans",
    "DROP TABLE release_scans",
    "CREATE TABLE evil (x INTEGER)",
    "CREATE VIEW evil AS SELECT 1 AS x",
    "CREATE MACRO evil(x) AS x",
    "ALTER TABLE scans ADD COLUMN evil INTEGER",
    "SELECT 1; DELETE FROM scans",
    "SELECT ';' AS s; DELETE FROM scans",
    "SELECT 1 /* ; */ ; DELETE FROM scans",
    "SELECT 1 -- comment\n; DELETE FROM scans",
    # PostgreSQL and DuckDB end a -- comment at a carriage return too (the hole of issue 15)
    "SELECT 1 --\r; COMMIT; UPDATE scan_current SET stroke_type = $$PWNED$$ WHERE TRUE; SELECT 2\n, 3",
    "SELECT 1 --\r; COPY (SELECT 1) TO PROGRAM 'touch {marker}'; SELECT 2\n, 3",
    "SELECT 1 --\r; COPY scans TO '{marker}'; SELECT 2\n, 3",
    "/* leading comment */ DELETE FROM scans",
    "(DELETE FROM scans)",
    "WITH d AS (DELETE FROM lesions RETURNING scan) SELECT COUNT(*) FROM d",
    "SELECT * FROM scans FOR UPDATE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "COPY scans TO '{marker}'",
    "COPY (SELECT 1) TO '{marker}' (FORMAT csv)",
    "COPY (SELECT 1) TO PROGRAM 'touch {marker}'",
    "COPY scans FROM PROGRAM 'touch {marker}'",
    "EXPORT DATABASE '{marker}'",
    "ATTACH '{marker}.db' AS evil",
    "ATTACH DATABASE '{marker}.db' AS evil",
    "DETACH registry",
    "INSTALL httpfs",
    "LOAD httpfs",
    "INSTALL sqlite",
    "FORCE INSTALL postgres",
    "SET enable_external_access = true",
    "SET memory_limit = '100GB'",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "SELECT * FROM read_csv('/etc/hostname')",
    "SELECT * FROM read_text('/etc/hostname')",
    "FROM read_blob('/etc/passwd')",
    "SELECT * FROM '/etc/hostname'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM sqlite_scan('{registry}', 'cohort')",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT U&\"pg\\005fread\\005ffile\"('/etc/hostname')",
    'SELECT U&"pg\\005fadvisory\\005fxact\\005flock"(7271930001)',
    "SELECT pg_advisory_xact_lock(7271930001)",
    "SELECT pg_advisory_lock(42)",
    "SELECT ts_rewrite('a & b'::tsquery, 'SELECT 1')",
    "SELECT lo_import('/etc/hostname')",
    "SELECT set_config('search_path', 'x', false)",
    "SELECT nextval('cohort_id_seq')",
    "SELECT query_to_xml('DELETE FROM cohort', true, true, '')",
    "SELECT getenv('HOME')",
    "DO $$ BEGIN DELETE FROM cohort; END $$",
    "SELECT $$;$$; DELETE FROM scans",
    "",
    "   ;  ",
]


def _cases() -> list:
    return [pytest.param(b, w, id=f"{b}-{k}") for b in _backends() for k, w in enumerate(COMMON_WRITES)]


def _registry_file(ws) -> str:
    from sqlalchemy.engine import make_url

    return make_url(ws.url).database if ws.is_sqlite else "/nonexistent"


@pytest.mark.parametrize("backend_name,stmt", _cases())
def test_every_write_or_escape_is_refused_and_nothing_changes(sql_registry_factory, backend_name, stmt):
    ws = sql_registry_factory(backend_name)[0]
    snap = snapshot.path(ws)
    query.run(ws, "SELECT 1")  # the snapshot exists and is current
    digest = _sha(snap)
    e = _refused(ws, query.run, stmt)
    assert e.code.startswith("SQL") and "\n" not in str(e)
    assert _sha(snap) == digest  # the snapshot file itself is unchanged


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def _refused(ws, runner, stmt: str) -> AtlasError:
    """The AtlasError ``runner(ws, stmt)`` raises; the registry and the disk must be unchanged."""
    with _Unchanged(ws) as u:
        with pytest.raises(AtlasError) as e:
            runner(ws, stmt.format(marker=u.marker, parquet=snapshot.path(ws), registry=_registry_file(ws)))
    return e.value


# What the locked DuckDB connection alone refuses (no statement check): the second layer holds by itself.
LOCKDOWN_ONLY = [
    "INSERT INTO scans (scan) VALUES ('c0999s0001t01')",
    "UPDATE scans SET stroke_type = 'PWNED'",
    "DELETE FROM lesions",
    "DROP TABLE scans",
    "CREATE TABLE evil (x INTEGER)",
    "COPY scans TO '{marker}'",
    "EXPORT DATABASE '{marker}'",
    "ATTACH '{marker}.db' AS evil",
    "SELECT * FROM read_csv('/etc/hostname')",
    "SELECT * FROM read_text('/etc/hostname')",
    "INSTALL httpfs",
    "LOAD sqlite",
    "SET enable_external_access = true",
    "SET memory_limit = '100GB'",
    "SET threads = 64",
    "SET lock_configuration = false",
    "RESET ALL",
]


@pytest.mark.parametrize("stmt", LOCKDOWN_ONLY)
@pytest.mark.parametrize("backend_name", _backends())
def test_the_locked_connection_alone_refuses(sql_registry_factory, backend_name, stmt):
    import duckdb

    ws = sql_registry_factory(backend_name)[0]
    with _Unchanged(ws) as u:
        con = query.registry_connection(ws)
        try:
            with pytest.raises(duckdb.Error):
                con.execute(stmt.format(marker=u.marker)).fetchall()
            assert con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone() == (
                con.execute("SELECT current_setting('memory_limit')").fetchone()[0],
                query.THREADS,
            )
        finally:
            con.close()


def test_reads_work(guarded):
    ws, _ = guarded
    n = query.run(ws, "SELECT COUNT(*) AS n FROM scans").rows[0][0]
    assert n == 150
    r = query.run(ws, "SELECT 'DELETE FROM cohort; DROP TABLE x' AS s, 1 AS n -- ; DELETE\n;")
    assert r.columns == ["s", "n"] and r.rows == [("DELETE FROM cohort; DROP TABLE x", 1)]
    assert query.run(ws, "SELECT 'it''s' AS s").rows == [("it's",)]
    assert query.run(ws, "VALUES (1)").rows == [(1,)]
    assert query.run(ws, "FROM scans SELECT COUNT(*)").rows == [(150,)]
    assert query.run(ws, "EXPLAIN SELECT * FROM lesions WHERE is_primary").rows
    assert [r[0] for r in query.run(ws, "DESCRIBE scans").rows] == list(views.SCAN_COLUMNS)
    assert query.run(ws, "SELECT $$;$$ AS s").rows == [(";",)]
    rows = query.run(ws, "SELECT scan FROM lesions WHERE is_primary = TRUE ORDER BY scan").rows
    assert len(rows) == 150
    assert query.run(ws, "SELECT current_setting('enable_external_access')").rows == [(False,)]


def test_errors_are_one_line(guarded):
    ws, _ = guarded
    with pytest.raises(AtlasError) as e:
        query.run(ws, "SELECT no_such_column FROM scans")
    assert e.value.code == "SQL008" and "\n" not in str(e.value)


def test_row_cap_and_limit(guarded):
    """10^8 rows: the first ``limit`` come back, marked as cut (no MemoryError, no wait for the rest)."""
    ws, _ = guarded
    r = query.run(ws, "SELECT range AS i FROM range(100000000)")
    assert len(r.rows) == query.DEFAULT_LIMIT and r.truncated and r.rows[-1] == (query.DEFAULT_LIMIT - 1,)
    r = query.run(ws, "SELECT * FROM lesions", limit=7)
    assert len(r.rows) == 7 and r.truncated
    r = query.run(ws, "SELECT * FROM scans", limit=150)
    assert len(r.rows) == 150 and not r.truncated
    for bad in (0, -1, query.MAX_LIMIT + 1, 2.5, "10"):
        with pytest.raises(UsageError) as e:
            query.run(ws, "SELECT 1", limit=bad)
        assert e.value.code == "SQL012"


def test_memory_limit_is_a_clean_error(guarded):
    """A query that needs more memory than allowed ends with SQL013 or the time limit, not INTERNAL."""
    ws, _ = guarded
    with pytest.raises(AtlasError) as e:
        query.run(ws, "SELECT length(string_agg(repeat('x', 10000), ',')) FROM range(1000000)", timeout_s=60)
    assert e.value.code in ("SQL013", "SQL007"), str(e.value)


def test_time_limit(guarded):
    ws, _ = guarded
    slow = "SELECT SUM(a.range * b.range) FROM range(1000000) a, range(1000000) b"
    import time

    start = time.monotonic()
    with pytest.raises(AtlasError) as e:
        query.run(ws, slow, timeout_s=0.5)
    assert e.value.code == "SQL007" and time.monotonic() - start < 20


# About 0.3-3 s on 2 cores: longer than the short deadlines below, far shorter than the long ones.
_SECONDS = "SELECT COUNT(*) FROM range(9000) a, range(9000) b WHERE (a.range + b.range) % 7919 = 1"


def test_time_limit_ends_only_its_own_query(guarded):
    """One watchdog serves every query of the process: a query past its deadline is stopped, one
    running beside it with a later deadline is not, and a deadline of a query that already returned
    never stops a later query (the sessions are reused)."""
    ws, _ = guarded
    slow = "SELECT SUM(a.range * b.range) FROM range(1000000) a, range(1000000) b"
    query.run(ws, "SELECT 1", timeout_s=0.2)  # its deadline passes while the next query runs
    ok = query.run(ws, _SECONDS, timeout_s=60)
    assert ok.elapsed_s > 0.2 and ok.rows[0][0] > 0

    out: dict = {}

    def long_one():
        try:
            out["long"] = query.run(ws, _SECONDS, timeout_s=60)
        except Exception as e:  # noqa: BLE001
            out["long"] = e

    t = threading.Thread(target=long_one)
    t.start()
    with pytest.raises(AtlasError) as e:
        query.run(ws, slow, timeout_s=0.3)
    t.join()
    assert e.value.code == "SQL007"
    assert isinstance(out["long"], query.Result) and out["long"].rows == ok.rows
    assert query.run(ws, "SELECT 42").rows == [(42,)]  # nothing left interrupted


@pytest.mark.parametrize(
    "bad", [0, -1, float("nan"), float("inf"), float("-inf"), query.MAX_TIMEOUT_S + 1, "nan", None]
)
def test_timeout_must_be_finite_positive_and_bounded(guarded, bad):
    ws, _ = guarded
    with pytest.raises(UsageError) as e:
        query.run(ws, "SELECT 1", timeout_s=bad)
    assert e.value.code == "SQL011" and e.value.exit_code == 2


def test_missing_sqlite_registry_is_refused(tmp_path):
    from atlas_registry.config import Workspace

    ws = Workspace(tmp_path / "nothing")
    with pytest.raises(AtlasError) as e:
        query.run(ws, "SELECT 1")
    assert e.value.code == "SQL009"
    assert not (tmp_path / "nothing" / "registry.sqlite").exists()


def test_tokenizer_splits_only_outside_quotes_and_comments():
    ok = [
        ("SELECT ';'", "sqlite"),
        ('SELECT 1 AS ";"', "sqlite"),
        ("SELECT 1 AS [;]", "sqlite"),
        ("SELECT 1 AS `;`", "sqlite"),
        ("SELECT 1 /* ; */", "sqlite"),
        ("SELECT $$;$$", "postgresql"),
        ("SELECT $tag$ ; $ $tag$", "postgresql"),
        ("SELECT E'\\';'", "postgresql"),
        ("SELECT 1 /* /* ; */ */", "postgresql"),
    ]
    for sql, dialect in ok:  # accepted; a trailing comment is dropped
        assert query.check_statement(sql, dialect) == sql.split(" /*")[0]
    bad = [
        ("SELECT 1 /* /* */ ; DELETE FROM t", "sqlite"),
        ("SELECT E'\\';' ; DELETE FROM t", "sqlite"),
        ("SELECT 'unterminated", "sqlite"),
        ("SELECT $$ ; ", "postgresql"),
        ("SELECT 1 /* ", "postgresql"),
        ("SELECT [x;] ; DELETE FROM t", "postgresql"),
        ("SELECT 1 --\r; DELETE FROM t", "duckdb"),
        ("SELECT 1 --\r; DELETE FROM t", "sqlite"),
    ]
    for sql, dialect in bad:
        with pytest.raises(AtlasError):
            query.check_statement(sql, dialect)


def _cli(ws) -> list[str]:
    return ["--home", str(ws.home)] + (["--db", ws.db] if ws.db else [])


def test_cli_formats_limits_and_refusal(guarded, capsys):
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
    assert main(_cli(ws) + ["sql", "SELECT * FROM range(100000000)", "--limit", "3", "--format", "csv"]) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines() == ["range", "0", "1", "2"]
    assert cap.err.strip() == "note [SQL014] the result was cut at 3 rows (--limit N to change, at most 1000000)"
    assert main(_cli(ws) + ["sql", "DELETE FROM cohort"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [SQL003]")
    assert main(_cli(ws) + ["sql", "SELECT 1", "--format", "xml"]) == 2
    for bad in ("0", "nan", "inf", "-1", "601", "soon"):
        assert main(_cli(ws) + ["sql", "SELECT 1", "--timeout", bad]) == 2, bad
        assert "[SQL011]" in capsys.readouterr().err
    for bad in ("0", "-5", "1e9", "many"):
        assert main(_cli(ws) + ["sql", "SELECT 1", "--limit", bad]) == 2, bad
        assert "[SQL012]" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The snapshot: fresh after every write, rebuilt when stale, replaced atomically


def _in_file(ws, sql: str) -> list[tuple]:
    """``sql`` on the snapshot file as it is on disk (no freshness check, no rebuild)."""
    import duckdb

    con = duckdb.connect(str(snapshot.path(ws)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _current(ws) -> int:
    """The snapshot on disk is the registry's current state (refreshed after the commit); the counter."""
    state = snapshot.registry_state(ws)
    assert snapshot.read_state(snapshot.path(ws)) == state
    return state.change_counter


def test_every_writer_refreshes_the_snapshot_after_commit(registry, synth_two_cohorts, tmp_path):
    """Ingest, an issue, a metadata correction, an exclusion, a withdrawal, a release build and its
    publication: each raises the change counter and leaves a current snapshot behind, before any query."""
    from atlas_registry import release, revise, tracker
    from atlas_registry.ingest import ingest_path

    ws = registry
    assert query.run(ws, "SELECT COUNT(*) FROM scans").rows == [(0,)]
    seen = [_current(ws)]

    def step():
        seen.append(_current(ws))
        assert seen[-1] > seen[-2]

    ingest_path(ws, synth_two_cohorts / "native", workers=2)
    step()
    scans = [r[0] for r in _in_file(ws, "SELECT scan FROM scans WHERE cohort = 'c0009' ORDER BY scan")]
    assert len(scans) >= 3
    ingest_path(ws, synth_two_cohorts / "standard", workers=2)
    step()
    issue = tracker.open_issue(ws, scans[0], "stroke type is wrong")
    step()
    revise.correct_metadata(ws, scans[0], {"stroke_type": "Hemorrhagic"}, issue=issue.number)
    step()
    stroke = _in_file(ws, f"SELECT stroke_type FROM scans WHERE scan = '{scans[0]}'")
    assert stroke[0][0].lower() == "hemorrhagic"
    assert _in_file(ws, f"SELECT DISTINCT stroke_type FROM lesions WHERE scan = '{scans[0]}'") == stroke
    revise.exclude_scan(ws, scans[1], reason="motion")
    step()
    assert _in_file(ws, f"SELECT standard_status FROM scans WHERE scan = '{scans[1]}'") == [("excluded",)]
    revise.withdraw_scan(ws, scans[2], reason="consent withdrawn")
    step()
    assert _in_file(ws, f"SELECT COUNT(*) FROM lesions WHERE scan = '{scans[2]}'") == [(0,)]
    release.build(ws, "R1.1", tmp_path / "R1.1")
    step()
    assert _in_file(ws, "SELECT DISTINCT release, status FROM release_scans") == [("R1.1", "built")]
    release.publish(ws, "R1.1")
    step()
    assert _in_file(ws, f"SELECT releases FROM scans WHERE scan = '{scans[0]}'") == [("R1.1",)]
    # and what a query answers is what the registry's own views say
    with db.engine(ws).connect() as c:
        want = c.execute(text("SELECT scan, stroke_type, standard_status, releases FROM scans ORDER BY scan")).all()
    got = query.run(ws, "SELECT scan, stroke_type, standard_status, releases FROM scans ORDER BY scan").rows
    assert [tuple(r) for r in want] == got


def test_snapshot_is_rebuilt_when_a_writer_died_before_refreshing(sql_builder):
    """A commit that raised the counter but never refreshed the snapshot (a writer killed between
    the two): the next query sees the change."""
    b = sql_builder
    b.scan(
        "c0001s0001t01",
        [dict(hemisphere="left", location="cortical", volume=100.0)],
        report=dict(
            stroke_type="ischemic",
            primary_location="x",
            primary_hemisphere="left",
            vascular_territory="MCA",
            pvh=1,
            dwmh=1,
        ),
    )
    ws = b.commit()
    assert query.run(ws, "SELECT stroke_type FROM scans").rows == [("ischemic",)]
    before = _current(ws)
    with db.engine(ws).begin() as c:  # the writer's transaction, then it dies
        c.exec_driver_sql("UPDATE scan_current SET stroke_type = 'hemorrhagic'")
        c.exec_driver_sql("UPDATE lesion_current SET stroke_type = 'hemorrhagic'")
        c.exec_driver_sql(db.BUMP_COUNTER)
    assert snapshot.read_state(snapshot.path(ws)).change_counter == before  # stale on disk
    assert query.run(ws, "SELECT stroke_type FROM scans").rows == [("hemorrhagic",)]
    assert query.run(ws, "SELECT DISTINCT stroke_type FROM lesions").rows == [("hemorrhagic",)]
    assert _current(ws) == before + 1


def test_snapshot_of_another_registry_is_not_used(sql_builder, tmp_path):
    """A home pointed at another registry (same counter value): the snapshot names its registry."""
    import shutil

    from atlas_registry.config import Workspace

    ws = sql_builder.commit()
    assert query.run(ws, "SELECT COUNT(*) FROM scans").rows == [(0,)]
    other = Workspace(tmp_path / "other")
    db.upgrade(other)
    with db.engine(other).begin() as c:
        c.exec_driver_sql(f"UPDATE registry_state SET change_counter = {snapshot.registry_state(ws).change_counter}")
    (other.home / "sql").mkdir(parents=True)
    shutil.copyfile(snapshot.path(ws), snapshot.path(other))
    assert snapshot.read_state(snapshot.path(other)) != snapshot.registry_state(other)
    assert query.run(other, "SELECT COUNT(*) FROM scans").rows == [(0,)]
    assert snapshot.read_state(snapshot.path(other)) == snapshot.registry_state(other)


def test_snapshot_replacement_is_atomic_for_readers(sql_registry_factory, tmp_path):
    """Readers (another process) opening the snapshot while it is rebuilt over and over always see
    it whole; a connection opened before the replacements keeps reading its copy."""
    import subprocess
    import sys
    import threading

    ws = sql_registry_factory("sqlite")[0]
    counts = "SELECT (SELECT COUNT(*) FROM scans), (SELECT COUNT(*) FROM lesions), (SELECT COUNT(*) FROM release_scans)"
    want = query.run(ws, counts).rows[0]
    reader = (
        "import sys, duckdb\n"
        "got = set()\n"
        "for _ in range(40):\n"
        "    con = duckdb.connect(sys.argv[1], read_only=True)\n"
        f"    got.add(con.execute({counts!r}).fetchone())\n"
        "    con.close()\n"
        "print(sorted(got))\n"
    )
    held = query.registry_connection(ws)
    stop, errors, builds = threading.Event(), [], []

    def rebuild():
        try:
            while not stop.is_set():
                snapshot.build(ws)
                builds.append(1)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=rebuild)
    t.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", reader, str(snapshot.path(ws))], capture_output=True, text=True, timeout=300
        )
        assert held.execute(counts).fetchone() == want
    finally:
        stop.set()
        t.join()
        held.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([want])
    assert not errors and builds
    assert not [p for p in snapshot.path(ws).parent.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# sql --release / --release-dir: DuckDB on a release's Parquet files, in memory and locked down


@pytest.fixture
def release(sql_registry_factory, release_parquet):
    import hashlib

    ws = release_parquet(sql_registry_factory("sqlite")[0], "R1.0", "R1.0")
    folder = query.release_dir(ws, "R1.0") / "parquet"
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    yield ws, folder
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == digest


def test_release_queries_run_on_parquet(release, sql_registry_factory):
    ws, folder = release
    reg, plan = sql_registry_factory("sqlite")
    r = query.run_release(ws, "R1.0", "SELECT COUNT(*) AS n FROM scans")
    assert r.rows == [(len(plan.release_scans["R1.0"]),)]
    q = "SELECT cohort, hemisphere, location, COUNT(*) FROM lesions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    sub = "WHERE scan IN (SELECT scan FROM release_scans WHERE release = 'R1.0')"
    want = query.run(reg, q.replace("FROM lesions", f"FROM lesions {sub}")).rows
    assert query.run_release(ws, "R1.0", q).rows == want
    assert query.run_release(ws, None, q, folder=folder.parent).rows == want  # --release-dir
    assert query.run_release(ws, "R1.0", "SELECT COUNT(*) FROM lesions WHERE is_primary").rows == [
        (len(plan.release_scans["R1.0"]),)
    ]
    assert query.run_release(ws, "R1.0", "SELECT DISTINCT release, version, status FROM release_scans").rows == [
        ("R1.0", "1.0.0", "published")
    ]


@pytest.mark.parametrize(
    "name", ["nope", "R2.0", "../../evil", "../R1.0", "R1.0/../../x", "/etc", ".", "..", "", "R1.0\x00", "R1.0/parquet"]
)
def test_release_names_resolve_only_to_releases_the_registry_knows(release, tmp_path, name):
    """``../../evil`` (Parquet planted outside the releases) and unknown or draft releases are refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ws, _folder = release
    evil = ws.home / "releases" / ".." / ".." / "evil"
    (evil / "parquet").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"scan": ["stolen"]}), evil / "parquet" / "scans.parquet")
    with pytest.raises(AtlasError) as e:
        query.run_release(ws, name, "SELECT * FROM scans")
    assert e.value.code == "SQL009"


@pytest.mark.parametrize("stmt", [w for w in COMMON_WRITES if w.strip(" ;")])
def test_release_queries_cannot_write_or_read_other_files(release, stmt):
    ws, folder = release
    marker = TMP / f"atlas-sql-test-{uuid.uuid4().hex}"
    with pytest.raises(AtlasError) as e:
        query.run_release(
            ws, "R1.0", stmt.format(marker=marker, parquet=folder / "scans.parquet", registry=_registry_file(ws))
        )
    assert e.value.code.startswith("SQL")
    assert not list(TMP.glob(marker.name + "*"))


@pytest.mark.parametrize("stmt", LOCKDOWN_ONLY[5:] + ["SELECT * FROM read_parquet('{parquet}')"])
def test_release_lockdown_alone_refuses(release, stmt):
    """Without the statement check, the locked DuckDB connection refuses files, extensions and
    configuration by itself (its tables are a private in-memory copy of the Parquet files: the
    statement checks refuse writes to them, and nothing written there would outlive the call)."""
    import duckdb

    _ws, folder = release
    marker = TMP / f"atlas-sql-test-{uuid.uuid4().hex}"
    con = query.release_connection(folder)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(stmt.format(marker=marker, parquet=folder / "scans.parquet")).fetchall()
    finally:
        con.close()
    assert not list(TMP.glob(marker.name + "*"))


def test_cli_release(release, capsys):
    from atlas_registry.cli import main

    ws, folder = release
    assert main(_cli(ws) + ["sql", "SELECT COUNT(*) AS n FROM scans", "--release", "R1.0", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "n"
    assert main(_cli(ws) + ["sql", "SELECT COUNT(*) AS n FROM scans", "--release-dir", str(folder.parent)]) == 0
    capsys.readouterr()
    assert main(_cli(ws) + ["sql", "COPY scans TO '/tmp/x.csv'", "--release", "R1.0"]) == 1
    assert main(_cli(ws) + ["sql", "SELECT 1", "--release", "../../evil"]) == 1
    assert "[SQL009]" in capsys.readouterr().err
    assert main(_cli(ws) + ["sql", "SELECT 1", "--release", "R1.0", "--timeout", "nan"]) == 2
