"""Read-only SQL: one query, in a locked-down in-process DuckDB, never on the registry's connection.

``atlas-registry sql`` runs on the SQL snapshot of the registry (:mod:`atlas_registry.snapshot`: the
views ``scans``, ``lesions`` and ``release_scans`` as a DuckDB file, checked against the registry's
change counter and rebuilt when stale); ``sql --release NAME`` on the Parquet files of a release the
registry knows (``--release-dir DIR``: of a release folder given explicitly). Same engine, same
dialect, same tables. Layers:

1. :func:`check_statement` tokenizes the text (literals, quoted identifiers and comments skipped; a
   ``--`` comment ends at ``\n`` or ``\r``) and refuses a second statement, anything but a query and
   write keywords; then DuckDB's own parser must find exactly one ``SELECT`` or ``EXPLAIN``.
2. The connection: the snapshot is attached read-only to a new in-memory database (a release's
   Parquet files are loaded into an in-memory database first); then ``enable_external_access = false``
   (no file outside, no ``COPY``, ``ATTACH``, ``read_csv``, ...), no extension installed or loaded, a memory limit, a
   bounded number of threads and temporary disk, and ``lock_configuration = true``, so no
   statement can change any of that.
3. Limits: a finite positive time limit (at most :data:`MAX_TIMEOUT_S`), enforced by
   ``interrupt()`` from one watchdog thread per process (:class:`_Watchdog`, no thread started per
   query); at most ``limit`` rows are fetched (``fetchmany(limit + 1)``: :data:`DEFAULT_LIMIT`, at
   most :data:`MAX_LIMIT`), and the result says when it was cut.
4. Per query, on a registry: one read of the change counter, the checks above, and a session of
   the locked snapshot kept open by the process (reused while the counter does not move).

Nothing a query does reaches the registry: the snapshot is a copy, replaced (never modified) by
writers. Refusals are :class:`~atlas_registry.errors.AtlasError` with codes ``SQL001``..``SQL014``.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Workspace
from .errors import AtlasError, UsageError

DEFAULT_TIMEOUT_S = 30.0

# Statement kinds a query may start with.
QUERY_STARTS = {"select", "with", "values", "table", "explain"}
DIALECT_STARTS = {"sqlite": {"pragma"}, "postgresql": {"show"}, "duckdb": {"show", "describe", "summarize", "from"}}
# Keywords that never appear in a read-only query (outside literals and quoted identifiers).
WRITE_KEYWORDS = {
    "insert",
    "update",
    "delete",
    "merge",
    "upsert",
    "create",
    "drop",
    "alter",
    "truncate",
    "grant",
    "revoke",
    "copy",
    "attach",
    "detach",
    "vacuum",
    "reindex",
    "cluster",
    "set",
    "reset",
    "lock",
    "listen",
    "notify",
    "unlisten",
    "call",
    "do",
    "prepare",
    "execute",
    "deallocate",
    "declare",
    "begin",
    "commit",
    "rollback",
    "savepoint",
    "checkpoint",
    "discard",
}
# Functions with side effects (or that run SQL given as text, which would bypass this check).
DENIED_FUNCTIONS = {
    "set_config",
    "nextval",
    "setval",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_notify",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_cancel_backend",
    "pg_terminate_backend",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    "txid_current",
    "pg_current_xact_id",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "ts_stat",
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
}
DENIED_PREFIXES = (
    "lo_",
    "pg_advisory",
    "pg_try_advisory",
    "pg_stat_reset",
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "pg_stat_file",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",
    "pg_replication_",
    "pg_logical_",
    "pg_wal_",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "dblink",
    "pg_export_snapshot",
)
# SQLite pragmas that may be read (and, where they take one, called with an argument).
SQLITE_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "collation_list",
    "function_list",
    "pragma_list",
    "compile_options",
    "database_list",
    "user_version",
    "schema_version",
    "application_id",
    "journal_mode",
    "page_size",
    "page_count",
    "freelist_count",
    "encoding",
    "foreign_keys",
    "query_only",
}
SQLITE_PRAGMAS_WITH_ARG = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}


@dataclass(frozen=True)
class Token:
    kind: str  # word | quoted | string | number | punct
    text: str  # lower-cased for words
    end: int = -1  # offset just past the token in the text (not compared)

    def __eq__(self, other) -> bool:
        return isinstance(other, Token) and (self.kind, self.text) == (other.kind, other.text)

    def __hash__(self) -> int:
        return hash((self.kind, self.text))


_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def tokenize(sql: str, dialect: str = "postgresql") -> list[Token]:
    """Split SQL into tokens, skipping comments; literals and quoted identifiers are single
    tokens (``[x]`` and backticks on SQLite, dollar quotes on PostgreSQL). Unterminated
    literals or comments are refused (``SQL002``)."""
    quotes = "'\"`[" if dialect == "sqlite" else "'\""
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):  # ends at a line feed or a carriage return (PostgreSQL, DuckDB)
            ends = [j for j in (sql.find("\n", i), sql.find("\r", i)) if j >= 0]
            i = min(ends) + 1 if ends else n
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:  # PostgreSQL nests block comments, SQLite does not
                if sql.startswith("/*", j) and dialect != "sqlite":
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise AtlasError("SQL002", "unterminated /* comment")
            i = j
        elif ch in quotes:
            close = {"'": "'", '"': '"', "`": "`", "[": "]"}[ch]
            backslash = (
                dialect != "sqlite"
                and ch == "'"
                and i > 0
                and sql[i - 1] in "eE"
                and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            )
            j = i + 1
            while True:
                if j >= n:
                    raise AtlasError("SQL002", "unterminated quoted text")
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == close:
                    if close != "]" and j + 1 < n and sql[j + 1] == close:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            body = sql[i + 1 : j].replace(close * 2, close)
            if out and ch == "'" and out[-1].kind == "word" and out[-1].text in ("e", "x", "b", "n", "u&"):
                out.pop()  # prefix of an E'', X'', B'' literal
            out.append(Token("string" if ch == "'" else "quoted", body, j + 1))
            i = j + 1
        elif ch == "$" and dialect != "sqlite" and (m := _DOLLAR.match(sql, i)):
            tag = m.group(0)
            j = sql.find(tag, m.end())
            if j < 0:
                raise AtlasError("SQL002", "unterminated dollar-quoted text")
            i = j + len(tag)
            out.append(Token("string", sql[m.end() : j], i))
        elif ch.isalpha() or ch == "_" or ord(ch) > 127:
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$" or ord(sql[j]) > 127):
                j += 1
            out.append(Token("word", sql[i:j].lower(), j))
            i = j
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "."):
                j += 1
            out.append(Token("number", sql[i:j], j))
            i = j
        else:
            out.append(Token("punct", ch, i + 1))
            i += 1
    return out


def check_statement(sql: str, dialect: str) -> str:
    """Return ``sql`` without trailing semicolons if it is one read-only query on ``dialect``
    (``sqlite`` | ``postgresql``); otherwise raise :class:`AtlasError`."""
    tokens = tokenize(sql, dialect)
    while tokens and tokens[-1] == Token("punct", ";"):
        tokens.pop()
    if not tokens:
        raise AtlasError("SQL001", "empty query")
    if Token("punct", ";") in tokens:
        raise AtlasError("SQL002", "one statement per call: found more than one (';' outside quotes)")
    words = [t.text for t in tokens if t.kind == "word"]
    first = next((t for t in tokens if not (t.kind == "punct" and t.text == "(")), tokens[0])
    starts = QUERY_STARTS | DIALECT_STARTS[dialect]
    if first.kind != "word" or first.text not in starts:
        raise AtlasError(
            "SQL003",
            f"only queries are allowed ({', '.join(sorted(starts)).upper()}); "
            f"refused a statement starting with {first.text!r}",
        )
    bad = sorted(set(words) & WRITE_KEYWORDS)
    if bad:
        raise AtlasError("SQL003", f"read-only: {bad[0].upper()} is not allowed")
    names = {t.text.lower() for t in tokens if t.kind in ("word", "quoted")}
    denied = sorted(n for n in names if n in DENIED_FUNCTIONS or n.startswith(DENIED_PREFIXES))
    if denied:
        raise AtlasError("SQL004", f"read-only: function {denied[0]}() has side effects and is not allowed")
    if first.text == "pragma":
        _check_pragma(tokens)
    return sql[: tokens[-1].end]


def _check_pragma(tokens: list[Token]) -> None:
    rest = tokens[1:]
    if len(rest) >= 3 and rest[1] == Token("punct", "."):  # schema.pragma
        rest = rest[2:]
    name = rest[0].text if rest and rest[0].kind == "word" else ""
    if name not in SQLITE_PRAGMAS:
        raise AtlasError("SQL005", f"PRAGMA {name or '?'} is not one of the read-only pragmas allowed here")
    tail = rest[1:]
    if any(t == Token("punct", "=") for t in tail):
        raise AtlasError("SQL005", f"read-only: PRAGMA {name} = ... sets a value")
    if tail and name not in SQLITE_PRAGMAS_WITH_ARG:
        raise AtlasError("SQL005", f"read-only: PRAGMA {name}(...) sets a value")


# ---------------------------------------------------------------------------------------------
# Execution


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple]
    elapsed_s: float
    truncated: bool = False  # more rows than the limit: the first ``limit`` are in ``rows``
    limit: int | None = None


MAX_TIMEOUT_S = 600.0
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 1_000_000
MEMORY_LIMIT = "1GB"
THREADS = 2
MAX_TEMP = "2GB"
# DuckDB statement types a query may be (its own parser's verdict).
_QUERY_TYPES = ("SELECT", "EXPLAIN")


def check_timeout(timeout_s) -> float:
    """``timeout_s`` if it is a finite number of seconds in (0, :data:`MAX_TIMEOUT_S`]; else a usage error."""
    import math

    try:
        t = float(timeout_s)
    except (TypeError, ValueError):
        t = math.nan
    if not math.isfinite(t) or t <= 0 or t > MAX_TIMEOUT_S:
        raise UsageError(
            "SQL011", f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, not {timeout_s!r}"
        )
    return t


def check_limit(limit) -> int:
    """``limit`` if it is a whole number of rows in [1, :data:`MAX_LIMIT`]; else a usage error."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise UsageError("SQL012", f"--limit must be a whole number of rows from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def _config(ws: Workspace | None) -> dict:
    cfg = {
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "memory_limit": MEMORY_LIMIT,
        "threads": THREADS,
        "max_temp_directory_size": MAX_TEMP,
    }
    if ws is not None:
        cfg["temp_directory"] = str(ws.home / "sql" / "tmp")
    return cfg


