"""Shared fixtures. Blocks are separated by ``# --- <name> fixtures ---`` markers."""

from __future__ import annotations

import os
import uuid

import pytest

# --- database fixtures ---
# Every database test runs on SQLite and, when ATLAS_TEST_POSTGRES_URL is set (CI sets it), on
# PostgreSQL too, each test in a schema of its own that is dropped afterwards.

PG_ENV = "ATLAS_TEST_POSTGRES_URL"


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


def _pg_schema_url(base: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema_url():
    """A factory of fresh PostgreSQL schemas (URLs whose search_path is that schema)."""
    from sqlalchemy import create_engine, text

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set")
    eng = create_engine(base)
    made: list[str] = []

    def make() -> str:
        schema = "t_" + uuid.uuid4().hex[:16]
        with eng.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return _pg_schema_url(base, schema)

    yield make
    from atlas_registry.db import engine_for

    for url in [_pg_schema_url(base, s) for s in made]:
        engine_for(url).dispose()
    with eng.begin() as c:
        for schema in made:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture(params=_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture
def workspace(backend, tmp_path, request):
    """An empty workspace (no schema yet) on the parametrized backend."""
    from atlas_registry.config import Workspace

    if backend == "sqlite":
        return Workspace(tmp_path / "ws")
    make = request.getfixturevalue("pg_schema_url")
    return Workspace(tmp_path / "ws", make())


@pytest.fixture
def registry(workspace):
    """A workspace whose registry is at the newest schema."""
    from atlas_registry import db

    db.upgrade(workspace)
    return workspace
