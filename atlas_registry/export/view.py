"""What a release contains, read from the registry once: :func:`build_view` -> :class:`ReleaseView`.

The view is frozen and fully loaded (plain values, no ORM objects, no database access afterwards), so
the exporters are pure functions of it: the same view always gives the same archive bytes.

Rows are taken as the registry stood at revision ``R`` (``as_of_revision``; ``None`` = the newest
revision): a versioned row counts when ``created_rev_id <= R`` and it was not retired by then
(``retired_rev_id IS NULL OR retired_rev_id > R``). A scan belongs to the release when its cohort is in
the specification and it had a native T1 at ``R``.

The standardized subset (the BIDS archive) is every scan whose timepoint is ``included`` in the
standardized set (see :func:`_status_at` for older revisions), whose scanner voxel size is at most
``spec.standard.max_voxel_mm`` on every axis (in template-grid units, see :func:`_grid_scale`), and
that has a standard-space T1 and a standard-space mask for each of its lesions. ``membership``
(scan code -> in_standard, or a :class:`Member`), when given, fixes the scan list and the subset instead:
that is how a built or published release is read again, by :func:`recorded_view`, from its
``release_scan`` rows.

A recorded release is frozen: what it read from rows that only hold the current state (a scan's state in the
standardized subset, which ``ingest standard``, ``exclude`` and ``include`` overwrite, and the subject's public
label) is taken from what its build recorded (:class:`Member`), never from the registry as it is now; every
other row is versioned and read as of the release's revision, and the earlier releases it names are those
published before it was built.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import overload

from sqlalchemy import Integer, and_, cast, func, or_
from sqlmodel import Session, col, select

from ..errors import AtlasError
from ..models import (
    Cohort,
    Image,
    Issue,
    Lesion,
    LesionAnnotation,
    LesionMask,
    PublicId,
    Release,
    ReleaseScan,
    Revision,
    Scanner,
    ScanReport,
    StoredObject,
    Subject,
    Timepoint,
    row_id,
)
from ..naming import STANDARD_SPACE
from ..release_spec import ReleaseSpec, parse_spec

# Why a scan of the release is not in its standardized subset (``ScanView.exclusion_reason``).
EXCLUSION_CODES = {
    "low_resolution": "acquired below the standardized subset's resolution (1.5 T, 0.9 x 0.9 x 3.0 mm)",
    "registration_failed": "registration to the template failed",
    "revision": "excluded by a revision",
    "voxel_size": "scanner voxel size exceeds the release's max_voxel_mm",
    "pending": "not yet processed for the standardized subset",
    "missing_standard_files": "no standard-space T1 or mask for every lesion",
    "membership": "not in the published release's standardized subset",
}
_VOXEL_TOLERANCE = 1e-6
TEMPLATE_VOXEL_MM = 1.0  # the MNI152 2009 template grid (197 x 233 x 189 at 1 mm)
NATIVE_ID_RE = re.compile(r"c\d{4}s\d{4}(?:t\d{2})?")


@dataclass(frozen=True)
class Member:
    """A scan as a built release holds it (its ``release_scan`` row): in the standardized subset or not, and
    why not (a code of :data:`EXCLUSION_CODES` and the note the build gave), and the subject's public label.
    ``None`` where the build did not record it (releases built before migration 0006): then it is worked
    out from the registry (the history of the subset's state, the subject's ``public_id``)."""

    in_standard: bool
    exclusion_reason: str | None = None
    exclusion_note: str | None = None
    public_label: str | None = None
    split: str | None = None  # training | test | hidden (0010); None: no splits, or not recorded


@dataclass(frozen=True)
class ScannerInfo:
    field_strength_t: float
    manufacturer: str
    model: str
    voxel_mm: tuple[float, float, float]


@dataclass(frozen=True)
class ReportInfo:
    stroke_type: str | None
    primary_location: str | None
    primary_hemisphere: str | None
    vascular_territory: str | None
    pvh: int | None
    dwmh: int | None
    notes: str | None
    created_rev_id: int


@dataclass(frozen=True)
class FileRef:
    """A file of the object store as the release uses it."""

    sha256: str
    size: int
    created_rev_id: int


@dataclass(frozen=True)
class ImageInfo(FileRef):
    space: str
    shape: tuple[int, int, int]
    voxel_mm: tuple[float, float, float]
    dtype: str
    defaced: bool


@dataclass(frozen=True)
class MaskInfo(FileRef):
    variant: str
    space: str
    voxel_count: int
    volume_mm3: float
    centroid_mm: tuple[float, float, float]
    n_components: int
    hemisphere: str  # computed from the mask
    location: str  # computed from the mask


@dataclass(frozen=True)
class LesionInfo:
    number: int  # 0 = primary
    created_rev_id: int
    hemisphere: str | None  # as annotated
    location: str | None
    tracer: str | None
    reviewer: str | None
    native: tuple[MaskInfo, ...]  # sorted by variant
    standard: MaskInfo | None

    def native_mask(self, variant: str) -> MaskInfo | None:
        return next((m for m in self.native if m.variant == variant), None)

    @property
    def metrics(self) -> MaskInfo | None:
        """The mask the lesion's computed metrics come from: the native smoothed NIfTI."""
        return self.native_mask("smooth_nii")

    @property
    def is_primary(self) -> bool:
        return self.number == 0


