"""The benchmark split of each scan of a release: ``release_scan.split``.

A release whose specification has a ``[splits]`` section assigns every scan (grouped by participant)
to ``training`` (images and masks released), ``test`` (images released, masks withheld) or ``hidden``
(not released at all). The build records the assignment here; publication freezes it with the rest of
the row, and ``atlas-registry score`` reads the withheld masks of a split through it. NULL for scans of
releases without splits (and of every release built before this migration).

Downgrading drops the column.

Revision ID: 0010_release_split
Revises: 0009_deposit_package
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_release_split"
down_revision = "0009_deposit_package"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("release_scan", sa.Column("split", sa.String(16), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # natively (SQLite >= 3.35): no table rebuild under the views
        bind.exec_driver_sql("ALTER TABLE release_scan DROP COLUMN split")
    else:
        op.drop_column("release_scan", "split")
