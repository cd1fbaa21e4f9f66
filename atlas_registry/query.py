"""Read-only SQL against the registry, whatever the query says.

Layers, each enough on its own for the common cases, together for the rest:

1. :func:`check_statement` tokenizes the text (string literals, quoted identifiers, comments and
   PostgreSQL dollar quotes are skipped, so a ``;`` inside them is not a separator) and refuses a
   second statement, any statement that is not a query (``SELECT``, ``WITH``, ``VALUES``,
   ``TABLE``, ``EXPLAIN``, ``SHOW`` on PostgreSQL, ``PRAGMA name`` / ``PRAGMA name(arg)`` on
   SQLite), write keywords anywhere (a data-modifying ``WITH``, ``SELECT ... FOR UPDATE``) and
   functions with side effects (``set_config``, ``nextval``, large objects, advisory locks,
   server files, replication slots, functions that run a query given as text, ...).
2. SQLite: the file is opened read-only (``file:...?mode=ro``), ``PRAGMA query_only=ON``, and an
   authorizer denies every action but reading, selecting, calling harmless functions and
   read-only pragmas; a progress handler enforces the time limit.
3. PostgreSQL: a fresh connection (never pooled), ``SET TRANSACTION READ ONLY`` with
   ``statement_timeout`` and ``lock_timeout``; the transaction is always rolled back and the
   connection closed, so session settings cannot leak.
4. A release (``--release NAME``): its Parquet files are loaded into an in-memory DuckDB database
   that is then locked (``enable_external_access = false``, ``lock_configuration = true``): a
   query can neither read nor write any file, and nothing it does outlives the call.

PostgreSQL lets a superuser do some things even in a read-only transaction (write a server file
with ``COPY``, reset statistics, create replication slots): layer 1 refuses them, but for users
you do not trust, point ``--db`` at a role that only has ``SELECT``.

Refusals are :class:`~atlas_registry.errors.AtlasError` with codes ``SQL001``..``SQL009``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Workspace
from .errors import AtlasError

DEFAULT_TIMEOUT_S = 30.0

# Statement kinds a query may start with.
QUERY_STARTS = {"select", "with", "values", "table", "explain"}
DIALECT_STARTS = {"sqlite": {"pragma"}, "postgresql": {"show"}, "duckdb": {"show", "describe", "summarize", "from"}}
# Keywords that never appear in a read-only query (outside literals and quoted identifiers).
WRITE_KEYWORDS = {
    "insert", "update", "delete", "merge", "upsert", "create", "drop", "alter", "truncate", "grant",
    "revoke", "copy", "attach", "detach", "vacuum", "reindex", "cluster", "set", "reset", "lock",
    "listen", "notify", "unlisten", "call", "do", "prepare", "execute", "deallocate", "declare",
    "begin", "commit", "rollback", "savepoint", "checkpoint", "discard",
}
# Functions with side effects (or that run SQL given as text, which would bypass this check).
DENIED_FUNCTIONS = {
    "set_config", "nextval", "setval", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
    "pg_notify", "pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_switch_wal",
    "pg_create_restore_point", "pg_cancel_backend", "pg_terminate_backend", "pg_log_backend_memory_contexts",
    "pg_import_system_collations", "txid_current", "pg_current_xact_id", "query_to_xml",
    "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema", "ts_stat",
    "load_extension", "fts3_tokenizer", "readfile", "writefile", "edit",
}
DENIED_PREFIXES = (
    "lo_", "pg_advisory", "pg_try_advisory", "pg_stat_reset", "pg_read_", "pg_ls_", "pg_file_", "pg_stat_file",
    "pg_create_", "pg_drop_", "pg_copy_", "pg_replication_", "pg_logical_", "pg_wal_", "pg_backup_",
    "pg_start_backup", "pg_stop_backup", "dblink", "pg_export_snapshot",
)
# SQLite pragmas that may be read (and, where they take one, called with an argument).
SQLITE_PRAGMAS = {
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "collation_list", "function_list", "pragma_list", "compile_options", "database_list", "user_version",
    "schema_version", "application_id", "journal_mode", "page_size", "page_count", "freelist_count",
    "encoding", "foreign_keys", "query_only",
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
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
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
            backslash = dialect != "sqlite" and ch == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
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
            body = sql[i + 1:j].replace(close * 2, close)
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
            out.append(Token("string", sql[m.end():j], i))
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
        raise AtlasError("SQL003", f"only queries are allowed ({', '.join(sorted(starts)).upper()}); "
                                   f"refused a statement starting with {first.text!r}")
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


def _sqlite_path(ws: Workspace) -> str:
    from sqlalchemy.engine import make_url

    path = make_url(ws.url).database
    if not path or path == ":memory:":
        raise AtlasError("SQL009", "the registry is an in-memory SQLite database; nothing to query")
    return path


# sqlite3 authorizer action codes that a query needs.
_SQLITE_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _sqlite_authorizer(action, arg1, arg2, _db, _source):
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    if action in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in SQLITE_PRAGMAS and (arg2 is None or name in SQLITE_PRAGMAS_WITH_ARG):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def connect_sqlite_readonly(path: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> sqlite3.Connection:
    """A read-only SQLite connection: ``mode=ro``, ``query_only``, an authorizer and a deadline
    (checked by a progress handler from the moment of the call)."""
    from pathlib import Path
    from urllib.parse import quote

    if not Path(path).is_file():
        raise AtlasError("SQL009", f"no registry database at {path}")
    conn = sqlite3.connect(f"file:{quote(str(Path(path).absolute()))}?mode=ro", uri=True, timeout=5)
    for pragma in ("query_only=ON", "cache_size=-65536", "mmap_size=268435456", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")
    conn.set_authorizer(_sqlite_authorizer)
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    return conn


def begin_pg_readonly(cur, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Start the read-only transaction a query runs in (PostgreSQL): read only, time limits, and
    memory for sorts and hashes of analytic queries (no spill to disk at registry sizes) and no JIT
    (its compile time exceeds what it saves on queries of this size), and parallel workers only for
    queries large enough to repay starting them: on two cores, a count over 250,000 lesions took
    22-40 ms with two workers (their start-up varies) and a steady 32 ms without."""
    cur.execute("SET TRANSACTION READ ONLY")
    cur.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
    cur.execute("SET LOCAL lock_timeout = 5000")
    cur.execute("SET LOCAL idle_in_transaction_session_timeout = 60000")
    cur.execute("SET LOCAL work_mem = '64MB'")
    cur.execute("SET LOCAL jit = off")
    cur.execute("SET LOCAL parallel_setup_cost = 10000")


