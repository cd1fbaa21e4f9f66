"""The current-state layer: ``scan_current`` and ``lesion_current`` hold the rows of the views
``scans`` and ``lesions``, so that queries read flat, indexed tables instead of joining the
versioned ones.

The rows are derived data. Whatever changes the registry recomputes the rows of the scans it
touched, in its own transaction, after its own rows are written:

* ingest, every revision, the bulk loader: :func:`refresh` (or :func:`refresh_scans` by code);
* publishing a release: :func:`refresh_releases` (the ``releases`` column lists published
  releases only, so building a release changes nothing here);
* anything else (a change by hand, a cohort or scanner row edited in place): :func:`refresh` of
  the scans concerned, or of every scan (``refresh(sess)``).

A refresh deletes the rows of those timepoints and inserts them again with ``INSERT ... SELECT``
over :func:`atlas_registry.views.source_sql`: the joins that defined the views before this layer
existed (revision ``0002_views``), so a refreshed row is exactly what those joins give. Long lists
of timepoints go in chunks of :data:`CHUNK`. The statements mean the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import views

#: Timepoints per statement (bound parameters stay far below every backend's limit).
CHUNK = 900
# A stored value differs from a computed one (NULLs compare equal).
_DIFFERS = {"sqlite": "IS NOT", "postgresql": "IS DISTINCT FROM"}


def _note(sess: Session | Connection, timepoint_ids) -> None:
    """Tell the session which scans' rows changed (None: possibly all), so that the SQL snapshot
    refreshed after its commit replaces only those (:func:`atlas_registry.snapshot.after_commit`)."""
    if isinstance(sess, Session):
        if timepoint_ids is None:
            sess.info["atlas_full"] = True
        else:
            sess.info.setdefault("atlas_touched", set()).update(int(i) for i in timepoint_ids)


def _connection(sess: Session | Connection) -> Connection:
    """The connection of ``sess`` with the session's pending changes flushed to it."""
    if isinstance(sess, Session):
        sess.flush()
        return sess.connection()
    return sess


def chunks(values: Iterable) -> list[list]:
    """The distinct ``values``, sorted, in lists of at most :data:`CHUNK`."""
    values = sorted(set(values))
    return [values[k : k + CHUNK] for k in range(0, len(values), CHUNK)]


@lru_cache(maxsize=8)
def _refresh_statements(dialect: str, some: bool, withdrawal: bool = True) -> tuple:
    """DELETE then INSERT ... SELECT of both tables; ``some``: only the timepoints bound as ``ids``;
    ``withdrawal``: leave withdrawn scans out (the schema since migration 0005)."""
    stmts = []
    for view in (views.LESIONS, views.SCANS):  # lesion rows first: they point at the timepoint
        stmts.append(f"DELETE FROM {views.TABLES[view]}" + (" WHERE timepoint_id IN :ids" if some else ""))
    for view in (views.SCANS, views.LESIONS):
        cols = ", ".join(views.KEYS[view] + views.STORED[view])
        select = views.source_sql(
            view, dialect, stored=True, where="t.id IN :ids" if some else None, withdrawal=withdrawal
        )
        stmts.append(f"INSERT INTO {views.TABLES[view]} ({cols})\n{select}")
    if some:
        return tuple(text(s).bindparams(bindparam("ids", expanding=True)) for s in stmts)
    return tuple(text(s) for s in stmts)


def refresh(sess: Session | Connection, timepoint_ids: Iterable[int] | None = None, *, withdrawal: bool = True) -> None:
    """Recompute the current-state rows of ``timepoint_ids`` (``None``: of every timepoint) from the
    versioned tables, in the transaction of ``sess`` (a Session, flushed first, or a Connection).
    A timepoint id that matches no timepoint, or a withdrawn scan, leaves no rows. ``withdrawal``:
    False for the migrations before 0005, whose schema has no ``timepoint.withdrawn``."""
    conn = _connection(sess)
    timepoint_ids = None if timepoint_ids is None else list(timepoint_ids)
    _note(sess, timepoint_ids)
    if timepoint_ids is None:
        for stmt in _refresh_statements(conn.dialect.name, False, withdrawal):
            conn.execute(stmt)
        return
    for chunk in chunks(int(i) for i in timepoint_ids):
        for stmt in _refresh_statements(conn.dialect.name, True, withdrawal):
            conn.execute(stmt, {"ids": chunk})


def refresh_scans(sess: Session | Connection, codes: Iterable[str]) -> None:
    """:func:`refresh` of the scans ``cXXXXsXXXXtXX`` in ``codes``."""
    conn = _connection(sess)
    find = text("SELECT id FROM timepoint WHERE code IN :codes").bindparams(bindparam("codes", expanding=True))
    ids = [i for chunk in chunks(codes) for i in conn.execute(find, {"codes": chunk}).scalars()]
    _note(sess, ids)
    refresh(conn, ids)


def refresh_releases(sess: Session | Connection) -> None:
    """Recompute the ``releases`` column (call it when a release is published). It is stored once
    per scan (``lesions`` reads it from there); only rows whose list changes are written."""
    conn = _connection(sess)
    _note(sess, None)
    dialect = conn.dialect.name
    scans = views.TABLES[views.SCANS]
    conn.execute(
        text(
            f"UPDATE {scans} SET releases = x.releases"
            f" FROM (SELECT sc.timepoint_id, {views.releases_sql(dialect, 'sc.timepoint_id')} AS releases"
            f" FROM {scans} sc) AS x"
            f" WHERE x.timepoint_id = {scans}.timepoint_id AND {scans}.releases {_DIFFERS[dialect]} x.releases"
        )
    )
