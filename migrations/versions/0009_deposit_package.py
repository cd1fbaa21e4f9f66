"""The deposit package recorded at publication, and the inputs of the latest build.

* ``release.package_path``, ``package_size``, ``package_sha256``: the deposit zip that
  ``release publish`` writes once (``packages/atlas-<name>-icpsr.zip`` of the build folder); a build
  writes the release tree without it. ``release verify`` and a rebuild of the published release check
  a zip against them.
* ``release.build_fingerprint``: SHA-256 of everything a build of the release reads (specification,
  software, the registry's state); a build whose inputs and folder are unchanged does nothing.

Downgrading drops them (the zip stays in the build folder, no longer recorded).

Revision ID: 0009_deposit_package
Revises: 0008_change_counter
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_deposit_package"
down_revision = "0008_change_counter"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("release", sa.Column("package_path", sa.String(255), nullable=True))
    op.add_column("release", sa.Column("package_size", sa.BigInteger(), nullable=True))
    op.add_column("release", sa.Column("package_sha256", sa.String(64), nullable=True))
    op.add_column("release", sa.Column("build_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    for col in ("build_fingerprint", "package_sha256", "package_size", "package_path"):
        if bind.dialect.name == "sqlite":  # natively (SQLite >= 3.35): a rebuilt release table breaks references
            bind.exec_driver_sql(f"ALTER TABLE release DROP COLUMN {col}")
        else:
            op.drop_column("release", col)