@dataclass(frozen=True)
class ScanView:
    code: str  # cXXXXsXXXXtXX (never leaves in public archives)
    cohort: str
    subject: str  # cXXXXsXXXX
    public_label: str  # the subject's pseudonymous label (BIDS sub-<label>)
    timepoint: int
    scanner: ScannerInfo | None
    report: ReportInfo | None
    in_standard: bool
    exclusion_reason: str | None  # one of EXCLUSION_CODES when not in_standard
    exclusion_note: str | None
    t1_native: ImageInfo
    t1_standard: ImageInfo | None
    lesions: tuple[LesionInfo, ...]  # sorted by number
    primary_chosen_by_neuroradiologist: bool = False
    releases: tuple[str, ...] = ()  # earlier published releases (up to the view's revision) holding the scan
    split: str | None = None  # benchmark split (training | test | hidden); None: the release has no splits

    @property
    def withheld(self) -> bool:
        """Its masks stay in the registry (a test or hidden scan)."""
        return self.split in ("test", "hidden")

    @property
    def bids_subject(self) -> str:
        return f"sub-{self.public_label}"

    @property
    def bids_session(self) -> str:
        return f"ses-{self.timepoint}"

    @property
    def public_scan(self) -> str:
        """The scan's public identifier: ``sub-<label>_ses-<n>`` (the BIDS file prefix)."""
        return f"{self.bids_subject}_{self.bids_session}"

    @property
    def last_revision(self) -> int:
        revs = [self.t1_native.created_rev_id]
        if self.report:
            revs.append(self.report.created_rev_id)
        for les in self.lesions:
            revs += [les.created_rev_id] + [m.created_rev_id for m in les.native]
        return max(revs)


@dataclass(frozen=True)
class CohortInfo:
    code: str
    site: str | None
    description: str | None


@dataclass(frozen=True)
class IssueInfo:
    number: int
    scan: str  # native code (exporters map it to the public scan)
    file_kind: str | None
    title: str
    body: str | None
    url: str | None
    status: str  # as of the view's revision
    opened_at: datetime
    closed_at: datetime | None
    resolved_by: tuple[int, ...]


@dataclass(frozen=True)
class RevisionInfo:
    id: int
    kind: str
    issue: int | None
    scan: str | None  # native code of revision.timepoint_id when it is a scan of the release
    author: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    version: str
    date: str
    title: str
    n_scans: int
    n_standard: int
    last_revision_id: int | None
    previous: str | None


