"""The registry schema: every table of atlas-registry, in one module.

Vocabulary (checked by constraints):

* hemisphere: ``left`` | ``right`` | ``other`` (brainstem/cerebellum)
* location: ``cortical`` | ``subcortical`` | ``other``
* lesion number: 0 = primary, 1..n = secondary (largest first)
* mask variant: ``raw_voi`` | ``smooth_voi`` | ``smooth_nii``; space: ``native`` | ``MNI152NLin2009aSym``

History is never overwritten. Rows that a revision can change (images, lesions, lesion masks,
annotations, scan reports) carry ``created_rev_id`` (the revision that made them) and
``retired_rev_id`` (the revision that replaced or removed them; NULL while current). A published
release is frozen as its ``release_item`` rows (path, size, SHA-256, source revision) and its
``release_scan`` rows (membership, standardized subset and exclusion reasons, public labels, as built).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

HEMISPHERES = ("left", "right", "other")
LOCATIONS = ("cortical", "subcortical", "other")
VARIANTS = ("raw_voi", "smooth_voi", "smooth_nii")
SPACES = ("native", "MNI152NLin2009aSym")
PRIMARY_HEMISPHERES = ("left", "right", "brainstem", "bilateral")
STANDARD_STATUS = ("pending", "included", "excluded")
EXCLUSION_REASONS = ("low_resolution", "registration_failed", "revision")
REVISION_KINDS = (
    "ingest",
    "attach_standard",
    "replace_mask",
    "add_lesion",
    "remove_lesion",
    "correct_metadata",
    "exclude_scan",
    "include_scan",
    "withdraw_scan",  # 0005
    "reinstate_scan",  # 0005
)
ISSUE_STATUS = ("open", "closed")
RELEASE_STATUS = ("draft", "built", "published")
ARCHIVES = ("icpsr", "bids", "parquet", "packages", "meta")
AUDIT_KINDS = ("store", "scrub", "skip", "refuse", "info")


def _in(col: str, values: tuple[str, ...], nullable: bool = False) -> str:
    body = f"{col} IN ({', '.join(repr(v) for v in values)})"
    return f"{col} IS NULL OR {body}" if nullable else body


def _bytewise(length: int | None = None):
    """A string type that compares byte-wise on every backend, as SQLite's default (``BINARY``) and
    DuckDB do: ``COLLATE "C"`` on PostgreSQL, whatever the database's collation (also the fast
    path of its sorts and comparisons)."""
    kind = String if length else Text
    return kind(length).with_variant(kind(length, collation="C"), "postgresql")


def _fk(target: str, *, nullable: bool = False, index: bool = True, ondelete: str | None = None):
    """A foreign-key column (explicit so that the constraint names are stable in migrations)."""
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index),
    )


def _one_current(name: str, *cols: str) -> Index:
    """At most one current row (``retired_rev_id IS NULL``) per ``cols``: a partial unique index."""
    where = text("retired_rev_id IS NULL")
    return Index(name, *cols, unique=True, sqlite_where=where, postgresql_where=where)


class Cohort(SQLModel, table=True):
    __tablename__ = "cohort"
    __table_args__ = (CheckConstraint("code LIKE 'c____'", name="ck_cohort_code"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=5, unique=True, index=True, description="cXXXX")
    site: str | None = Field(default=None, max_length=200, description="site or study name")
    description: str | None = Field(default=None, sa_type=Text)


class Scanner(SQLModel, table=True):
    __tablename__ = "scanner"
    __table_args__ = (
        UniqueConstraint("cohort_id", "manufacturer", "model", "field_strength_t", name="uq_scanner_natural"),
        CheckConstraint("field_strength_t > 0 AND field_strength_t <= 11.7", name="ck_scanner_field"),
        CheckConstraint("voxel_x_mm > 0 AND voxel_y_mm > 0 AND voxel_z_mm > 0", name="ck_scanner_voxel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = _fk("cohort.id")
    manufacturer: str = Field(max_length=100)
    model: str = Field(max_length=100)
    field_strength_t: float
    voxel_x_mm: float
    voxel_y_mm: float
    voxel_z_mm: float


class Subject(SQLModel, table=True):
    __tablename__ = "subject"
    __table_args__ = (CheckConstraint("number >= 0", name="ck_subject_number"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = _fk("cohort.id")
    code: str = Field(max_length=10, unique=True, index=True, description="cXXXXsXXXX")
    number: int


class Revision(SQLModel, table=True):
    """One change to the registry: an ingest, or a correction that cites an issue."""

    __tablename__ = "revision"
    __table_args__ = (CheckConstraint(_in("kind", REVISION_KINDS), name="ck_revision_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    issue_id: int | None = _fk("issue.id", nullable=True)
    timepoint_id: int | None = _fk("timepoint.id", nullable=True)
    ingest_run_id: int | None = _fk("ingest_run.id", nullable=True)
    author: str = Field(max_length=200)
    reason: str = Field(sa_type=Text)
    created_at: datetime
    details: str | None = Field(default=None, sa_type=Text, description="JSON: what changed")


class Timepoint(SQLModel, table=True):
    """A scan session ``cXXXXsXXXXtXX``: one T1 and its lesion masks."""

    __tablename__ = "timepoint"
    __table_args__ = (
        CheckConstraint("number >= 1", name="ck_timepoint_number"),
        CheckConstraint(_in("standard_status", STANDARD_STATUS), name="ck_timepoint_status"),
        CheckConstraint(_in("exclusion_reason", EXCLUSION_REASONS, nullable=True), name="ck_timepoint_reason"),
        CheckConstraint(
            "(standard_status = 'excluded') = (exclusion_reason IS NOT NULL)", name="ck_timepoint_excluded_has_reason"
        ),
        UniqueConstraint("subject_id", "number", name="uq_timepoint_subject_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject_id: int = _fk("subject.id")
    scanner_id: int | None = _fk("scanner.id", nullable=True)
    code: str = Field(max_length=13, unique=True, index=True, description="cXXXXsXXXXtXX")
    number: int
    standard_status: str = Field(default="pending", max_length=16)
    exclusion_reason: str | None = Field(default=None, max_length=32)
    exclusion_note: str | None = Field(default=None, sa_type=Text)
    primary_chosen_by_neuroradiologist: bool = Field(default=False)
    # withdrawn from every future release (consent withdrawn, found ineligible, a duplicate): out of
    # the current-state tables and of new builds, still in the releases that published it (0005)
    withdrawn: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class StoredObject(SQLModel, table=True):
    """A file in the content-addressed object store (stored once by SHA-256)."""

    __tablename__ = "stored_object"
    __table_args__ = (CheckConstraint("size_bytes >= 0", name="ck_object_size"),)

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int
    media_type: str = Field(max_length=64)
    created_at: datetime


class Image(SQLModel, table=True):
    __tablename__ = "image"
    __table_args__ = (
        CheckConstraint(_in("space", SPACES), name="ck_image_space"),
        CheckConstraint("shape_x > 0 AND shape_y > 0 AND shape_z > 0", name="ck_image_shape"),
        CheckConstraint("voxel_x_mm > 0 AND voxel_y_mm > 0 AND voxel_z_mm > 0", name="ck_image_voxel"),
        Index("ix_image_current", "timepoint_id", "space", "retired_rev_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    timepoint_id: int = _fk("timepoint.id")
    space: str = Field(max_length=32)
    modality: str = Field(default="T1w", max_length=16)
    sha256: str = Field(sa_column=Column(Text, ForeignKey("stored_object.sha256"), nullable=False, index=True))
    source_name: str = Field(max_length=255, description="file name as ingested")
    shape_x: int
    shape_y: int
    shape_z: int
    voxel_x_mm: float
    voxel_y_mm: float
    voxel_z_mm: float
    dtype: str = Field(max_length=16)
    affine: str = Field(sa_type=Text, description="JSON 4x4 voxel-to-world matrix")
    defaced: bool = Field(default=False)
    created_rev_id: int = _fk("revision.id")
    retired_rev_id: int | None = _fk("revision.id", nullable=True)


class Lesion(SQLModel, table=True):
    """A lesion of a scan; number 0 is the primary lesion."""

    __tablename__ = "lesion"
    __table_args__ = (
        CheckConstraint("number >= 0", name="ck_lesion_number"),
        Index("ix_lesion_current", "timepoint_id", "number", "retired_rev_id"),
        _one_current("uq_lesion_one_current", "timepoint_id", "number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    timepoint_id: int = _fk("timepoint.id")
    number: int
    created_rev_id: int = _fk("revision.id")
    retired_rev_id: int | None = _fk("revision.id", nullable=True)


class LesionMask(SQLModel, table=True):
    """One file of a lesion (raw VOI, smoothed VOI, smoothed NIfTI; native or standard space)
    with the metrics computed from it."""

    __tablename__ = "lesion_mask"
    __table_args__ = (
        CheckConstraint(_in("variant", VARIANTS), name="ck_mask_variant"),
        CheckConstraint(_in("space", SPACES), name="ck_mask_space"),
        CheckConstraint(_in("hemisphere", HEMISPHERES), name="ck_mask_hemisphere"),
        CheckConstraint(_in("location", LOCATIONS), name="ck_mask_location"),
        CheckConstraint("voxel_count > 0 AND volume_mm3 > 0", name="ck_mask_nonempty"),
        CheckConstraint("n_components >= 1", name="ck_mask_components"),
        Index("ix_mask_current", "lesion_id", "variant", "space", "retired_rev_id"),
        _one_current("uq_mask_one_current", "lesion_id", "variant", "space"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lesion_id: int = _fk("lesion.id")
    variant: str = Field(max_length=16)
    space: str = Field(max_length=32)
    sha256: str = Field(sa_column=Column(Text, ForeignKey("stored_object.sha256"), nullable=False, index=True))
    source_name: str = Field(max_length=255)
    voxel_count: int
    volume_mm3: float
    centroid_x_mm: float
    centroid_y_mm: float
    centroid_z_mm: float
    n_components: int
    hemisphere: str = Field(max_length=8, description="computed from the mask")
    location: str = Field(max_length=16, description="computed from the mask")
    created_rev_id: int = _fk("revision.id")
    retired_rev_id: int | None = _fk("revision.id", nullable=True)


class LesionAnnotation(SQLModel, table=True):
    """The lesion as traced and described: hemisphere, location, tracer, reviewer."""

    __tablename__ = "lesion_annotation"
    __table_args__ = (
        CheckConstraint(_in("hemisphere", HEMISPHERES), name="ck_annotation_hemisphere"),
        CheckConstraint(_in("location", LOCATIONS), name="ck_annotation_location"),
        Index("ix_annotation_current", "lesion_id", "retired_rev_id"),
        _one_current("uq_annotation_one_current", "lesion_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lesion_id: int = _fk("lesion.id")
    hemisphere: str = Field(max_length=8)
    location: str = Field(max_length=16)
    tracer: str | None = Field(default=None, max_length=64)
    reviewer: str | None = Field(default=None, max_length=64)
    created_rev_id: int = _fk("revision.id")
    retired_rev_id: int | None = _fk("revision.id", nullable=True)


class ScanReport(SQLModel, table=True):
    """The neuroradiologist's report on one scan."""

    __tablename__ = "scan_report"
    __table_args__ = (
        CheckConstraint("pvh IS NULL OR (pvh >= 0 AND pvh <= 3)", name="ck_report_pvh"),
        CheckConstraint("dwmh IS NULL OR (dwmh >= 0 AND dwmh <= 3)", name="ck_report_dwmh"),
        CheckConstraint(
            _in("primary_hemisphere", PRIMARY_HEMISPHERES, nullable=True), name="ck_report_primary_hemisphere"
        ),
        Index("ix_report_current", "timepoint_id", "retired_rev_id"),
        _one_current("uq_report_one_current", "timepoint_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    timepoint_id: int = _fk("timepoint.id")
    stroke_type: str | None = Field(default=None, max_length=100)
    primary_location: str | None = Field(default=None, max_length=200)
    primary_hemisphere: str | None = Field(default=None, max_length=16)
    vascular_territory: str | None = Field(default=None, max_length=100)
    pvh: int | None = None
    dwmh: int | None = None
    notes: str | None = Field(default=None, sa_type=Text)
    created_rev_id: int = _fk("revision.id")
    retired_rev_id: int | None = _fk("revision.id", nullable=True)


class PublicId(SQLModel, table=True):
    """Pseudonymous public label of a subject in published archives: stable, never reused,
    not derivable from native identifiers. The crosswalk never leaves the registry."""

    __tablename__ = "public_id"

    id: int | None = Field(default=None, primary_key=True)
    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), nullable=False, unique=True))
    label: str = Field(max_length=32, unique=True, index=True)
    created_at: datetime