def _lock(con) -> None:
    """No file access from here on, and no configuration change (order matters)."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _duckdb_error(e: Exception) -> bool:
    return "duckdb" in type(e).__module__


# Open snapshots, one per file, kept for the next query of this process while the registry's change
# counter stays the same: the locked database instance and its buffers are reused, and so are the
# sessions (cursors) on it that a query left clean (:func:`run`); each query has a session to
# itself. A query can leave nothing behind in a session or the instance: the statement checks
# refuse every statement that sets or creates anything, and the attached snapshot is read-only.
@dataclass
class _Open:
    key: str
    state: Any
    con: Any  # duckdb.DuckDBPyConnection
    idle: list = field(default_factory=list)  # sessions no query is using


_OPEN: dict[str, _Open] = {}
_OPEN_LOCK = threading.Lock()
_MAX_IDLE = 4  # sessions kept per open snapshot


def _close_open(entry: _Open) -> None:
    for cur in entry.idle:
        cur.close()
    entry.idle.clear()
    entry.con.close()


def close_cached() -> None:
    """Close the snapshots kept open by :func:`registry_connection` (they are reopened on demand)."""
    with _OPEN_LOCK:
        for entry in _OPEN.values():
            _close_open(entry)
        _OPEN.clear()


def _session(con):
    cur = con.cursor()
    cur.execute("USE registry")
    return cur


def _current(ws: Workspace) -> _Open:
    """The open snapshot of ``ws`` at the registry's current state (``_OPEN_LOCK`` held): one read of
    the registry's change counter; the snapshot is (re)attached when the counter moved, and rebuilt
    first when it is missing or behind the counter."""
    import duckdb

    from . import snapshot

    state = snapshot.registry_state(ws)
    file = snapshot.path(ws)
    key = str(file)
    hit = _OPEN.pop(key, None)
    if hit is not None:
        if hit.state == state:
            _OPEN[key] = hit
            return hit
        _close_open(hit)
    for attempt in range(2):
        con, have = None, None
        if file.is_file():
            try:
                con = snapshot.attach(file, _config(ws))
                _lock(con)
                row = con.execute(f"SELECT registry_id, change_counter FROM {snapshot.INFO}").fetchone()
                have = snapshot.State(row[0], int(row[1])) if row else None
            except duckdb.Error:
                pass
        if con is not None and have is not None and (have == state or attempt):
            _OPEN[key] = _Open(key, have, con)
            return _OPEN[key]
        if con is not None:
            con.close()
        snapshot.build(ws)
    raise AtlasError("SQL009", f"the SQL snapshot {file} could not be opened")  # pragma: no cover


def registry_connection(ws: Workspace):
    """A connection (close it after use) to a locked DuckDB database holding a current snapshot of
    the registry of ``ws``: one read of the registry's change counter; the snapshot is (re)attached
    when the counter moved, and rebuilt first when it is missing or behind the counter."""
    with _OPEN_LOCK:
        return _session(_current(ws).con)


def release_dir(ws: Workspace, name: str):
    """Where a built release lives: ``<home>/releases/<name>``, or where the pointer file
    ``<home>/releases/<name>.location`` (written by ``release build --out``) says."""
    pointer = ws.home / "releases" / f"{name}.location"
    if pointer.is_file():
        return Path(pointer.read_text().strip())
    return ws.home / "releases" / name


_RELEASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def known_release(ws: Workspace, name: str | None) -> tuple[Path, dict]:
    """The folder of release ``name``, which the registry must know (built or published), and its
    row (name, version, status). Anything else, ``../x`` included, is refused (``SQL009``)."""
    if name is None or not _RELEASE_NAME.fullmatch(name) or ".." in name:
        raise AtlasError("SQL009", f"no release named {name!r} (a release name; for a folder use --release-dir)")
    from sqlalchemy import text

    from . import db

    if db.sqlite_file_missing(ws):
        raise AtlasError("SQL009", f"no registry database at {ws.url}")
    with db.engine(ws).connect() as c:
        row = c.execute(text("SELECT name, version, status FROM release WHERE name = :n"), {"n": name}).one_or_none()
    if row is None or row.status not in ("built", "published"):
        raise AtlasError("SQL009", f"the registry knows no built release named {name!r}")
    return release_dir(ws, name), {"release": row.name, "version": row.version, "status": row.status}


def release_connection(folder, required: tuple[str, ...] = (), about: dict | None = None, ws: Workspace | None = None):
    """An in-memory DuckDB database holding every ``*.parquet`` of ``folder`` as a table named
    after the file, and the view ``release_scans`` (the release's own membership: ``about`` gives
    its release, version and status), then locked: no access to files or extensions, no
    configuration changes."""
    import duckdb

    folder = Path(folder)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    missing = [n for n in required if not (folder / f"{n}.parquet").is_file()]
    if not files or missing:
        raise AtlasError("SQL009", f"no {', '.join(f'{n}.parquet' for n in missing) or 'Parquet files'} in {folder}")
    con = duckdb.connect(":memory:", config=_config(ws))
    try:
        for f in files:
            name = f.stem.replace('"', '""')
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet(?)', [str(f)])
        if (folder / "scans.parquet").is_file() and not (folder / "release_scans.parquet").is_file():
            about = about or {"release": folder.parent.name, "version": None, "status": None}
            lit = {k: "NULL" if v is None else "'" + str(v).replace("'", "''") + "'" for k, v in about.items()}
            con.execute(
                f"CREATE VIEW release_scans AS SELECT CAST({lit['release']} AS VARCHAR) AS release,"
                f" CAST({lit['version']} AS VARCHAR) AS version, CAST({lit['status']} AS VARCHAR) AS status,"
                " scan, cohort, standard_status = 'included' AS in_standard FROM scans"
            )
        _lock(con)
    except duckdb.Error as e:
        con.close()
        raise AtlasError("SQL009", f"cannot read the Parquet files of {folder}: {' '.join(str(e).split())}") from None
    return con


def _refusal(exc: Exception) -> AtlasError:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    low = msg.lower()
    if "interrupt" in low:
        return AtlasError("SQL007", f"query stopped at the time limit: {msg}")
    if "out of memory" in low or "memory limit" in low or "temp_directory" in low:
        return AtlasError("SQL013", f"query needs more memory than it may use ({MEMORY_LIMIT}): {msg}")
    if any(k in low for k in ("read-only", "read only", "permission", "disabled by configuration", "locked")):
        return AtlasError("SQL006", f"refused (read-only, no file access): {msg}")
    return AtlasError("SQL008", f"query failed: {msg}")


class _Watchdog:
    """One thread per process that interrupts the connections whose query ran past its deadline: a
    query arms it (no thread started per query) and disarms it when done. It sleeps until the
    earliest deadline and is woken only when a query arrives with an earlier one. An interrupt and a
    disarm exclude each other, so a query that returned is never interrupted afterwards (and DuckDB
    clears an interrupt when its connection starts the next query)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, Any]] = {}
        self._tokens = itertools.count()
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, con, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="atlas-sql-watchdog", daemon=True)
                self._thread.start()
            token = next(self._tokens)
            self._due[token] = (deadline, con)
            if deadline < self._wake_at:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._due.pop(token, None)

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, con) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[token]
                        try:
                            con.interrupt()
                        except Exception:  # noqa: BLE001 - a connection closed meanwhile has nothing to stop
                            pass
                self._wake_at = min((d for d, _ in self._due.values()), default=math.inf)
                self._cond.wait(None if self._wake_at == math.inf else self._wake_at - now)


