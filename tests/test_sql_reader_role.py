"""``init --reader-role NAME`` on a real PostgreSQL: the role reads the views and nothing else, can
write nothing, and can neither take nor hold the writers' lock: an ingest runs while it holds every
lock it can take."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from atlas_registry import db, reader_role
from atlas_registry.errors import AtlasError, UsageError

pytestmark = pytest.mark.skipif(not os.environ.get("ATLAS_TEST_POSTGRES_URL"), reason="ATLAS_TEST_POSTGRES_URL not set")


@pytest.fixture
def pg_registry(pg_schema_url, tmp_path):
    from atlas_registry.config import Workspace

    ws = Workspace(tmp_path / "ws", pg_schema_url())
    db.upgrade(ws)
    return ws


@pytest.fixture
def role_name():
    name = "atlas_reader_" + uuid.uuid4().hex[:10]
    yield name
    from sqlalchemy import create_engine, text

    eng = create_engine(os.environ["ATLAS_TEST_POSTGRES_URL"])
    with eng.begin() as c:
        if c.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
            c.exec_driver_sql(f'DROP OWNED BY "{name}" CASCADE')
            c.exec_driver_sql(f'DROP ROLE "{name}"')
    eng.dispose()


def _connect_as(ws, role: str):
    """A psycopg connection to the registry's database as ``role`` (the server trusts local roles)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(ws.url)
    return psycopg.connect(host=u.host, port=u.port or 5432, dbname=u.database, user=role, autocommit=True)


def _refused(con, stmt: str) -> str:
    import psycopg

    with pytest.raises(psycopg.Error) as e:
        with con.transaction():  # a transaction block of its own (LOCK TABLE needs one)
            con.execute(stmt)
    return str(e.value)


def test_reader_role_reads_views_only_and_writes_nothing(pg_registry, role_name, capsys):
    from atlas_registry import bulkload
    from atlas_registry.cli import main

    ws = pg_registry
    bulkload.load(ws, 20, 40, seed=1, analyze=False)
    assert main(["--home", str(ws.home), "--db", ws.db, "init", "--reader-role", role_name]) == 0
    out = capsys.readouterr().out
    assert f"reader role {role_name} created: SELECT on scans, lesions, release_scans" in out
    assert reader_role.create(ws, role_name).created is False  # idempotent

    con = _connect_as(ws, role_name)
    try:
        assert con.execute("SELECT COUNT(*) FROM scans").fetchone() == (20,)
        assert con.execute("SELECT COUNT(*) FROM lesions").fetchone() == (40,)
        assert con.execute("SELECT COUNT(*) FROM release_scans").fetchone()[0] > 0
        assert con.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert con.execute("SHOW statement_timeout").fetchone() == ("30s",)
        for stmt in (
            "SELECT * FROM scan_current",
            "SELECT * FROM timepoint",
            "SELECT * FROM registry_state",
            "SELECT nextval('cohort_id_seq')",
        ):
            assert "permission denied" in _refused(con, stmt), stmt
        # even with read-only transactions switched off, privileges refuse every write
        con.execute("SET default_transaction_read_only = off")
        for stmt in (
            "INSERT INTO scans (scan) VALUES ('x')",
            "UPDATE registry_state SET change_counter = 0",
            "DELETE FROM timepoint",
            "CREATE TABLE evil (x int)",
            "DROP VIEW scans",
            "TRUNCATE scan_current",
            "LOCK TABLE scans IN EXCLUSIVE MODE",
            "COPY scan_current TO STDOUT",
            "COPY (SELECT 1) TO PROGRAM 'id'",
            "SELECT pg_read_file('/etc/hostname')",
            "SELECT * FROM scans FOR UPDATE",
            "SELECT * FROM scans FOR SHARE",
            "SELECT * FROM registry_state FOR UPDATE",
            "SELECT * FROM registry_state FOR KEY SHARE",
        ):
            msg = _refused(con, stmt)
            assert "permission denied" in msg or "must be" in msg or "privilege" in msg, (stmt, msg)
    finally:
        con.close()
    with db.engine(ws).connect() as c:  # nothing changed
        assert c.exec_driver_sql("SELECT COUNT(*) FROM scans").scalar() == 20
        assert c.exec_driver_sql("SELECT to_regclass('evil')").scalar() is None


def test_reader_role_cannot_block_an_ingest(pg_registry, role_name, synth_two_cohorts):
    """The role holds every lock it can take (a transaction reading the views, ACCESS SHARE locks
    on them, the advisory lock the registry used to serialize writers) while an ingest runs: the
    ingest completes and commits."""
    from atlas_registry.ingest import ingest_path

    ws = pg_registry
    reader_role.create(ws, role_name)
    con = _connect_as(ws, role_name)
    con.autocommit = False
    try:
        con.execute("SELECT COUNT(*) FROM scans, lesions").fetchone()
        con.execute("LOCK TABLE scans, lesions, release_scans IN ACCESS SHARE MODE")
        con.execute("SELECT pg_advisory_lock(7271930001)")
        con.execute("SELECT pg_advisory_xact_lock(7271930001)")
        done, errors = threading.Event(), []

        def ingest():
            try:
                ingest_path(ws, synth_two_cohorts / "native", workers=2)
                done.set()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=ingest, daemon=True)
        t.start()
        t.join(timeout=240)
        assert not errors and done.is_set(), errors or "the ingest is blocked by the reader"
    finally:
        con.rollback()
        con.close()
    with db.engine(ws).connect() as c:
        assert c.exec_driver_sql("SELECT COUNT(*) FROM scans").scalar() > 0


def test_reader_role_refusals(registry, tmp_path, pg_schema_url):
    from atlas_registry.config import Workspace

    if registry.is_sqlite:
        with pytest.raises(UsageError) as e:
            reader_role.create(registry, "atlas_reader")
        assert e.value.code == "ROLE001"
    ws = Workspace(tmp_path / "pg", pg_schema_url())
    db.upgrade(ws)
    for bad in ("Reader", "x; DROP TABLE scans", "", "a" * 64):
        with pytest.raises(UsageError) as e:
            reader_role.create(ws, bad)
        assert e.value.code == "ROLE002"
    with pytest.raises(AtlasError) as e:
        reader_role.create(ws, "postgres")
    assert e.value.code == "ROLE003"
