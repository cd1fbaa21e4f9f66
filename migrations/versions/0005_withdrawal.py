"""Withdrawn scans, and release membership that names its scans.

* ``timepoint.withdrawn``: a scan withdrawn from every future release (``revise withdraw``: consent
  withdrawn, found ineligible, a duplicate) is left out of the current-state tables, so of the views
  ``scans`` and ``lesions`` and of every new build; the releases that published it keep it.
* ``release_scan.scan`` and ``release_scan.cohort``: the scan code and cohort as the release holds
  them, filled from the registry here; the view ``release_scans`` reads them there rather than from
  ``scan_current``, which no longer holds withdrawn scans; an index on (scan, release, subset)
  answers joins of ``release_scans`` with ``scans`` from the index alone.
* ``revision.kind`` admits ``withdraw_scan`` and ``reinstate_scan``.

Downgrading drops them again (refused once a withdrawal was recorded: the older schema cannot say so)
and restores the views of 0003.

Revision ID: 0005_withdrawal
Revises: 0004_covering_indexes
"""

import sqlalchemy as sa
from alembic import op

from atlas_registry import facts, views

revision = "0005_withdrawal"
down_revision = "0004_covering_indexes"
branch_labels = None
depends_on = None


# The kinds of revision before and after this migration (atlas_registry.models.REVISION_KINDS).
KINDS_0004 = (
    "ingest",
    "attach_standard",
    "replace_mask",
    "add_lesion",
    "remove_lesion",
    "correct_metadata",
    "exclude_scan",
    "include_scan",
)
KINDS = KINDS_0004 + ("withdraw_scan", "reinstate_scan")


def _revision_kinds(bind, kinds: tuple[str, ...]) -> None:
    """Replace the check constraint on ``revision.kind``. SQLite cannot alter a constraint: the
    table is rebuilt (its rows keep their ids, so every reference to them still holds: env.py checks)."""
    check = "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"
    if bind.dialect.name != "sqlite":
        op.drop_constraint("ck_revision_kind", "revision", type_="check")
        op.create_check_constraint("ck_revision_kind", "revision", check)
        return
    with op.batch_alter_table("revision", recreate="always") as batch:  # (migrations/env.py: references)
        batch.drop_constraint("ck_revision_kind", type_="check")
        batch.create_check_constraint("ck_revision_kind", check)


def _string(n: int):
    """Compared byte-wise on both backends (PostgreSQL: ``COLLATE "C"``), as in the models."""
    return sa.String(n).with_variant(sa.String(n, collation="C"), "postgresql")


def _drop_views(bind) -> None:
    """The views go first: SQLite checks them when the batch renames the rebuilt table into place."""
    for stmt in views.drop_statements(bind.dialect.name):
        bind.exec_driver_sql(stmt)


def upgrade() -> None:
    bind = op.get_bind()
    _drop_views(bind)
    _revision_kinds(bind, KINDS)
    op.add_column("timepoint", sa.Column("withdrawn", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("release_scan", sa.Column("scan", _string(13), nullable=True))
    op.add_column("release_scan", sa.Column("cohort", _string(5), nullable=True))
    op.execute(
        "UPDATE release_scan SET"
        " scan = (SELECT t.code FROM timepoint t WHERE t.id = release_scan.timepoint_id),"
        " cohort = (SELECT c.code FROM timepoint t JOIN subject s ON s.id = t.subject_id"
        " JOIN cohort c ON c.id = s.cohort_id WHERE t.id = release_scan.timepoint_id)"
    )
    with op.batch_alter_table("release_scan") as batch:  # SQLite: the (leaf) table is rebuilt
        batch.alter_column("scan", existing_type=_string(13), nullable=False)
        batch.alter_column("cohort", existing_type=_string(5), nullable=False)
    op.create_index("ix_release_scan_scan", "release_scan", ["scan", "release_id", "in_standard"])
    views.install(bind, views.CURRENT)
    bind.exec_driver_sql("ANALYZE release_scan")


def downgrade() -> None:
    bind = op.get_bind()
    withdrawn = bind.exec_driver_sql("SELECT code FROM timepoint WHERE withdrawn ORDER BY code").scalars().all()
    kinds = bind.exec_driver_sql(
        "SELECT COUNT(*) FROM revision WHERE kind IN ('withdraw_scan', 'reinstate_scan')"
    ).scalar()
    if withdrawn or kinds:
        raise RuntimeError(
            f"{kinds} withdrawal revision(s), {len(withdrawn)} scan(s) withdrawn: schema 0004 cannot "
            "record them; downgrade a copy of the registry made before any withdrawal"
        )
    _drop_views(bind)
    _revision_kinds(bind, KINDS_0004)
    op.drop_index("ix_release_scan_scan", table_name="release_scan")
    with op.batch_alter_table("release_scan") as batch:
        batch.drop_column("cohort")
        batch.drop_column("scan")
    if bind.dialect.name == "sqlite":  # natively (SQLite >= 3.35): a rebuilt timepoint would break its references
        bind.exec_driver_sql("ALTER TABLE timepoint DROP COLUMN withdrawn")
    else:
        op.drop_column("timepoint", "withdrawn")
    facts.refresh(bind, withdrawal=False)
    views.install(bind, views.CURRENT, withdrawal=False)