_WATCHDOG = _Watchdog()
# A forked child has no watchdog thread (and maybe a copy of a held lock): it starts its own.
os.register_at_fork(after_in_child=lambda: globals().update(_WATCHDOG=_Watchdog()))


def execute(con, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, limit: int = DEFAULT_LIMIT) -> Result:
    """Run one query on the locked DuckDB connection ``con``, with the time limit and row cap."""
    timeout_s, limit = check_timeout(timeout_s), check_limit(limit)
    return _execute(con, check_statement(sql, "duckdb"), timeout_s, limit)


def _execute(con, stmt: str, timeout_s: float, limit: int) -> Result:
    """:func:`execute` of a statement :func:`check_statement` passed, with checked limits."""
    start = time.perf_counter()
    try:
        parsed = con.extract_statements(stmt)
    except Exception as e:
        if _duckdb_error(e):
            raise _refusal(e) from None
        raise
    if len(parsed) != 1:
        raise AtlasError("SQL002", f"one statement per call: DuckDB reads {len(parsed)}")
    kind = str(parsed[0].type).rsplit(".", 1)[-1]
    if kind not in _QUERY_TYPES:
        raise AtlasError("SQL003", f"only queries are allowed; refused a {kind} statement")
    watchdog = _WATCHDOG
    token = watchdog.arm(con, timeout_s)
    try:
        cur = con.execute(stmt)
        rows = cur.fetchmany(limit + 1)
        cols = [d[0] for d in cur.description or ()]
    except MemoryError:
        raise AtlasError(
            "SQL013", "the result does not fit in memory; ask for fewer rows (--limit) or aggregate"
        ) from None
    except Exception as e:
        if _duckdb_error(e):
            raise _refusal(e) from None
        raise
    finally:
        watchdog.disarm(token)
    truncated = len(rows) > limit
    return Result(cols, rows[:limit], time.perf_counter() - start, truncated, limit)