@dataclass(frozen=True)
class ReleaseView:
    name: str
    version: str
    spec: ReleaseSpec
    revision: int | None  # the registry revision the view shows (None: empty registry)
    scans: tuple[ScanView, ...]  # sorted by code
    exclusions: tuple[tuple[str, str], ...]  # (scan code, reason code) for scans not in the subset
    cohorts: tuple[CohortInfo, ...] = ()
    issues: tuple[IssueInfo, ...] = ()
    revisions: tuple[RevisionInfo, ...] = ()
    releases: tuple[ReleaseInfo, ...] = ()  # earlier published releases, then this one

    @property
    def standard_scans(self) -> tuple[ScanView, ...]:
        return tuple(s for s in self.scans if s.in_standard)

    @property
    def n_lesions(self) -> int:
        return sum(len(s.lesions) for s in self.scans)

    def scan(self, code: str) -> ScanView:
        for s in self.scans:
            if s.code == code:
                return s
        raise KeyError(code)

    def public_text(self, text: str | None) -> str | None:
        """``text`` with every native identifier replaced by the scan's public identifier
        (``[withheld]`` for identifiers of scans outside the release)."""
        if not text:
            return text
        pub = {s.code: s.public_scan for s in self.scans}
        subj = {s.subject: s.bids_subject for s in self.scans}
        return NATIVE_ID_RE.sub(lambda m: pub.get(m[0]) or subj.get(m[0]) or "[withheld]", text)


# -- loading ------------------------------------------------------------------------------------


def _alive(model, rev: int):
    """Rows of ``model`` that were current at revision ``rev``."""
    return and_(model.created_rev_id <= rev, or_(model.retired_rev_id.is_(None), model.retired_rev_id > rev))


def _chunks(ids: list[int], n: int = 500):
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


def _rows(sess: Session, stmt_for, ids: list[int]) -> list:
    """Run ``stmt_for(chunk)`` for chunks of ``ids`` (keeps IN lists short for every backend)."""
    out: list = []
    for chunk in _chunks(ids):
        out.extend(sess.exec(stmt_for(chunk)).all())
    return out


def _status_at(
    tp: Timepoint, toggles: list[tuple[int, str, str | None]], rev: int
) -> tuple[str, str | None, str | None]:
    """(standard_status, exclusion_reason, note) of ``tp`` at revision ``rev``.

    The timepoint row holds only the current status; ``exclude_scan``/``include_scan`` revisions of the
    scan (``toggles``: id, kind, details JSON; sorted by id) tell what it was before them: exactly, from
    the state the first revision after ``rev`` recorded as it found it (``details["before"]``), or, for
    revisions made before that was recorded, from their kinds."""
    current = (tp.standard_status, tp.exclusion_reason, tp.exclusion_note)
    later = [(k, d) for r, k, d in toggles if r > rev]
    if not later:
        return current
    before = json.loads(later[0][1] or "{}").get("before")
    if before:
        status, reason, note = before
        return status, reason, note
    earlier = [k for r, k, _ in toggles if r <= rev]
    kind = earlier[-1] if earlier else ("include_scan" if later[0][0] == "exclude_scan" else "exclude_scan")
    if kind == "include_scan":
        return "included", None, None
    reason = tp.exclusion_reason if tp.standard_status == "excluded" else "revision"
    return "excluded", reason or "revision", tp.exclusion_note


def _grid_scale(images: list[Image]) -> float:
    """How much coarser than the 1 mm template the registry's standardized grid is: 1 for real data,
    3 for ``synth --scale small`` (a reduced-scale archive keeps the template's field of view at its own
    voxel size, as the validators accept). ``max_voxel_mm`` is read in these units."""
    std = [i.voxel_x_mm for i in images if i.space == STANDARD_SPACE]
    return max(1.0, min(std) / TEMPLATE_VOXEL_MM) if std else 1.0


def _classify(
    spec: ReleaseSpec, status: str, reason: str | None, note: str | None, voxels, has_std: bool, grid_scale: float = 1.0
):
    """(in the standardized subset?, exclusion reason code, note) by the specification's rules."""
    if spec.standard.require_registration and status != "included":
        return False, reason or "pending", note
    limit = spec.standard.max_voxel_mm * grid_scale
    if max(voxels) > limit + _VOXEL_TOLERANCE:
        return False, "voxel_size", f"voxel size {' x '.join(f'{v:g}' for v in voxels)} mm > {limit:g} mm"
    if not has_std:
        return False, "missing_standard_files", note
    return True, None, None


def _image(img: Image, size: int) -> ImageInfo:
    return ImageInfo(
        sha256=img.sha256,
        size=size,
        created_rev_id=img.created_rev_id,
        space=img.space,
        shape=(img.shape_x, img.shape_y, img.shape_z),
        voxel_mm=(img.voxel_x_mm, img.voxel_y_mm, img.voxel_z_mm),
        dtype=img.dtype,
        defaced=bool(img.defaced),
    )