def _pg_connect(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    eng = create_engine(url, poolclass=NullPool)
    raw = eng.raw_connection()
    return eng, raw


def _refusal(exc: Exception) -> AtlasError:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    low = msg.lower()
    if "interrupted" in low or "statement timeout" in low or "canceling statement" in low:
        return AtlasError("SQL007", f"query stopped at the time limit: {msg}")
    if any(k in low for k in ("read-only", "readonly", "not authorized", "permission denied", "query_only")):
        return AtlasError("SQL006", f"refused by the database (read-only): {msg}")
    return AtlasError("SQL008", f"query failed: {msg}")


def release_dir(ws: Workspace, name: str):
    """Where a built release lives: ``<home>/releases/<name>``, or where the pointer file
    ``<home>/releases/<name>.location`` (written by ``release build --out``) says."""
    pointer = ws.home / "releases" / f"{name}.location"
    if pointer.is_file():
        return Path(pointer.read_text().strip())
    return ws.home / "releases" / name


def release_connection(folder, required: tuple[str, ...] = ()):
    """An in-memory DuckDB database holding every ``*.parquet`` of ``folder`` as a table named
    after the file, then locked: no access to files or extensions, no configuration changes."""
    import duckdb

    folder = Path(folder)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    missing = [n for n in required if not (folder / f"{n}.parquet").is_file()]
    if not files or missing:
        raise AtlasError("SQL009", f"no {', '.join(f'{n}.parquet' for n in missing) or 'Parquet files'} in {folder}")
    con = duckdb.connect(":memory:")
    for f in files:
        name = f.stem.replace('"', '""')
        con.execute(f"CREATE TABLE \"{name}\" AS SELECT * FROM read_parquet('{str(f).replace(chr(39), chr(39) * 2)}')")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_release(ws: Workspace, name: str, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                max_rows: int | None = None) -> Result:
    """Run one query on release ``name``'s Parquet files (DuckDB, in memory, locked down)."""
    import threading

    stmt = check_statement(sql, "duckdb")
    start = time.perf_counter()
    con = release_connection(release_dir(ws, name) / "parquet")
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cur = con.execute(stmt)
        rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
        cols = [d[0] for d in cur.description or ()]
    except Exception as e:  # duckdb.Error; imported lazily
        if "duckdb" in type(e).__module__:
            raise _refusal(e) from None
        raise
    finally:
        timer.cancel()
        con.close()
    return Result(cols, rows, time.perf_counter() - start)


def dialect_of(ws: Workspace) -> str:
    return "sqlite" if ws.is_sqlite else "postgresql"


def run(ws: Workspace, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int | None = None) -> Result:
    """Run one read-only query on the registry of ``ws``; nothing can be changed."""
    stmt = check_statement(sql, dialect_of(ws))
    return execute_readonly(ws, stmt, timeout_s=timeout_s, max_rows=max_rows)


def execute_readonly(ws: Workspace, stmt: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                     max_rows: int | None = None) -> Result:
    """Run ``stmt`` on a read-only connection (layers 2 and 3 only: no statement check)."""
    start = time.perf_counter()
    if dialect_of(ws) == "sqlite":
        conn = connect_sqlite_readonly(_sqlite_path(ws), timeout_s)
        try:
            cur = conn.execute(stmt)
            rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
            cols = [d[0] for d in cur.description or ()]
        except sqlite3.Error as e:
            raise _refusal(e) from None
        finally:
            conn.close()
        return Result(cols, rows, time.perf_counter() - start)
    eng, raw = _pg_connect(ws.url)
    try:
        pg = raw.driver_connection
        pg.autocommit = False
        with pg.cursor() as cur:
            try:
                begin_pg_readonly(cur, timeout_s)
                cur.execute(stmt)
                rows = (cur.fetchmany(max_rows) if max_rows else cur.fetchall()) if cur.description else []
                cols = [d.name for d in cur.description or ()]
            except Exception as e:  # psycopg.Error; imported lazily
                if type(e).__module__.startswith("psycopg"):
                    raise _refusal(e) from None
                raise
        return Result(cols, rows, time.perf_counter() - start)
    finally:
        try:
            raw.driver_connection.rollback()
        finally:
            raw.close()
            eng.dispose()


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
        return json.dumps([dict(zip(result.columns, r)) for r in rows], ensure_ascii=False)
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
        lines.append("  ".join(c.rjust(w) if numeric[i] and k else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