class Issue(SQLModel, table=True):
    """A reported problem with a scan or one of its files."""

    __tablename__ = "issue"
    __table_args__ = (
        CheckConstraint(_in("status", ISSUE_STATUS), name="ck_issue_status"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="ck_issue_closed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    timepoint_id: int = _fk("timepoint.id")
    file_kind: str | None = Field(default=None, max_length=64)
    title: str = Field(max_length=300)
    body: str | None = Field(default=None, sa_type=Text)
    url: str | None = Field(default=None, max_length=500)
    status: str = Field(default="open", max_length=8)
    opened_by: str = Field(max_length=200)
    opened_at: datetime
    closed_at: datetime | None = None
    close_reason: str | None = Field(default=None, sa_type=Text)


class Release(SQLModel, table=True):
    __tablename__ = "release"
    __table_args__ = (CheckConstraint(_in("status", RELEASE_STATUS), name="ck_release_status"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    version: str = Field(max_length=32)
    status: str = Field(default="draft", max_length=16)
    spec: str = Field(sa_type=Text, description="the release specification (TOML text)")
    previous_release_id: int | None = _fk("release.id", nullable=True)
    last_revision_id: int | None = _fk("revision.id", nullable=True)
    manifest_sha256: str | None = Field(default=None, max_length=64)
    built_at: datetime | None = None
    published_at: datetime | None = None
    # the deposit zip written at publication (0008): path in the release folder, size, SHA-256
    package_path: str | None = Field(default=None, max_length=255)
    package_size: int | None = Field(default=None, sa_type=BigInteger)
    package_sha256: str | None = Field(default=None, max_length=64)
    # SHA-256 of everything the latest build read (0008): an unchanged build does nothing
    build_fingerprint: str | None = Field(default=None, max_length=64)


class ReleaseScan(SQLModel, table=True):
    """Which scans a release contains and whether each is in the standardized subset."""

    __tablename__ = "release_scan"
    __table_args__ = (
        UniqueConstraint("release_id", "timepoint_id", name="uq_release_scan"),
        # a release's membership and standardized subset from the index alone (0004)
        Index("ix_release_scan_membership", "release_id", "timepoint_id", "in_standard"),
        # joins of release_scans with scans on the scan code, from the index alone (0005)
        Index("ix_release_scan_scan", "scan", "release_id", "in_standard"),
    )

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = _fk("release.id")
    timepoint_id: int = _fk("timepoint.id")
    in_standard: bool = Field(default=False)
    # the scan as the release holds it, so that ``release_scans`` lists a scan withdrawn since (0005)
    scan: str = Field(sa_type=_bytewise(13))
    cohort: str = Field(sa_type=_bytewise(5))
    # the scan as the build saw it, so that a rebuild reads it as published whatever the registry's
    # current state says (0006): why it is not in the standardized subset (a code of
    # ``export.view.EXCLUSION_CODES``, NULL when it is, or for releases built before 0006) and the
    # subject's public label
    exclusion_reason: str | None = Field(default=None, max_length=32)
    exclusion_note: str | None = Field(default=None, sa_type=Text)
    public_label: str | None = Field(default=None, max_length=32)
    # the benchmark split of the scan (0010): training | test | hidden; NULL when the release has no splits
    split: str | None = Field(default=None, max_length=16)


class ReleaseItem(SQLModel, table=True):
    """One file of a built release: the manifest, row by row."""

    __tablename__ = "release_item"
    __table_args__ = (
        UniqueConstraint("release_id", "path", name="uq_release_item_path"),
        CheckConstraint(_in("archive", ARCHIVES), name="ck_release_item_archive"),
        CheckConstraint("size_bytes >= 0", name="ck_release_item_size"),
    )

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = _fk("release.id")
    archive: str = Field(max_length=16)
    path: str = Field(max_length=500)
    size_bytes: int
    sha256: str = Field(max_length=64)
    timepoint_id: int | None = _fk("timepoint.id", nullable=True)
    source_revision_id: int | None = _fk("revision.id", nullable=True)


class IngestRun(SQLModel, table=True):
    """The ingest audit log: one row per ingest attempt."""

    __tablename__ = "ingest_run"
    __table_args__ = (
        CheckConstraint(_in("status", ("running", "committed", "refused", "noop")), name="ck_ingest_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=1000)
    started_at: datetime
    finished_at: datetime | None = None
    status: str = Field(default="running", max_length=16)
    operator: str = Field(max_length=200)
    n_files: int = 0
    n_scans: int = 0
    n_errors: int = 0
    n_warnings: int = 0


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (CheckConstraint(_in("kind", AUDIT_KINDS), name="ck_audit_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    ingest_run_id: int = _fk("ingest_run.id")
    kind: str = Field(max_length=16)
    path: str | None = Field(default=None, max_length=1000)
    detail: str = Field(sa_type=Text)


# ---------------------------------------------------------------------------------------------
# The current-state layer: the rows of the views ``scans`` and ``lesions``, stored. Derived data
# only: :func:`atlas_registry.facts.refresh` recomputes a scan's rows from the versioned tables
# above whenever a change to the registry touches it. The columns are those of the views
# (:data:`atlas_registry.views.STORED`) plus the keys; the indexes serve the typical queries
# (counts by cohort x hemisphere x location, volumes by territory, PVH x location, joins on scan).


class _ScanKey(SQLModel):
    scan: str = Field(sa_type=_bytewise(13))
    cohort: str = Field(sa_type=_bytewise(5))
    subject: str = Field(sa_type=_bytewise(10))
    timepoint: int


class _ScanFacts(SQLModel):
    stroke_type: str | None = Field(default=None, sa_type=_bytewise(100))
    primary_location: str | None = Field(default=None, sa_type=_bytewise(200))
    primary_hemisphere: str | None = Field(default=None, sa_type=_bytewise(16))
    vascular_territory: str | None = Field(default=None, sa_type=_bytewise(100))
    pvh: int | None = None
    dwmh: int | None = None
    field_strength_t: float | None = None
    scanner_manufacturer: str | None = Field(default=None, sa_type=_bytewise(100))
    scanner_model: str | None = Field(default=None, sa_type=_bytewise(100))
    voxel_x_mm: float | None = None
    voxel_y_mm: float | None = None
    voxel_z_mm: float | None = None
    standard_status: str = Field(sa_type=_bytewise(16))
    exclusion_reason: str | None = Field(default=None, sa_type=_bytewise(32))


def _key_fk(target: str):
    """A primary key that is also a foreign key (never generated: it is the source row's id)."""
    return Field(sa_column=Column(Integer, ForeignKey(target), primary_key=True, autoincrement=False))


class ScanCurrent(_ScanFacts, _ScanKey, table=True):
    """One row per scan (timepoint): the view ``scans``."""

    __tablename__ = "scan_current"
    __table_args__ = (
        Index("ix_scan_current_scan", "scan", unique=True),
        Index("ix_scan_current_cohort", "cohort", "n_lesions", "scan"),  # 0004
    )

    timepoint_id: int = _key_fk("timepoint.id")
    n_lesions: int
    primary_volume_mm3: float | None = None
    total_volume_mm3: float | None = None
    releases: str | None = Field(default=None, sa_type=_bytewise())


class LesionCurrent(_ScanFacts, _ScanKey, table=True):
    """One row per current lesion: the view ``lesions``, but for ``releases``, which the view reads
    from the scan's row (publishing a release rewrites one row per scan, not one per lesion)."""

    __tablename__ = "lesion_current"
    __table_args__ = (
        Index("ix_lesion_current_scan", "scan", "volume_mm3"),
        Index("ix_lesion_current_place", "cohort", "hemisphere", "location"),
        Index("ix_lesion_current_territory", "vascular_territory", "volume_mm3"),
        Index("ix_lesion_current_location_pvh", "location", "pvh", "scan"),
    )

    lesion_id: int = _key_fk("lesion.id")
    timepoint_id: int = _fk("timepoint.id")
    lesion: int
    is_primary: bool
    hemisphere: str | None = Field(default=None, sa_type=_bytewise(8))
    location: str | None = Field(default=None, sa_type=_bytewise(16))
    mask_hemisphere: str | None = Field(default=None, sa_type=_bytewise(8))
    mask_location: str | None = Field(default=None, sa_type=_bytewise(16))
    volume_mm3: float | None = None
    voxel_count: int | None = None


# ---------------------------------------------------------------------------------------------
# The intake crosswalk (restricted: in no view, no export). A site's subject identifier and session
# label are kept only as keyed digests (HMAC-SHA-256 with the workspace's intake key), so the
# registry holds no hospital number, yet the same site subject gets the same number in every later
# delivery and a session seen before keeps its timepoint (:mod:`atlas_registry.intake.crosswalk`).


class IntakeSubject(SQLModel, table=True):
    __tablename__ = "intake_subject"
    __table_args__ = (
        UniqueConstraint("cohort", "site_key", name="uq_intake_subject_key"),
        UniqueConstraint("cohort", "number", name="uq_intake_subject_number"),
        CheckConstraint("number >= 1", name="ck_intake_subject_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cohort: str = Field(max_length=5)
    site_key: str = Field(max_length=64, description="HMAC-SHA-256 of the site subject identifier")
    number: int
    created_at: datetime


class IntakeSession(SQLModel, table=True):
    __tablename__ = "intake_session"
    __table_args__ = (
        UniqueConstraint("cohort", "subject_number", "session_key", name="uq_intake_session_key"),
        UniqueConstraint("cohort", "subject_number", "timepoint", name="uq_intake_session_timepoint"),
        CheckConstraint("timepoint >= 1", name="ck_intake_session_timepoint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cohort: str = Field(max_length=5)
    subject_number: int
    session_key: str = Field(max_length=64, description="HMAC-SHA-256 of the site session label")
    timepoint: int
    created_at: datetime


class RegistryState(SQLModel, table=True):
    """One row (``id = 1``): the registry's identity and its change counter (0008).

    ``change_counter`` grows by one with every committed write (:func:`atlas_registry.db.session`),
    so a copy of the registry's state (the SQL snapshot, :mod:`atlas_registry.snapshot`) knows
    whether it is current with one read. On PostgreSQL the row is also the writers' lock
    (``SELECT ... FOR UPDATE``, :func:`atlas_registry.db.write_lock`): a role without ``UPDATE`` on
    this table can neither take nor hold it.
    """

    __tablename__ = "registry_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    registry_id: str = Field(sa_type=String(32))
    change_counter: int = Field(sa_column=Column(BigInteger, nullable=False))


class _Keyed(Protocol):
    @property
    def id(self) -> int | None: ...


def row_id(row: _Keyed) -> int:
    """The primary key of a row read from the registry or flushed to it (``None`` only before a
    flush): for typed code that needs an ``int``."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} row without an id: not flushed to the registry yet")
    return row.id