def _mask(m: LesionMask, size: int) -> MaskInfo:
    return MaskInfo(
        sha256=m.sha256,
        size=size,
        created_rev_id=m.created_rev_id,
        variant=m.variant,
        space=m.space,
        voxel_count=m.voxel_count,
        volume_mm3=m.volume_mm3,
        centroid_mm=(m.centroid_x_mm, m.centroid_y_mm, m.centroid_z_mm),
        n_components=m.n_components,
        hemisphere=m.hemisphere,
        location=m.location,
    )


@overload
def _utc(dt: datetime) -> datetime: ...
@overload
def _utc(dt: None) -> None: ...
def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def recorded_membership(sess: Session, release_id: int) -> dict[str, Member]:
    """The scans of a built (or published) release as its build recorded them, by scan code."""
    rows = sess.exec(
        select(  # type: ignore[call-overload]  # sqlmodel's select is typed for at most 4 columns
            ReleaseScan.scan,
            ReleaseScan.in_standard,
            ReleaseScan.exclusion_reason,
            ReleaseScan.exclusion_note,
            ReleaseScan.public_label,
            ReleaseScan.split,
        ).where(ReleaseScan.release_id == release_id)
    ).all()
    return {code: Member(bool(std), reason, note, label, split) for code, std, reason, note, label, split in rows}


def recorded_view(sess: Session, spec: ReleaseSpec, rel: Release) -> ReleaseView:
    """A built or published release as its build read it: the registry as of its last revision, its
    recorded membership, and the releases published before it was built."""
    return build_view(
        sess,
        spec,
        as_of_revision=rel.last_revision_id,
        membership=recorded_membership(sess, row_id(rel)),
        earlier_than=rel.built_at or rel.published_at,
    )


