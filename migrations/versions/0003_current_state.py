"""The current-state layer: tables ``scan_current`` and ``lesion_current`` (the rows of the views
``scans`` and ``lesions``, kept up to date by :mod:`atlas_registry.facts`), their indexes, the
views redefined on them, and partial unique indexes that allow one current row per lesion number,
annotation, mask (variant, space) and scan report.

Upgrading fills the tables from the versioned ones (:func:`atlas_registry.facts.refresh`);
downgrading restores the views of ``0002_views`` (joins over the versioned tables).

Revision ID: 0003_current_state
Revises: 0002_views
"""

import sqlalchemy as sa
from alembic import op

from atlas_registry import facts, views

revision = "0003_current_state"
down_revision = "0002_views"
branch_labels = None
depends_on = None

CURRENT = sa.text("retired_rev_id IS NULL")
# (index, table, columns) of the partial unique indexes on the current rows.
ONE_CURRENT = (
    ("uq_lesion_one_current", "lesion", ["timepoint_id", "number"]),
    ("uq_annotation_one_current", "lesion_annotation", ["lesion_id"]),
    ("uq_mask_one_current", "lesion_mask", ["lesion_id", "variant", "space"]),
    ("uq_report_one_current", "scan_report", ["timepoint_id"]),
)
# The tables the current-state rows are computed from.
SOURCES = (
    "cohort",
    "subject",
    "scanner",
    "timepoint",
    "scan_report",
    "lesion",
    "lesion_annotation",
    "lesion_mask",
    "release",
    "release_scan",
)
# (index, table, columns, unique) of the current-state tables.
INDEXES = (
    ("ix_scan_current_scan", "scan_current", ["scan"], True),
    ("ix_lesion_current_timepoint_id", "lesion_current", ["timepoint_id"], False),
    ("ix_lesion_current_scan", "lesion_current", ["scan", "volume_mm3"], False),
    ("ix_lesion_current_place", "lesion_current", ["cohort", "hemisphere", "location"], False),
    ("ix_lesion_current_territory", "lesion_current", ["vascular_territory", "volume_mm3"], False),
    ("ix_lesion_current_location_pvh", "lesion_current", ["location", "pvh", "scan"], False),
)


def _string(n: int | None = None):
    """Compared byte-wise on both backends (PostgreSQL: ``COLLATE "C"``), as in the models."""
    kind = sa.String if n else sa.Text
    return kind(n).with_variant(kind(n, collation="C"), "postgresql")


def _scan_columns() -> list:
    """The columns both tables share: the scan's key and facts."""
    return [
        sa.Column("scan", _string(13), nullable=False),
        sa.Column("cohort", _string(5), nullable=False),
        sa.Column("subject", _string(10), nullable=False),
        sa.Column("timepoint", sa.Integer(), nullable=False),
        sa.Column("stroke_type", _string(100), nullable=True),
        sa.Column("primary_location", _string(200), nullable=True),
        sa.Column("primary_hemisphere", _string(16), nullable=True),
        sa.Column("vascular_territory", _string(100), nullable=True),
        sa.Column("pvh", sa.Integer(), nullable=True),
        sa.Column("dwmh", sa.Integer(), nullable=True),
        sa.Column("field_strength_t", sa.Float(), nullable=True),
        sa.Column("scanner_manufacturer", _string(100), nullable=True),
        sa.Column("scanner_model", _string(100), nullable=True),
        sa.Column("voxel_x_mm", sa.Float(), nullable=True),
        sa.Column("voxel_y_mm", sa.Float(), nullable=True),
        sa.Column("voxel_z_mm", sa.Float(), nullable=True),
        sa.Column("standard_status", _string(16), nullable=False),
        sa.Column("exclusion_reason", _string(32), nullable=True),
    ]


def upgrade() -> None:
    for name, table, cols in ONE_CURRENT:
        op.create_index(name, table, cols, unique=True, sqlite_where=CURRENT, postgresql_where=CURRENT)
    op.create_table(
        "scan_current",
        *_scan_columns(),
        sa.Column("timepoint_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n_lesions", sa.Integer(), nullable=False),
        sa.Column("primary_volume_mm3", sa.Float(), nullable=True),
        sa.Column("total_volume_mm3", sa.Float(), nullable=True),
        sa.Column("releases", _string(), nullable=True),
        sa.ForeignKeyConstraint(["timepoint_id"], ["timepoint.id"]),
        sa.PrimaryKeyConstraint("timepoint_id"),
    )
    op.create_table(
        "lesion_current",
        *_scan_columns(),
        sa.Column("lesion_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("lesion", sa.Integer(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("hemisphere", _string(8), nullable=True),
        sa.Column("location", _string(16), nullable=True),
        sa.Column("mask_hemisphere", _string(8), nullable=True),
        sa.Column("mask_location", _string(16), nullable=True),
        sa.Column("volume_mm3", sa.Float(), nullable=True),
        sa.Column("voxel_count", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["lesion_id"], ["lesion.id"]),
        sa.ForeignKeyConstraint(["timepoint_id"], ["timepoint.id"]),
        sa.PrimaryKeyConstraint("lesion_id"),
    )
    for name, table, cols, unique in INDEXES:
        op.create_index(name, table, cols, unique=unique)
    bind = op.get_bind()
    for table in SOURCES:  # planner statistics first: without them PostgreSQL may join badly
        bind.exec_driver_sql(f"ANALYZE {table}")
    facts.refresh(bind, withdrawal=False)  # the schema of 0003: no timepoint.withdrawn yet
    views.install(bind, views.CURRENT, withdrawal=False)


def downgrade() -> None:
    views.install(op.get_bind(), views.JOINS, withdrawal=False)
    for name, table, _cols, _unique in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("lesion_current")
    op.drop_table("scan_current")
    for name, table, _cols in reversed(ONE_CURRENT):
        op.drop_index(name, table_name=table)