def run(ws: Workspace, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, limit: int = DEFAULT_LIMIT) -> Result:
    """Run one read-only query on the registry of ``ws`` (its SQL snapshot, made current first)."""
    timeout_s, limit = check_timeout(timeout_s), check_limit(limit)
    stmt = check_statement(sql, "duckdb")
    with _OPEN_LOCK:
        entry = _current(ws)
        cur = entry.idle.pop() if entry.idle else _session(entry.con)
    clean = False
    try:
        result = _execute(cur, stmt, timeout_s, limit)
        clean = not result.truncated  # every row read: no result left pending in the session
        return result
    finally:
        with _OPEN_LOCK:
            if clean and _OPEN.get(entry.key) is entry and len(entry.idle) < _MAX_IDLE:
                entry.idle.append(cur)
                cur = None
        if cur is not None:
            cur.close()


def run_release(
    ws: Workspace,
    name: str | None,
    sql: str,
    *,
    folder=None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    limit: int = DEFAULT_LIMIT,
) -> Result:
    """Run one query on the Parquet files of release ``name`` (known to the registry) or of the
    release folder ``folder`` given explicitly (DuckDB, in memory, locked down)."""
    timeout_s, limit = check_timeout(timeout_s), check_limit(limit)
    check_statement(sql, "duckdb")
    if folder is not None:
        folder = Path(folder)
        con = release_connection(
            folder / "parquet" if (folder / "parquet").is_dir() else folder,
            about={"release": folder.name, "version": None, "status": None},
            ws=ws,
        )
    else:
        where, about = known_release(ws, name)
        con = release_connection(where / "parquet", about=about, ws=ws)
    try:
        return execute(con, sql, timeout_s=timeout_s, limit=limit)
    finally:
        con.close()