def build_view(
    sess: Session,
    spec: ReleaseSpec,
    *,
    as_of_revision: int | None = None,
    membership: Mapping[str, bool | Member] | None = None,
    earlier_than: datetime | None = None,
) -> ReleaseView:
    """The release ``spec`` as the registry stood at ``as_of_revision`` (``None``: now). ``earlier_than``:
    only releases published before then are earlier releases (the build time of a recorded release)."""
    members: dict[str, Member] | None = None
    if membership is not None:
        members = {code: m if isinstance(m, Member) else Member(bool(m)) for code, m in membership.items()}
    newest = sess.exec(select(func.max(Revision.id))).one()
    rev = newest if as_of_revision is None else int(as_of_revision)
    if rev is not None and newest is not None and rev > newest:
        raise AtlasError("EXP001", f"revision {rev} does not exist (newest is {newest})")
    if rev is None:  # empty registry
        if members:
            raise AtlasError("EXP002", "the registry is empty but the release lists scans")
        return ReleaseView(spec.name, spec.version, spec, None, (), ())

    cohorts = [c for c in sess.exec(select(Cohort).order_by(Cohort.code)).all() if spec.includes_cohort(c.code)]
    cohort_ids = [row_id(c) for c in cohorts]
    rows = _rows(
        sess,
        lambda ids: (
            select(Timepoint, Subject, Cohort, PublicId)
            .join(Subject, col(Subject.id) == col(Timepoint.subject_id))
            .join(Cohort, col(Cohort.id) == col(Subject.cohort_id))
            .join(PublicId, col(PublicId.subject_id) == col(Subject.id), isouter=True)
            .where(col(Cohort.id).in_(ids))
        ),
        cohort_ids,
    )
    tps = {tp.id: (tp, sub, coh, pid) for tp, sub, coh, pid in rows}
    tp_ids = sorted(tps)

    images = _rows(sess, lambda ids: select(Image).where(col(Image.timepoint_id).in_(ids), _alive(Image, rev)), tp_ids)
    reports = _rows(
        sess,
        lambda ids: select(ScanReport).where(col(ScanReport.timepoint_id).in_(ids), _alive(ScanReport, rev)),
        tp_ids,
    )
    lesions = _rows(
        sess, lambda ids: select(Lesion).where(col(Lesion.timepoint_id).in_(ids), _alive(Lesion, rev)), tp_ids
    )
    lesion_ids = sorted(les.id for les in lesions)
    masks = _rows(
        sess,
        lambda ids: select(LesionMask).where(col(LesionMask.lesion_id).in_(ids), _alive(LesionMask, rev)),
        lesion_ids,
    )
    notes = _rows(
        sess,
        lambda ids: select(LesionAnnotation).where(
            col(LesionAnnotation.lesion_id).in_(ids), _alive(LesionAnnotation, rev)
        ),
        lesion_ids,
    )
    scanner_ids = sorted({tp.scanner_id for tp, *_ in tps.values() if tp.scanner_id is not None})
    scanners = {
        sc.id: sc for sc in _rows(sess, lambda ids: select(Scanner).where(col(Scanner.id).in_(ids)), scanner_ids)
    }
    shas = sorted({i.sha256 for i in images} | {m.sha256 for m in masks})
    sizes = dict(
        _rows(
            sess,
            lambda ids: select(StoredObject.sha256, StoredObject.size_bytes).where(col(StoredObject.sha256).in_(ids)),
            shas,
        )
    )
    toggles: dict[int, list[tuple[int, str, str | None]]] = defaultdict(list)
    for rid, kind, tp_id, details in sess.exec(
        select(Revision.id, Revision.kind, Revision.timepoint_id, Revision.details)
        .where(col(Revision.kind).in_(("exclude_scan", "include_scan")))
        .order_by(col(Revision.id))
    ).all():
        assert rid is not None and tp_id is not None  # a revision of one scan
        toggles[tp_id].append((rid, kind, details))

    earlier = _earlier_releases(sess, spec, rev, earlier_than)
    member_of: dict[int, list[str]] = defaultdict(list)
    if earlier:
        for name, tp_id in sess.exec(
            select(Release.name, ReleaseScan.timepoint_id)
            .join(ReleaseScan, col(ReleaseScan.release_id) == col(Release.id))
            .where(col(Release.id).in_([r.id for r in earlier]))
        ).all():
            member_of[tp_id].append(name)

    grid_scale = _grid_scale(images)
    img_by: dict[tuple[int, str], Image] = {}
    for i in images:
        img_by[(i.timepoint_id, i.space)] = i
    report_by = {r.timepoint_id: r for r in reports}
    note_by = {a.lesion_id: a for a in notes}
    masks_by: dict[int, list[LesionMask]] = defaultdict(list)
    for m in masks:
        masks_by[m.lesion_id].append(m)
    lesions_by: dict[int, list[Lesion]] = defaultdict(list)
    for les in lesions:
        lesions_by[les.timepoint_id].append(les)

    scans: list[ScanView] = []
    for tp_id in tp_ids:
        tp, sub, coh, pid = tps[tp_id]
        member = members.get(tp.code) if members is not None else None
        if members is not None and member is None:
            continue
        if members is None and tp.withdrawn:  # withdrawn: in no release built from now on
            continue
        t1 = img_by.get((tp_id, "native"))
        if t1 is None:  # the scan did not exist at this revision
            continue
        label = member.public_label if member is not None and member.public_label else pid.label if pid else None
        if label is None:
            raise AtlasError("EXP003", f"subject {sub.code} has no public ID", path=tp.code)
        sc = scanners.get(tp.scanner_id) if tp.scanner_id is not None else None
        scanner = (
            ScannerInfo(sc.field_strength_t, sc.manufacturer, sc.model, (sc.voxel_x_mm, sc.voxel_y_mm, sc.voxel_z_mm))
            if sc
            else None
        )
        r = report_by.get(tp_id)
        report = (
            ReportInfo(
                r.stroke_type,
                r.primary_location,
                r.primary_hemisphere,
                r.vascular_territory,
                r.pvh,
                r.dwmh,
                r.notes,
                r.created_rev_id,
            )
            if r
            else None
        )
        les_infos = []
        for les in sorted(lesions_by.get(tp_id, []), key=lambda x: x.number):
            ms = masks_by.get(row_id(les), [])
            native = tuple(
                sorted((_mask(m, sizes[m.sha256]) for m in ms if m.space == "native"), key=lambda x: x.variant)
            )
            std = next((_mask(m, sizes[m.sha256]) for m in ms if m.space == STANDARD_SPACE), None)
            a = note_by.get(les.id)
            les_infos.append(
                LesionInfo(
                    les.number,
                    les.created_rev_id,
                    a.hemisphere if a else None,
                    a.location if a else None,
                    a.tracer if a else None,
                    a.reviewer if a else None,
                    native,
                    std,
                )
            )
        t1s = img_by.get((tp_id, STANDARD_SPACE))
        has_std = t1s is not None and all(li.standard is not None for li in les_infos)
        status, reason, note = _status_at(tp, toggles.get(tp_id, []), rev)
        voxels = scanner.voxel_mm if scanner else (t1.voxel_x_mm, t1.voxel_y_mm, t1.voxel_z_mm)
        in_std, reason, note = _classify(spec, status, reason, note, voxels, has_std, grid_scale)
        if member is not None:
            wanted = member.in_standard
            if wanted and not has_std:
                raise AtlasError(
                    "EXP004",
                    f"{tp.code} is in the release's standardized subset but has no "
                    f"standard-space files at revision {rev}",
                    path=tp.code,
                )
            if not wanted and member.exclusion_reason is not None:  # as the build recorded it
                reason, note = member.exclusion_reason, member.exclusion_note
            elif in_std and not wanted:
                reason, note = "membership", None
            in_std = wanted
        t1_standard = None
        if in_std:
            reason = note = None
            assert t1s is not None  # in the subset: it has its standard files (_classify, EXP004)
            t1_standard = _image(t1s, sizes[t1s.sha256])
        scans.append(
            ScanView(
                code=tp.code,
                cohort=coh.code,
                subject=sub.code,
                public_label=label,
                timepoint=tp.number,
                scanner=scanner,
                report=report,
                in_standard=in_std,
                exclusion_reason=reason,
                exclusion_note=note or (EXCLUSION_CODES.get(reason) if reason else None),
                t1_native=_image(t1, sizes[t1.sha256]),
                t1_standard=t1_standard,
                lesions=tuple(les_infos) if in_std else tuple(_drop_standard(li) for li in les_infos),
                primary_chosen_by_neuroradiologist=bool(tp.primary_chosen_by_neuroradiologist),
                releases=tuple(sorted(member_of.get(tp_id, ()))),
            )
        )
    if members is not None:
        missing = sorted(set(members) - {s.code for s in scans})
        if missing:
            raise AtlasError(
                "EXP005",
                f"{len(missing)} scan(s) of the release are not in the registry at revision "
                f"{rev}: {', '.join(missing[:5])}",
                path=missing[0],
            )
    scans.sort(key=lambda s: s.code)
    scans = _with_splits(spec, scans, members)
    in_release = {s.code for s in scans}
    return ReleaseView(
        name=spec.name,
        version=spec.version,
        spec=spec,
        revision=rev,
        scans=tuple(scans),
        exclusions=tuple(
            (s.code, s.exclusion_reason) for s in scans if not s.in_standard and s.exclusion_reason is not None
        ),  # a scan outside the subset always has its reason
        cohorts=tuple(
            CohortInfo(c.code, c.site, c.description) for c in cohorts if any(s.cohort == c.code for s in scans)
        ),
        issues=_issues(sess, rev, {tp_id: tps[tp_id][0].code for tp_id in tp_ids if tps[tp_id][0].code in in_release}),
        revisions=_revisions(sess, rev, {tp_id: tps[tp_id][0].code for tp_id in tp_ids}, in_release),
        releases=_releases(sess, spec, rev, scans, earlier),
    )


