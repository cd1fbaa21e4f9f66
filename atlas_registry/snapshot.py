"""The SQL snapshot: a read-only columnar copy (a DuckDB file) of the registry's views.

``atlas-registry sql`` never runs on the registry's connection: it runs in an in-process DuckDB
over ``<home>/sql/registry.duckdb``, which holds the views ``scans``, ``lesions`` and
``release_scans`` as tables (the same engine, dialect and tables as ``sql --release`` over a
release's Parquet files) and the table ``atlas_snapshot`` (one row: the registry's
``registry_id`` and ``change_counter`` it was copied at, :class:`atlas_registry.models.RegistryState`).

Fresh: every committed write raises the registry's change counter and refreshes the snapshot after
its commit (:func:`after_commit`, called by :func:`atlas_registry.db.session`); a query reads the
counter once (:func:`registry_state`) and rebuilds a snapshot that is missing or stale (a writer
died between its commit and the refresh, or the home is shared with writers elsewhere). A new
snapshot is written to a temporary file in the same folder and moved into place with
``os.replace``: a reader that opened the old file keeps reading it whole, one that opens it later
gets the new one whole; builders take a lock file (``fcntl.flock``) so that they queue rather than
all export at once.

A refresh after a write that recomputed the current-state rows of some scans
(:func:`atlas_registry.facts.refresh` records them) copies the snapshot and replaces the rows of
those scans only, when the snapshot is exactly one change behind; anything else (several
changes, a release recorded or published, the first build) exports the views whole.

Rows are read in one read-only transaction (the counter and the rows of the same state): SQLite
through ``sqlite3`` opened read-only, PostgreSQL with ``COPY (...) TO STDOUT`` (CSV, parsed by
Arrow); DuckDB's own sqlite/postgres scanners are extensions, which are not loaded.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import views
from .config import Workspace
from .errors import AtlasError

FILE = "registry.duckdb"
INFO = "atlas_snapshot"
#: The tables of the snapshot, in the order they are written.
TABLES = (views.SCANS, views.LESIONS, views.RELEASE_SCANS)


def path(ws: Workspace) -> Path:
    """Where the snapshot of ``ws`` lives."""
    return ws.home / "sql" / FILE


@dataclass(frozen=True)
class State:
    registry_id: str
    change_counter: int


def _sqlite_file(ws: Workspace) -> str:
    from sqlalchemy.engine import make_url

    p = make_url(ws.url).database
    if not p or p == ":memory:":
        raise AtlasError("SQL009", "the registry is an in-memory SQLite database; nothing to query")
    if not Path(p).is_file():
        raise AtlasError("SQL009", f"no registry database at {p}")
    return p


def _sqlite_ro(ws: Workspace):
    import sqlite3
    from urllib.parse import quote

    conn = sqlite3.connect(
        f"file:{quote(str(Path(_sqlite_file(ws)).absolute()))}?mode=ro",
        uri=True,
        timeout=30,
        isolation_level=None,
        check_same_thread=False,  # the freshness check's connection is shared under a lock
    )
    conn.execute("PRAGMA query_only=ON")
    return conn


def _missing_state(e: Exception) -> AtlasError:
    return AtlasError(
        "SQL009",
        f"the registry has no change counter (schema older than 0008_change_counter: "
        f"run atlas-registry init): {' '.join(str(e).split())}",
    )


_STATE_SQL = "SELECT registry_id, change_counter FROM registry_state WHERE id = 1"


# Read-only SQLite connections kept for the freshness check of every query: opening one costs more
# than the read. Keyed by process (a forked worker opens its own) and by the file's identity (a
# registry replaced at the same path gets a new connection); autocommit, so every read sees the
# latest committed counter.
_STATE_CONNECTIONS: dict[tuple[int, str, int, int], sqlite3.Connection] = {}
_STATE_LOCK = threading.Lock()


def _sqlite_state_row(ws: Workspace):
    path = _sqlite_file(ws)
    st = os.stat(path)
    key = (os.getpid(), path, st.st_dev, st.st_ino)
    with _STATE_LOCK:
        conn = _STATE_CONNECTIONS.get(key)
        if conn is None:
            conn = _sqlite_ro(ws)
            _STATE_CONNECTIONS[key] = conn
        try:
            return conn.execute(_STATE_SQL).fetchone()
        except sqlite3.Error as e:
            _STATE_CONNECTIONS.pop(key, None)
            conn.close()
            raise _missing_state(e) from None


def registry_state(ws: Workspace) -> State:
    """The registry's identity and change counter: one read."""
    if ws.is_sqlite:
        row = _sqlite_state_row(ws)
    else:
        from sqlalchemy import exc

        from . import db

        try:
            with db.engine_for(ws.url).connect() as c:
                row = c.exec_driver_sql(_STATE_SQL).one_or_none()
        except exc.ProgrammingError as e:
            raise _missing_state(e) from None
    if row is None:
        raise _missing_state(Exception("no row"))
    return State(str(row[0]), int(row[1]))


