"""The intake crosswalk: site subjects and sessions to registry subject numbers and timepoints.

``intake_subject`` (cohort, keyed digest of the site subject identifier → subject number) and
``intake_session`` (cohort, subject number, keyed digest of the site session label → timepoint).
Restricted: no view reads them and no exporter touches them; the site identifiers themselves are
never stored, only their HMAC-SHA-256 with the workspace's intake key.

Revision ID: 0007_intake_crosswalk
Revises: 0006_frozen_release_scan
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_intake_crosswalk"
down_revision = "0006_frozen_release_scan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_subject",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cohort", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("site_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("cohort", "site_key", name="uq_intake_subject_key"),
        sa.UniqueConstraint("cohort", "number", name="uq_intake_subject_number"),
        sa.CheckConstraint("number >= 1", name="ck_intake_subject_number"),
    )
    op.create_table(
        "intake_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cohort", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("subject_number", sa.Integer(), nullable=False),
        sa.Column("session_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("timepoint", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("cohort", "subject_number", "session_key", name="uq_intake_session_key"),
        sa.UniqueConstraint("cohort", "subject_number", "timepoint", name="uq_intake_session_timepoint"),
        sa.CheckConstraint("timepoint >= 1", name="ck_intake_session_timepoint"),
    )


def downgrade() -> None:
    op.drop_table("intake_session")
    op.drop_table("intake_subject")
