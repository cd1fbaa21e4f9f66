"""Initial registry schema: cohorts, scanners, subjects, timepoints, images, lesions and their
masks, annotations and reports, public IDs, issues, revisions, releases and the ingest audit log.

Generated from atlas_registry/models.py with autogenerate, then reviewed by hand (constraint names,
creation order so that every foreign key points at an existing table, drop order the reverse).

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "cohort",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("site", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.CheckConstraint("code LIKE 'c____'", name="ck_cohort_code"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cohort", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cohort_code"), ["code"], unique=True)

    op.create_table(
        "ingest_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("operator", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("n_files", sa.Integer(), nullable=False),
        sa.Column("n_scans", sa.Integer(), nullable=False),
        sa.Column("n_errors", sa.Integer(), nullable=False),
        sa.Column("n_warnings", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('running', 'committed', 'refused', 'noop')", name="ck_ingest_status"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "stored_object",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("size_bytes >= 0", name="ck_object_size"),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ingest_run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('store', 'scrub', 'skip', 'refuse', 'info')", name="ck_audit_kind"),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"],
            ["ingest_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_ingest_run_id"), ["ingest_run_id"], unique=False)

    op.create_table(
        "scanner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("manufacturer", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("field_strength_t", sa.Float(), nullable=False),
        sa.Column("voxel_x_mm", sa.Float(), nullable=False),
        sa.Column("voxel_y_mm", sa.Float(), nullable=False),
        sa.Column("voxel_z_mm", sa.Float(), nullable=False),
        sa.CheckConstraint("field_strength_t > 0 AND field_strength_t <= 11.7", name="ck_scanner_field"),
        sa.CheckConstraint("voxel_x_mm > 0 AND voxel_y_mm > 0 AND voxel_z_mm > 0", name="ck_scanner_voxel"),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohort.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cohort_id", "manufacturer", "model", "field_strength_t", name="uq_scanner_natural"),
    )
    with op.batch_alter_table("scanner", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scanner_cohort_id"), ["cohort_id"], unique=False)

    op.create_table(
        "subject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.CheckConstraint("number >= 0", name="ck_subject_number"),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohort.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subject", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_subject_cohort_id"), ["cohort_id"], unique=False)

    op.create_table(
        "public_id",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject_id"),
    )
    with op.batch_alter_table("public_id", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_public_id_label"), ["label"], unique=True)

    op.create_table(
        "timepoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("scanner_id", sa.Integer(), nullable=True),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=13), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("standard_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("exclusion_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("exclusion_note", sa.Text(), nullable=True),
        sa.Column("primary_chosen_by_neuroradiologist", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "(standard_status = 'excluded') = (exclusion_reason IS NOT NULL)", name="ck_timepoint_excluded_has_reason"
        ),
        sa.CheckConstraint(
            "exclusion_reason IS NULL OR exclusion_reason IN ('low_resolution', 'registration_failed', 'revision')",
            name="ck_timepoint_reason",
        ),
        sa.CheckConstraint("standard_status IN ('pending', 'included', 'excluded')", name="ck_timepoint_status"),
        sa.CheckConstraint("number >= 1", name="ck_timepoint_number"),
        sa.ForeignKeyConstraint(
            ["scanner_id"],
            ["scanner.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject_id", "number", name="uq_timepoint_subject_number"),
    )
    with op.batch_alter_table("timepoint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timepoint_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_timepoint_scanner_id"), ["scanner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_timepoint_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "issue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("file_kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("opened_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="ck_issue_closed_at"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_issue_status"),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_timepoint_id"), ["timepoint_id"], unique=False)

    op.create_table(
        "revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("timepoint_id", sa.Integer(), nullable=True),
        sa.Column("ingest_run_id", sa.Integer(), nullable=True),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('ingest', 'attach_standard', 'replace_mask', 'add_lesion', 'remove_lesion', "
            "'correct_metadata', 'exclude_scan', 'include_scan')",
            name="ck_revision_kind",
        ),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"],
            ["ingest_run.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issue.id"],
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("revision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revision_ingest_run_id"), ["ingest_run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_revision_issue_id"), ["issue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_revision_timepoint_id"), ["timepoint_id"], unique=False)

    op.create_table(
        "image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("space", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("modality", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("source_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("shape_x", sa.Integer(), nullable=False),
        sa.Column("shape_y", sa.Integer(), nullable=False),
        sa.Column("shape_z", sa.Integer(), nullable=False),
        sa.Column("voxel_x_mm", sa.Float(), nullable=False),
        sa.Column("voxel_y_mm", sa.Float(), nullable=False),
        sa.Column("voxel_z_mm", sa.Float(), nullable=False),
        sa.Column("dtype", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("affine", sa.Text(), nullable=False),
        sa.Column("defaced", sa.Boolean(), nullable=False),
        sa.Column("created_rev_id", sa.Integer(), nullable=False),
        sa.Column("retired_rev_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("space IN ('native', 'MNI152NLin2009aSym')", name="ck_image_space"),
        sa.CheckConstraint("shape_x > 0 AND shape_y > 0 AND shape_z > 0", name="ck_image_shape"),
        sa.CheckConstraint("voxel_x_mm > 0 AND voxel_y_mm > 0 AND voxel_z_mm > 0", name="ck_image_voxel"),
        sa.ForeignKeyConstraint(
            ["created_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["retired_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["stored_object.sha256"],
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_created_rev_id"), ["created_rev_id"], unique=False)
        batch_op.create_index("ix_image_current", ["timepoint_id", "space", "retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_retired_rev_id"), ["retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_timepoint_id"), ["timepoint_id"], unique=False)

    op.create_table(
        "lesion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_rev_id", sa.Integer(), nullable=False),
        sa.Column("retired_rev_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("number >= 0", name="ck_lesion_number"),
        sa.ForeignKeyConstraint(
            ["created_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["retired_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lesion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lesion_created_rev_id"), ["created_rev_id"], unique=False)
        batch_op.create_index("ix_lesion_current", ["timepoint_id", "number", "retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_retired_rev_id"), ["retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_timepoint_id"), ["timepoint_id"], unique=False)

    op.create_table(
        "release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("previous_release_id", sa.Integer(), nullable=True),
        sa.Column("last_revision_id", sa.Integer(), nullable=True),
        sa.Column("manifest_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("built_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('draft', 'built', 'published')", name="ck_release_status"),
        sa.ForeignKeyConstraint(
            ["last_revision_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["previous_release_id"],
            ["release.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_last_revision_id"), ["last_revision_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_name"), ["name"], unique=True)
        batch_op.create_index(batch_op.f("ix_release_previous_release_id"), ["previous_release_id"], unique=False)

    op.create_table(
        "scan_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("stroke_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("primary_location", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("primary_hemisphere", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("vascular_territory", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("pvh", sa.Integer(), nullable=True),
        sa.Column("dwmh", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_rev_id", sa.Integer(), nullable=False),
        sa.Column("retired_rev_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "primary_hemisphere IS NULL OR primary_hemisphere IN ('left', 'right', 'brainstem', 'bilateral')",
            name="ck_report_primary_hemisphere",
        ),
        sa.CheckConstraint("dwmh IS NULL OR (dwmh >= 0 AND dwmh <= 3)", name="ck_report_dwmh"),
        sa.CheckConstraint("pvh IS NULL OR (pvh >= 0 AND pvh <= 3)", name="ck_report_pvh"),
        sa.ForeignKeyConstraint(
            ["created_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["retired_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scan_report", schema=None) as batch_op:
        batch_op.create_index("ix_report_current", ["timepoint_id", "retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_report_created_rev_id"), ["created_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_report_retired_rev_id"), ["retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_report_timepoint_id"), ["timepoint_id"], unique=False)

    op.create_table(
        "lesion_annotation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_id", sa.Integer(), nullable=False),
        sa.Column("hemisphere", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("location", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tracer", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reviewer", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_rev_id", sa.Integer(), nullable=False),
        sa.Column("retired_rev_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("hemisphere IN ('left', 'right', 'other')", name="ck_annotation_hemisphere"),
        sa.CheckConstraint("location IN ('cortical', 'subcortical', 'other')", name="ck_annotation_location"),
        sa.ForeignKeyConstraint(
            ["created_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lesion_id"],
            ["lesion.id"],
        ),
        sa.ForeignKeyConstraint(
            ["retired_rev_id"],
            ["revision.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lesion_annotation", schema=None) as batch_op:
        batch_op.create_index("ix_annotation_current", ["lesion_id", "retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_annotation_created_rev_id"), ["created_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_annotation_lesion_id"), ["lesion_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_annotation_retired_rev_id"), ["retired_rev_id"], unique=False)

    op.create_table(
        "lesion_mask",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_id", sa.Integer(), nullable=False),
        sa.Column("variant", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("space", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("source_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("voxel_count", sa.Integer(), nullable=False),
        sa.Column("volume_mm3", sa.Float(), nullable=False),
        sa.Column("centroid_x_mm", sa.Float(), nullable=False),
        sa.Column("centroid_y_mm", sa.Float(), nullable=False),
        sa.Column("centroid_z_mm", sa.Float(), nullable=False),
        sa.Column("n_components", sa.Integer(), nullable=False),
        sa.Column("hemisphere", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("location", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_rev_id", sa.Integer(), nullable=False),
        sa.Column("retired_rev_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("hemisphere IN ('left', 'right', 'other')", name="ck_mask_hemisphere"),
        sa.CheckConstraint("location IN ('cortical', 'subcortical', 'other')", name="ck_mask_location"),
        sa.CheckConstraint("space IN ('native', 'MNI152NLin2009aSym')", name="ck_mask_space"),
        sa.CheckConstraint("variant IN ('raw_voi', 'smooth_voi', 'smooth_nii')", name="ck_mask_variant"),
        sa.CheckConstraint("n_components >= 1", name="ck_mask_components"),
        sa.CheckConstraint("voxel_count > 0 AND volume_mm3 > 0", name="ck_mask_nonempty"),
        sa.ForeignKeyConstraint(
            ["created_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lesion_id"],
            ["lesion.id"],
        ),
        sa.ForeignKeyConstraint(
            ["retired_rev_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["stored_object.sha256"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lesion_mask", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lesion_mask_created_rev_id"), ["created_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_mask_lesion_id"), ["lesion_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_mask_retired_rev_id"), ["retired_rev_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesion_mask_sha256"), ["sha256"], unique=False)
        batch_op.create_index("ix_mask_current", ["lesion_id", "variant", "space", "retired_rev_id"], unique=False)

    op.create_table(
        "release_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("archive", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=True),
        sa.Column("source_revision_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "archive IN ('icpsr', 'bids', 'parquet', 'packages', 'meta')", name="ck_release_item_archive"
        ),
        sa.CheckConstraint("size_bytes >= 0", name="ck_release_item_size"),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["release.id"],
        ),
        sa.ForeignKeyConstraint(
            ["source_revision_id"],
            ["revision.id"],
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("release_id", "path", name="uq_release_item_path"),
    )
    with op.batch_alter_table("release_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_item_release_id"), ["release_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_item_source_revision_id"), ["source_revision_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_item_timepoint_id"), ["timepoint_id"], unique=False)

    op.create_table(
        "release_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("in_standard", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["release.id"],
        ),
        sa.ForeignKeyConstraint(
            ["timepoint_id"],
            ["timepoint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("release_id", "timepoint_id", name="uq_release_scan"),
    )
    with op.batch_alter_table("release_scan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_scan_release_id"), ["release_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_scan_timepoint_id"), ["timepoint_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("release_scan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_scan_timepoint_id"))
        batch_op.drop_index(batch_op.f("ix_release_scan_release_id"))

    op.drop_table("release_scan")
    with op.batch_alter_table("release_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_item_timepoint_id"))
        batch_op.drop_index(batch_op.f("ix_release_item_source_revision_id"))
        batch_op.drop_index(batch_op.f("ix_release_item_release_id"))

    op.drop_table("release_item")
    with op.batch_alter_table("lesion_mask", schema=None) as batch_op:
        batch_op.drop_index("ix_mask_current")
        batch_op.drop_index(batch_op.f("ix_lesion_mask_sha256"))
        batch_op.drop_index(batch_op.f("ix_lesion_mask_retired_rev_id"))
        batch_op.drop_index(batch_op.f("ix_lesion_mask_lesion_id"))
        batch_op.drop_index(batch_op.f("ix_lesion_mask_created_rev_id"))

    op.drop_table("lesion_mask")
    with op.batch_alter_table("lesion_annotation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesion_annotation_retired_rev_id"))
        batch_op.drop_index(batch_op.f("ix_lesion_annotation_lesion_id"))
        batch_op.drop_index(batch_op.f("ix_lesion_annotation_created_rev_id"))
        batch_op.drop_index("ix_annotation_current")

    op.drop_table("lesion_annotation")
    with op.batch_alter_table("scan_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_report_timepoint_id"))
        batch_op.drop_index(batch_op.f("ix_scan_report_retired_rev_id"))
        batch_op.drop_index(batch_op.f("ix_scan_report_created_rev_id"))
        batch_op.drop_index("ix_report_current")

    op.drop_table("scan_report")
    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_previous_release_id"))
        batch_op.drop_index(batch_op.f("ix_release_name"))
        batch_op.drop_index(batch_op.f("ix_release_last_revision_id"))

    op.drop_table("release")
    with op.batch_alter_table("lesion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesion_timepoint_id"))
        batch_op.drop_index(batch_op.f("ix_lesion_retired_rev_id"))
        batch_op.drop_index("ix_lesion_current")
        batch_op.drop_index(batch_op.f("ix_lesion_created_rev_id"))

    op.drop_table("lesion")
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_timepoint_id"))
        batch_op.drop_index(batch_op.f("ix_image_sha256"))
        batch_op.drop_index(batch_op.f("ix_image_retired_rev_id"))
        batch_op.drop_index("ix_image_current")
        batch_op.drop_index(batch_op.f("ix_image_created_rev_id"))

    op.drop_table("image")
    with op.batch_alter_table("revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revision_timepoint_id"))
        batch_op.drop_index(batch_op.f("ix_revision_issue_id"))
        batch_op.drop_index(batch_op.f("ix_revision_ingest_run_id"))

    op.drop_table("revision")
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_timepoint_id"))

    op.drop_table("issue")
    with op.batch_alter_table("timepoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timepoint_subject_id"))
        batch_op.drop_index(batch_op.f("ix_timepoint_scanner_id"))
        batch_op.drop_index(batch_op.f("ix_timepoint_code"))

    op.drop_table("timepoint")
    with op.batch_alter_table("public_id", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_public_id_label"))

    op.drop_table("public_id")
    with op.batch_alter_table("subject", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_cohort_id"))
        batch_op.drop_index(batch_op.f("ix_subject_code"))

    op.drop_table("subject")
    with op.batch_alter_table("scanner", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scanner_cohort_id"))

    op.drop_table("scanner")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_ingest_run_id"))

    op.drop_table("audit_event")
    op.drop_table("stored_object")
    op.drop_table("ingest_run")
    with op.batch_alter_table("cohort", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_code"))

    op.drop_table("cohort")
