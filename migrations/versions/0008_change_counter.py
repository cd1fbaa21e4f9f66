"""The registry's change counter and writers' lock row.

* ``registry_state``: one row (``id = 1``) with a random ``registry_id`` (names this registry) and
  ``change_counter``, raised by one in every committed write. The SQL snapshot
  (:mod:`atlas_registry.snapshot`) records both and is rebuilt when they differ from the registry's.
* On PostgreSQL the writers' lock is this row, taken with ``SELECT ... FOR UPDATE`` (before: an
  advisory lock, which any role could take and hold, blocking every writer).

Revision ID: 0008_change_counter
Revises: 0007_intake_crosswalk
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008_change_counter"
down_revision = "0007_intake_crosswalk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("registry_id", sa.String(32), nullable=False),
        sa.Column("change_counter", sa.BigInteger(), nullable=False),
    )
    op.execute(f"INSERT INTO registry_state (id, registry_id, change_counter) VALUES (1, '{uuid.uuid4().hex}', 1)")


def downgrade() -> None:
    op.drop_table("registry_state")
