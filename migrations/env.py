"""Alembic environment: the target metadata is the registry's SQLModel metadata."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import atlas_registry.models  # noqa: F401  (registers every table)
from atlas_registry.db import engine_for

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    connectable = config.attributes.get("connection") or engine_for(url)
    if hasattr(connectable, "connect") and not hasattr(connectable, "execute"):
        with connectable.connect() as connection:
            if connection.dialect.name == "sqlite":
                _run_sqlite(connection, url)
            else:
                _run(connection, url)
    else:
        _run(connectable, url)


def _run_sqlite(connection, url: str) -> None:
    """SQLite: batch operations rebuild tables that other tables reference (SQLite cannot alter a
    constraint), which foreign-key enforcement would refuse mid-way. As SQLite's documentation asks
    (ALTER TABLE, "other kinds of table schema changes"), enforcement is off while the migrations run
    (the pragma only takes effect outside a transaction), every reference is checked before their
    transaction commits, and enforcement is on again for the connection's next user."""
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        _run(connection, url, check_references=True)
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _run(connection, url: str, check_references: bool = False) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if check_references:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke {len(broken)} reference(s), e.g. {broken[:3]}; rolled back")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