def _with_splits(spec: ReleaseSpec, scans: list[ScanView], membership: dict[str, Member] | None) -> list[ScanView]:
    """The scans with their benchmark split: as the build recorded it, or assigned now
    (:func:`atlas_registry.splits.assign`) from the specification and the registry."""
    if spec.splits is None:
        return scans
    recorded = {code: m.split for code, m in (membership or {}).items() if m.split}
    split_of: Mapping[str, str]
    if scans and all(s.code in recorded for s in scans):
        split_of = recorded
    else:
        from ..splits import assign

        split_of = assign(scans, spec.splits)
    return [replace(s, split=split_of[s.code]) for s in scans]


def _drop_standard(li: LesionInfo) -> LesionInfo:
    """A lesion outside the standardized subset carries no standard-space file."""
    if li.standard is None:
        return li
    return LesionInfo(li.number, li.created_rev_id, li.hemisphere, li.location, li.tracer, li.reviewer, li.native, None)


def _issues(sess: Session, rev: int, codes: dict[int, str]) -> tuple[IssueInfo, ...]:
    """Issues of the release's scans as they stood at ``rev``: opened by then (or resolved by a revision
    up to ``rev``), closed when a revision up to ``rev`` resolved them or they were closed by then."""
    if not codes:
        return ()
    cutoff = _utc(sess.exec(select(Revision.created_at).where(Revision.id == rev)).one())
    resolved: dict[int, list[int]] = defaultdict(list)
    for rid, iid in sess.exec(
        select(Revision.id, Revision.issue_id).where(col(Revision.issue_id).is_not(None), col(Revision.id) <= rev)
    ).all():
        assert rid is not None and iid is not None  # a primary key; selected where not null
        resolved[iid].append(rid)
    out = []
    for i in _rows(sess, lambda ids: select(Issue).where(col(Issue.timepoint_id).in_(ids)), sorted(codes)):
        opened, closed = _utc(i.opened_at), _utc(i.closed_at)
        if opened > cutoff and i.id not in resolved:
            continue
        is_closed = i.id in resolved or (closed is not None and closed <= cutoff)
        out.append(
            IssueInfo(
                i.id,
                codes[i.timepoint_id],
                i.file_kind,
                i.title,
                i.body,
                i.url,
                "closed" if is_closed else "open",
                opened,
                closed if is_closed else None,
                tuple(sorted(resolved.get(i.id, ()))),
            )
        )
    return tuple(sorted(out, key=lambda x: x.number))


