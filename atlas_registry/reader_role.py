"""A least-privilege PostgreSQL role for direct database clients (psql, R, a BI tool):
``atlas-registry init --reader-role NAME``.

The role may log in, use the registry's schema and ``SELECT`` from the views ``scans``,
``lesions`` and ``release_scans`` -- nothing else: no table (not even ``registry_state``), no
sequence, no ``CREATE`` in the schema. Its sessions default to read-only transactions, a statement
timeout, an idle-in-transaction timeout, a lock timeout and the registry's schema as search path.
The writers' lock (:func:`atlas_registry.db.write_lock`) is a row lock on ``registry_state``,
which needs ``UPDATE`` on it: the role can neither take nor hold it, and the locks it can take
(``ACCESS SHARE`` on the views' tables by reading them; advisory locks, which the registry no
longer uses) conflict with no write of the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import views
from .config import Workspace
from .errors import AtlasError, UsageError

STATEMENT_TIMEOUT = "30s"
IDLE_TIMEOUT = "60s"
LOCK_TIMEOUT = "5s"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass
class ReaderRole:
    name: str
    schema: str
    created: bool
    views: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "role": self.name,
            "schema": self.schema,
            "created": self.created,
            "views": list(self.views),
            "statement_timeout": STATEMENT_TIMEOUT,
        }


def create(ws: Workspace, name: str) -> ReaderRole:
    """Create (or bring up to date) the reader role ``name`` on the PostgreSQL registry of ``ws``."""
    if ws.is_sqlite:
        raise UsageError(
            "ROLE001",
            "--reader-role needs a PostgreSQL registry (--db postgresql+psycopg://...); "
            "a SQLite registry has no roles: share its SQL snapshot or a release instead",
        )
    if not _NAME.fullmatch(name or ""):
        raise UsageError(
            "ROLE002",
            f"--reader-role must be a lower-case PostgreSQL name ([a-z_][a-z0-9_]*, at most "
            f"63 characters), not {name!r}",
        )
    from psycopg import sql
    from sqlalchemy.exc import DBAPIError

    from . import db

    raw = db.engine(ws).raw_connection()
    pg = raw.driver_connection
    assert pg is not None  # a live connection
    try:
        with pg.cursor() as cur:
            schema = cur.execute("SELECT current_schema()").fetchone()[0]
            role, sch = sql.Identifier(name), sql.Identifier(schema)
            exists = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [name]).fetchone()
            if exists and exists[0]:
                raise AtlasError("ROLE003", f"role {name} is a superuser; choose another name for a reader role")
            if not exists:
                cur.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"
                    ).format(role)
                )
            for stmt in (
                "REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
                "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
                "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM {r}",
                "REVOKE CREATE ON SCHEMA {s} FROM {r}",
                "GRANT USAGE ON SCHEMA {s} TO {r}",
            ):
                cur.execute(sql.SQL(stmt).format(s=sch, r=role))
            for view in views.VIEWS:
                cur.execute(sql.SQL("GRANT SELECT ON {}.{} TO {}").format(sch, sql.Identifier(view), role))
            for setting, value in (
                ("default_transaction_read_only", "on"),
                ("statement_timeout", STATEMENT_TIMEOUT),
                ("idle_in_transaction_session_timeout", IDLE_TIMEOUT),
                ("lock_timeout", LOCK_TIMEOUT),
                ("search_path", schema),
            ):
                cur.execute(
                    sql.SQL("ALTER ROLE {} SET {} = {}").format(role, sql.Identifier(setting), sql.Literal(value))
                )
        pg.commit()
    except DBAPIError as e:
        pg.rollback()
        raise AtlasError("ROLE004", f"could not set up role {name}: {' '.join(str(e.orig).split())}") from None
    except Exception as e:
        pg.rollback()
        if type(e).__module__.startswith("psycopg"):
            raise AtlasError("ROLE004", f"could not set up role {name}: {' '.join(str(e).split())}") from None
        raise
    finally:
        raw.close()
    return ReaderRole(name, schema, not exists, views.VIEWS)
