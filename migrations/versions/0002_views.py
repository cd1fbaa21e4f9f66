"""Views ``scans``, ``lesions`` and ``release_scans`` (current rows only), SQLite and PostgreSQL.

The SQL text lives in :mod:`atlas_registry.views` (the single source of truth for the view
columns); upgrading (re)creates the views from it, so a later revision that changes a view calls
the same :func:`atlas_registry.views.install` again. Views only: no tables, no indexes.

Revision ID: 0002_views
Revises: 0001_initial
"""

from alembic import op

from atlas_registry import views

revision = "0002_views"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    views.install(op.get_bind(), withdrawal=False)  # the schema of 0002: no timepoint.withdrawn


def downgrade() -> None:
    bind = op.get_bind()
    for stmt in views.drop_statements(bind.dialect.name):
        bind.exec_driver_sql(stmt)