def fetch(ws: Workspace, sql: str, release: str | Path | None = None, required: tuple[str, ...] = ()) -> list[tuple]:
    """Every row of a trusted query (the statistics' own SQL) on the registry's snapshot or on a
    release's Parquet files (by name: the registry must know it; or a release folder given as a
    :class:`~pathlib.Path`), with no row cap."""
    if release is None:
        con = registry_connection(ws)
    elif isinstance(release, Path):
        con = release_connection(
            release / "parquet" if (release / "parquet").is_dir() else release,
            required=required,
            about={"release": release.name, "version": None, "status": None},
            ws=ws,
        )
    else:
        where, about = known_release(ws, release)
        con = release_connection(where / "parquet", required=required, about=about, ws=ws)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Output


def _plain(v):
    import datetime
    import decimal

    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return v


def render(result: Result, fmt: str = "table") -> str:
    """The result as ``table`` (aligned text), ``csv`` or ``json`` (a list of objects)."""
    import csv
    import io
    import json

    rows = [[_plain(v) for v in r] for r in result.rows]
    if fmt == "json":
        return json.dumps([dict(zip(result.columns, r, strict=True)) for r in rows], ensure_ascii=False, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.columns)
        w.writerows([["" if v is None else v for v in r] for r in rows])
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise AtlasError("SQL010", f"unknown format {fmt!r} (table|csv|json)")

    def cell(v) -> str:
        return "NULL" if v is None else f"{v:.10g}" if isinstance(v, float) else str(v)

    cells = [[str(c) for c in result.columns]] + [[cell(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(result.columns))]
    numeric = [all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) and rows for i in range(len(widths))]
    lines = []
    for k, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if numeric[i] and k else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            ).rstrip()
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
