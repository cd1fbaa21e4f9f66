"""Covering indexes for joins of ``release_scans``, ``scans`` and ``lesions``.

* ``scan_current (cohort, n_lesions, scan)``: the scans of each cohort with their lesion count,
  read in cohort order from the index alone (joins grouped by cohort, filters on ``n_lesions``);
* ``release_scan (release_id, timepoint_id, in_standard)``: a release's membership and its
  standardized subset from the index alone (``release_scans ... WHERE release = ... AND
  in_standard``).

Upgrading also refreshes the planner statistics of both tables, so that the next queries use them.

Revision ID: 0004_covering_indexes
Revises: 0003_current_state
"""

from alembic import op

revision = "0004_covering_indexes"
down_revision = "0003_current_state"
branch_labels = None
depends_on = None

# (index, table, columns), as declared in atlas_registry.models.
INDEXES = (
    ("ix_scan_current_cohort", "scan_current", ["cohort", "n_lesions", "scan"]),
    ("ix_release_scan_membership", "release_scan", ["release_id", "timepoint_id", "in_standard"]),
)


def upgrade() -> None:
    bind = op.get_bind()
    for name, table, cols in INDEXES:
        op.create_index(name, table, cols)
        bind.exec_driver_sql(f"ANALYZE {table}")


def downgrade() -> None:
    for name, table, _cols in reversed(INDEXES):
        op.drop_index(name, table_name=table)
