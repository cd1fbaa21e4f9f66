"""A release's scans as its build saw them: exclusion reasons and public labels in ``release_scan``.

A published release is rebuilt from the registry as of its last revision. The versioned rows
(images, masks, lesions, annotations, reports) are read as of that revision, but the state of a scan
in the standardized subset lives on ``timepoint`` (current only: ``ingest standard``, ``exclude`` and
``include`` overwrite it) and the public label on ``public_id``. So ``release build`` now records, per
scan of the release, what it read there:

* ``release_scan.exclusion_reason``, ``release_scan.exclusion_note``: why the scan is not in the
  release's standardized subset (a code of ``atlas_registry.export.view.EXCLUSION_CODES``), as
  the release's README, release notes and tables say; NULL for scans in the subset;
* ``release_scan.public_label``: the subject's pseudonymous label in the release.

Upgrading fills ``public_label`` from ``public_id`` (labels are never changed or reused). The reasons
of releases built before this migration cannot be recovered from the current state: they stay NULL,
and a rebuild of such a release works them out from the registry's history as before.

Downgrading drops the three columns.

Revision ID: 0006_frozen_release_scan
Revises: 0005_withdrawal
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_frozen_release_scan"
down_revision = "0005_withdrawal"
branch_labels = None
depends_on = None

COLUMNS = ("exclusion_reason", "exclusion_note", "public_label")


def upgrade() -> None:
    op.add_column("release_scan", sa.Column("exclusion_reason", sa.String(32), nullable=True))
    op.add_column("release_scan", sa.Column("exclusion_note", sa.Text(), nullable=True))
    op.add_column("release_scan", sa.Column("public_label", sa.String(32), nullable=True))
    op.execute(
        "UPDATE release_scan SET public_label = (SELECT p.label FROM public_id p"
        " JOIN timepoint t ON t.subject_id = p.subject_id WHERE t.id = release_scan.timepoint_id)"
    )


def downgrade() -> None:
    bind = op.get_bind()
    for col in reversed(COLUMNS):
        if bind.dialect.name == "sqlite":  # natively (SQLite >= 3.35): no table rebuild under the views
            bind.exec_driver_sql(f"ALTER TABLE release_scan DROP COLUMN {col}")
        else:
            op.drop_column("release_scan", col)