# ---------------------------------------------------------------------------------------------
# Reading the registry


def _arrow_schema(view: str):
    import pyarrow as pa

    kinds = {"INTEGER": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}
    return pa.schema([(c, kinds.get(views.DUCKDB_TYPES.get(c, ""), pa.string())) for c in views.COLUMNS[view]])


def _select(view: str, where: str | None) -> str:
    cols = ", ".join(views.COLUMNS[view])
    return f"SELECT {cols} FROM {view}" + (f" WHERE {where}" if where else "")


def _sqlite_rows(conn, view: str, where: str | None, params=()):
    import pyarrow as pa

    schema = _arrow_schema(view)
    rows = conn.execute(_select(view, where), params).fetchall()
    cols = list(zip(*rows, strict=False)) if rows else [() for _ in schema]
    arrays = []
    values: tuple | list
    for field, values in zip(schema, cols, strict=False):
        if pa.types.is_boolean(field.type):
            values = [None if v is None else bool(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _pg_rows(cur, view: str, where: str | None, params=()):
    import io

    import pyarrow.csv as pcsv

    schema = _arrow_schema(view)
    buf = io.BytesIO()
    sql = f"COPY ({_select(view, where)}) TO STDOUT (FORMAT csv, HEADER false, NULL '\\N')"
    with cur.copy(sql, params or None) as copy:
        for chunk in copy:
            buf.write(chunk)
    if not buf.tell():
        return schema.empty_table()
    buf.seek(0)
    return pcsv.read_csv(
        buf,
        read_options=pcsv.ReadOptions(column_names=schema.names),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=schema,
            null_values=["\\N"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


@contextmanager
def _reading(ws: Workspace):
    """(kind, handle) in one read-only transaction of the registry: the state and rows agree."""
    if ws.is_sqlite:
        conn = _sqlite_ro(ws)
        try:
            conn.execute("BEGIN")
            yield "sqlite", conn
        finally:
            conn.close()
        return
    from . import db

    raw = db.engine_for(ws.url).raw_connection()
    pg = raw.driver_connection
    assert pg is not None  # a live connection
    try:
        pg.rollback()
        pg.autocommit = True
        with pg.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield "postgresql", cur
            finally:
                cur.execute("ROLLBACK")
    finally:
        pg.autocommit = False
        raw.close()


def _state_in(kind: str, handle) -> State:
    try:
        row = handle.execute(_STATE_SQL).fetchone()
    except Exception as e:  # noqa: BLE001 -- sqlite3 / psycopg error: an older schema
        raise _missing_state(e) from None
    return State(str(row[0]), int(row[1]))


def _rows(kind: str, handle, view: str, where: str | None = None, params=()):
    return (_sqlite_rows if kind == "sqlite" else _pg_rows)(handle, view, where, params)


# ---------------------------------------------------------------------------------------------
# Writing the snapshot


@contextmanager
def _builder_lock(folder: Path):
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _create(con, view: str, table) -> None:
    cols = ", ".join(f"{c} {views.DUCKDB_TYPES.get(c, 'VARCHAR')}" for c in views.COLUMNS[view])
    con.execute(f"CREATE TABLE {view} ({cols})")
    _insert(con, view, table)


def _insert(con, view: str, table) -> None:
    if table.num_rows:
        con.register("atlas_rows", table)
        con.execute(f"INSERT INTO {view} SELECT * FROM atlas_rows")
        con.unregister("atlas_rows")


def _write_info(con, state: State) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {INFO} (registry_id VARCHAR, change_counter BIGINT, built_at VARCHAR)")
    con.execute(
        f"INSERT INTO {INFO} VALUES (?, ?, ?)",
        [state.registry_id, state.change_counter, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())],
    )


def attach(file: Path, config: dict | None = None):
    """A new in-memory DuckDB database with the snapshot ``file`` attached read-only as its default
    catalog ``registry``. Not ``duckdb.connect(file)``: within one process that returns the
    database instance already open on that path, if any (the file it opened, maybe replaced since,
    and only with the same configuration)."""
    import duckdb

    con = duckdb.connect(":memory:", config=config or {})
    try:
        con.execute(f"ATTACH '{str(file).replace(chr(39), chr(39) * 2)}' AS registry (READ_ONLY)")
        con.execute("USE registry")
    except BaseException:
        con.close()
        raise
    return con


def read_state(file: Path) -> State | None:
    """The state a snapshot file was taken at (None: no file, or not a snapshot)."""
    import duckdb

    if not file.is_file():
        return None
    try:
        con = attach(file)
    except duckdb.Error:
        return None
    try:
        row = con.execute(f"SELECT registry_id, change_counter FROM {INFO}").fetchone()
        return State(row[0], int(row[1])) if row else None
    except duckdb.Error:
        return None
    finally:
        con.close()


def _temp(folder: Path) -> Path:
    return folder / f".{FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def _install(tmp: Path, dest: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)


def build(ws: Workspace) -> State:
    """Export the views whole into a new snapshot and move it into place; the state it holds."""
    import duckdb

    dest = path(ws)
    with _builder_lock(dest.parent):
        tmp = _temp(dest.parent)
        try:
            with _reading(ws) as (kind, handle):
                state = _state_in(kind, handle)
                tables = {view: _rows(kind, handle, view) for view in TABLES}
            con = duckdb.connect(str(tmp))
            try:
                for view in TABLES:
                    _create(con, view, tables[view])
                _write_info(con, state)
            finally:
                con.close()
            _install(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return state


def _codes(kind: str, handle, ids: list[int]) -> list[str]:
    out: list[str] = []
    for k in range(0, len(ids), 900):
        chunk = ids[k : k + 900]
        marks = ", ".join("?" if kind == "sqlite" else "%s" for _ in chunk)
        cur = handle.execute(f"SELECT code FROM timepoint WHERE id IN ({marks})", chunk)
        out += [r[0] for r in cur.fetchall()]
    return out


def refresh_scans(ws: Workspace, timepoint_ids) -> State | None:
    """Replace the rows of the scans ``timepoint_ids`` in a copy of the snapshot, when the snapshot
    is exactly one change behind the registry; the new state, or None if that does not hold (then
    :func:`build`)."""
    import duckdb

    dest = path(ws)
    with _builder_lock(dest.parent):
        old = read_state(dest)
        tmp = _temp(dest.parent)
        try:
            with _reading(ws) as (kind, handle):
                state = _state_in(kind, handle)
                if (
                    old is None
                    or old.registry_id != state.registry_id
                    or old.change_counter != state.change_counter - 1
                ):
                    return None
                codes = _codes(kind, handle, sorted({int(i) for i in timepoint_ids}))
                new = {}
                for view in (views.SCANS, views.LESIONS):
                    new[view] = [
                        _rows(
                            kind,
                            handle,
                            view,
                            f"scan IN ({', '.join('?' if kind == 'sqlite' else '%s' for _ in chunk)})",
                            chunk,
                        )
                        for chunk in (codes[k : k + 900] for k in range(0, len(codes), 900))
                    ]
            shutil.copyfile(dest, tmp)
            con = duckdb.connect(str(tmp))
            try:
                con.execute("BEGIN")
                con.execute("CREATE TEMP TABLE atlas_codes (scan VARCHAR)")
                if codes:
                    con.executemany("INSERT INTO atlas_codes VALUES (?)", [[c] for c in codes])
                for view in (views.LESIONS, views.SCANS):
                    con.execute(f"DELETE FROM {view} WHERE scan IN (SELECT scan FROM atlas_codes)")
                for view in (views.SCANS, views.LESIONS):
                    for table in new[view]:
                        _insert(con, view, table)
                _write_info(con, state)
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            _install(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return state


def after_commit(ws: Workspace, touched=None) -> None:
    """Refresh the snapshot after a committed write, if there is one to keep fresh (none is built
    until the first query). ``touched``: the timepoint ids whose current-state rows the write
    recomputed, when that is all it changed in the views (then only their rows are replaced), or
    None. Never raises: a snapshot left stale is rebuilt by the next query."""
    try:
        if not path(ws).is_file():
            return
        if touched is not None and refresh_scans(ws, touched) is not None:
            return
        build(ws)
    except Exception:  # noqa: BLE001 - the write is committed; the reader's check rebuilds
        return


def fresh(ws: Workspace) -> Path:
    """The snapshot file, rebuilt first if it is missing or behind the registry (one read of the
    registry's change counter when it is current)."""
    state = registry_state(ws)
    dest = path(ws)
    have = read_state(dest)
    if have != state:
        build(ws)
    return dest