def _revisions(sess: Session, rev: int, codes: dict[int, str], in_release: set[str]) -> tuple[RevisionInfo, ...]:
    rows = sess.exec(select(Revision).where(col(Revision.id) <= rev).order_by(col(Revision.id))).all()
    out = []
    for r in rows:
        code = codes.get(r.timepoint_id) if r.timepoint_id is not None else None
        out.append(
            RevisionInfo(
                row_id(r),
                r.kind,
                r.issue_id,
                code if code in in_release else None,
                r.author,
                r.reason,
                _utc(r.created_at),
            )
        )
    return tuple(out)


def _earlier_releases(sess: Session, spec: ReleaseSpec, rev: int, earlier_than: datetime | None) -> list[Release]:
    """Published releases other than this one whose content predates ``rev`` (and that were published
    before ``earlier_than``, when given)."""
    rows = sess.exec(
        select(Release).where(Release.status == "published", Release.name != spec.name).order_by(col(Release.id))
    ).all()
    cutoff = _utc(earlier_than)
    return [
        r
        for r in rows
        if (r.last_revision_id is None or r.last_revision_id <= rev)
        and (cutoff is None or (r.published_at is not None and _utc(r.published_at) < cutoff))
    ]


def _releases(
    sess: Session, spec: ReleaseSpec, rev: int, scans: list[ScanView], earlier: list[Release]
) -> tuple[ReleaseInfo, ...]:
    """Published releases up to ``rev`` (other than this one), then this release."""
    out = []
    names = {r.id: r.name for r in sess.exec(select(Release)).all()}
    for r in earlier:
        counts = sess.exec(
            select(func.count(), func.sum(cast(ReleaseScan.in_standard, Integer))).where(ReleaseScan.release_id == r.id)
        ).one()
        try:
            date, title = (lambda s: (s.date, s.title))(parse_spec(r.spec, r.name))
        except AtlasError:
            date, title = "", r.name
        out.append(
            ReleaseInfo(
                r.name,
                r.version,
                date,
                title,
                int(counts[0] or 0),
                int(counts[1] or 0),
                r.last_revision_id,
                names.get(r.previous_release_id),
            )
        )
    prev = out[-1].name if out else None
    out.append(
        ReleaseInfo(
            spec.name, spec.version, spec.date, spec.title, len(scans), sum(s.in_standard for s in scans), rev, prev
        )
    )
    return tuple(out)
