"""Engines, sessions and schema upgrades for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, create_engine
from sqlmodel import Session

from .config import Workspace, migrations_dir
from .errors import AtlasError


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _what_to_check(url) -> str:
    if url.get_backend_name() == "sqlite":
        return f"check that {url.database} can be opened: its folder exists and is writable, and it is a file"
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    return (
        f"check that the server at {where} is running and accepts connections, that the database "
        f"{url.database!r} exists (createdb, then atlas-registry init) and the user and password "
        "in --db / ATLAS_REGISTRY_DB"
    )


def unreachable(url: str, reason: str) -> AtlasError:
    """``DB001``: the registry database cannot be reached or opened, in one line with what to check."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    reason = " ".join(reason.split())
    return AtlasError(
        "DB001",
        f"cannot connect to the registry {u.render_as_string(hide_password=True)}: {reason} ({_what_to_check(u)})",
    )


def _connect_failed(ctx) -> Exception | None:
    """``handle_error``: a failure to connect at all (server down or refusing, no such database or
    role, a wrong password, an SQLite file that cannot be opened) becomes ``DB001`` instead of a
    multi-line ``OperationalError``; errors of a working connection are left alone."""
    if ctx.connection is not None or getattr(ctx, "is_pre_ping", False):
        return None
    if not isinstance(ctx.sqlalchemy_exception, (exc.OperationalError, exc.InterfaceError)):
        return None
    return unreachable(str(ctx.engine.url), str(ctx.original_exception))


@lru_cache(maxsize=16)
def engine_for(url: str) -> Engine:
    """One engine per URL (cached). SQLite gets foreign keys, WAL and a busy timeout. A database
    that cannot be reached is one line: :func:`unreachable` (``DB001``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise unreachable(url, f"cannot create the folder {Path(path).parent}: {e.strerror or e}") from None
        eng = create_engine(url, connect_args={"timeout": 30})
        event.listen(eng, "connect", _sqlite_pragmas)
    else:
        eng = create_engine(url, pool_pre_ping=True)
    event.listen(eng, "handle_error", _connect_failed)
    return eng


def engine(ws: Workspace) -> Engine:
    ws.ensure()
    return engine_for(ws.url)


#: Raise the registry's change counter (the row of ``registry_state``, migration 0006).
BUMP_COUNTER = "UPDATE registry_state SET change_counter = change_counter + 1 WHERE id = 1"


def _note_flush(sess: Session, _ctx) -> None:
    sess.info["atlas_wrote"] = True


@contextmanager
def session(ws: Workspace) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error.

    A session that wrote (flushed rows, or took :func:`write_lock`) raises the registry's change
    counter in the same transaction, and after the commit refreshes the SQL snapshot of the
    registry (:func:`atlas_registry.snapshot.after_commit`; a failure there leaves the snapshot
    stale, which the next query notices and rebuilds)."""
    with Session(engine(ws), expire_on_commit=False) as s:
        event.listen(s, "after_flush", _note_flush)
        try:
            yield s
            s.flush()
            wrote = s.info.get("atlas_wrote") or s.info.get("atlas_locked")
            if wrote and not s.info.get("atlas_counted"):
                s.connection().exec_driver_sql(BUMP_COUNTER)
            s.commit()
        except BaseException:
            s.rollback()
            raise
    if wrote:
        from . import snapshot

        snapshot.after_commit(ws, None if s.info.get("atlas_full") else s.info.get("atlas_touched"))


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(ws: Workspace, revision: str = "head") -> None:
    """Create or upgrade the registry schema (idempotent)."""
    from alembic import command

    ws.ensure()
    command.upgrade(alembic_config(ws.url), revision)


def downgrade(ws: Workspace, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(ws.url), revision)


def sqlite_file_missing(ws: Workspace) -> bool:
    """Whether the registry is an SQLite file that does not exist (connecting would create it)."""
    if not ws.is_sqlite:
        return False
    from sqlalchemy.engine import make_url

    path = make_url(ws.url).database
    if not path:
        return False
    return path != ":memory:" and not path.startswith("file:") and not Path(path).is_file()


def current_revision(ws: Workspace) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine(ws).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def write_lock(sess: Session) -> None:
    """Serialize writers: the registry's one write lock, held until the transaction ends.

    SQLite: ``BEGIN IMMEDIATE`` takes the database write lock now (not at the first write).
    Then, on both backends, the change counter is raised (:data:`BUMP_COUNTER`): on PostgreSQL
    the row lock this takes on ``registry_state`` is the writers' lock. Only a role that may
    ``UPDATE`` that table can take it (a reader role cannot: ``init --reader-role``), unlike an
    advisory lock, which any role can take and hold. Ingest and revisions take it before they
    look at what the registry already holds, so two concurrent writers never both insert.
    """
    conn = sess.connection()
    if conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None  # a live connection
        if not dbapi.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    if not sess.info.get("atlas_counted"):
        conn.exec_driver_sql(BUMP_COUNTER)
    sess.info["atlas_locked"] = sess.info["atlas_counted"] = True
