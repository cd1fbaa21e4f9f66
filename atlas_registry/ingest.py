"""All-or-nothing ingest of a native root, a cohort folder or a standardized root.

Order of work, so that a refusal or a kill never leaves anything half-written:

1. validate everything (no lock, nothing written); any error -> :class:`IngestRefused`;
2. open one transaction and take the registry's write lock (:func:`db.write_lock`);
3. compare with what the registry holds: identical content is a no-op, different content for a
   known scan is refused (that is what revisions are for);
4. copy the new files into the content-addressed store (atomic writes; a kill here leaves at most
   unreferenced objects, never a row pointing at a missing file);
5. insert every row, with the audit log, and commit.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlmodel import Session, select

from . import db, public_ids
from .config import Workspace
from .errors import AtlasError
from .findings import Report
from .models import (
    AuditEvent,
    Cohort,
    Image,
    IngestRun,
    Lesion,
    LesionAnnotation,
    LesionMask,
    Revision,
    ScanReport,
    Scanner,
    StoredObject,
    Subject,
    Timepoint,
)
from .naming import STANDARD_SPACE, parse_scan_id
from .records import ImageRecord, MaskRecord, ValidationResult
from .store import ObjectStore, sha256_bytes


class IngestRefused(AtlasError):
    """Validation found errors: nothing was written."""

    def __init__(self, report: Report, path: str):
        self.report = report
        first = report.errors[0] if report.errors else None
        code = first.code if first else "ING000"
        super().__init__(code, f"ingest refused: {len(report.errors)} error(s); nothing was written", path=path)


@dataclass
class IngestOutcome:
    status: str  # committed | noop
    run_id: int | None
    kind: str
    scans_added: int = 0
    lesions_added: int = 0
    masks_added: int = 0
    images_added: int = 0
    files_stored: int = 0
    files_reused: int = 0
    scrubbed: int = 0
    report: Report = field(default_factory=Report)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "report"}
        d["validation"] = self.report.to_dict()["summary"]
        return d


def now() -> datetime:
    return datetime.now(timezone.utc)


def operator() -> str:
    try:
        return os.environ.get("ATLAS_REGISTRY_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


_MEDIA = {".voi": "application/x-mricron-voi", ".gz": "application/x-nifti-gz", ".json": "application/json"}


def media_type(relpath: str) -> str:
    return _MEDIA.get(Path(relpath).suffix, "application/octet-stream")


def ingest_path(
    ws: Workspace,
    path: str | os.PathLike,
    *,
    metadata: str | os.PathLike | None = None,
    scrub_headers: bool = False,
    workers: int | None = None,
    progress: bool = False,
    result: ValidationResult | None = None,
) -> IngestOutcome:
    """Validate ``path`` and, when it has no errors, write it to the registry in one transaction."""
    from .validate.runner import validate_path

    path = Path(path)
    if result is None:
        kwargs = {"workers": workers, "progress": progress, "scrub_headers": scrub_headers}
        if metadata is not None:
            kwargs["metadata"] = Path(metadata)
        result = validate_path(path, **kwargs)
    if not result.report.ok:
        raise IngestRefused(result.report, str(path))
    db.upgrade(ws)
    return _write(ws, result, scrub_headers=scrub_headers)


class _Writer:
    """Holds the open session, the store and the counters of one ingest."""

    def __init__(self, ws: Workspace, sess: Session, result: ValidationResult, scrub: bool):
        self.ws, self.s, self.result, self.scrub = ws, sess, result, scrub
        self.store = ObjectStore(ws.objects_dir)
        self.new_objects: list[str] = []
        self.events: list[tuple[str, str | None, str]] = []
        self.known_objects: set[str] = set()
        self.out = IngestOutcome(status="committed", run_id=None, kind=result.kind, report=result.report)

    # -- files ---------------------------------------------------------------------------
    def put_file(self, rec) -> str:
        """Copy one validated file into the store; returns the SHA-256 the registry records."""
        src = self.result.root / rec.relpath
        data = src.read_bytes()
        if sha256_bytes(data) != rec.sha256:
            raise AtlasError("ING004", "file changed between validation and ingest", path=rec.relpath)
        if self.scrub and rec.relpath.endswith((".nii.gz", ".voi")):
            from .validate.deid import scrub_nifti_bytes

            scrubbed = scrub_nifti_bytes(data, rec.relpath)
            if scrubbed != data:
                data = scrubbed
                self.events.append(("scrub", rec.relpath, "blanked header text fields / dropped extensions"))
                self.out.scrubbed += 1
        sha = sha256_bytes(data)
        if sha in self.known_objects:
            self.out.files_reused += 1
            return sha
        existed = self.s.get(StoredObject, sha) is not None
        if not self.store.has(sha):
            self.store.put(data, sha)
            self.new_objects.append(sha)
        if not existed:
            self.s.add(StoredObject(sha256=sha, size_bytes=len(data), media_type=media_type(rec.relpath), created_at=now()))
            self.out.files_stored += 1
            self.events.append(("store", rec.relpath, sha))
        else:
            self.out.files_reused += 1
        self.known_objects.add(sha)
        return sha

    def image_row(self, tp_id: int, rec: ImageRecord, space: str, rev_id: int) -> Image:
        sha = self.put_file(rec)
        self.out.images_added += 1
        return Image(
            timepoint_id=tp_id, space=space, sha256=sha, source_name=Path(rec.relpath).name,
            shape_x=rec.shape[0], shape_y=rec.shape[1], shape_z=rec.shape[2],
            voxel_x_mm=rec.zooms[0], voxel_y_mm=rec.zooms[1], voxel_z_mm=rec.zooms[2],
            dtype=rec.dtype, affine=json.dumps(rec.affine), defaced=rec.defaced, created_rev_id=rev_id,
        )

    def mask_row(self, lesion_id: int, rec: MaskRecord, rev_id: int) -> LesionMask:
        sha = self.put_file(rec)
        self.out.masks_added += 1
        return mask_from_record(lesion_id, rec, sha, rev_id)


def mask_from_record(lesion_id: int, rec: MaskRecord, sha: str, rev_id: int) -> LesionMask:
    cx, cy, cz = rec.centroid_mm
    return LesionMask(
        lesion_id=lesion_id, variant=rec.variant, space=rec.space, sha256=sha,
        source_name=Path(rec.relpath).name, voxel_count=rec.voxel_count, volume_mm3=rec.volume_mm3,
        centroid_x_mm=cx, centroid_y_mm=cy, centroid_z_mm=cz, n_components=rec.n_components,
        hemisphere=rec.hemisphere, location=rec.location, created_rev_id=rev_id,
    )


def _write(ws: Workspace, result: ValidationResult, *, scrub_headers: bool) -> IngestOutcome:
    with db.session(ws) as s:
        db.write_lock(s)
        w = _Writer(ws, s, result, scrub_headers)
        try:
            if result.kind == "standard":
                changed = _plan_standard(s, result)
            else:
                changed = _plan_native(s, result)
            if not changed:
                s.rollback()
                w.out.status = "noop"
                return w.out
            run = IngestRun(source=str(result.root), started_at=now(), operator=operator(), status="running",
                            n_files=result.report.files, n_warnings=len(result.report.warnings))
            s.add(run)
            s.flush()
            rev = Revision(kind="ingest" if result.kind != "standard" else "attach_standard", ingest_run_id=run.id,
                           author=run.operator, reason=f"ingest of {result.root.name}", created_at=now(),
                           details=json.dumps({"scans": sorted(changed)}))
            s.add(rev)
            s.flush()
            if result.kind == "standard":
                _write_standard(w, changed, rev.id)
            else:
                _write_native(w, changed, rev.id)
            for kind, p, detail in w.events:
                s.add(AuditEvent(ingest_run_id=run.id, kind=kind, path=p, detail=detail))
            for f in result.report.warnings:
                s.add(AuditEvent(ingest_run_id=run.id, kind="info", path=f.path, detail=f"[{f.code}] {f.message}"))
            run.status, run.finished_at, run.n_scans = "committed", now(), len(changed)
            s.add(run)
            s.flush()
            w.out.run_id = run.id
            w.out.scans_added = len(changed) if result.kind != "standard" else 0
        except BaseException:
            s.rollback()
            # We hold the write lock: nobody else can have started pointing at these objects.
            for sha in w.new_objects:
                w.store.remove(sha)
            raise
    return w.out


# -- native ----------------------------------------------------------------------------------

def _current_native_signature(s: Session, tp: Timepoint) -> dict:
    files = {}
    img = s.exec(select(Image).where(Image.timepoint_id == tp.id, Image.space == "native",
                                      Image.retired_rev_id.is_(None))).first()
    if img:
        files[("t1",)] = img.sha256
    rows = s.exec(
        select(Lesion.number, LesionMask.variant, LesionMask.sha256)
        .join(LesionMask, LesionMask.lesion_id == Lesion.id)
        .where(Lesion.timepoint_id == tp.id, Lesion.retired_rev_id.is_(None), LesionMask.retired_rev_id.is_(None),
               LesionMask.space == "native")
    ).all()
    for n, variant, sha in rows:
        files[(n, variant)] = sha
    return files


def _record_signature(rec) -> dict:
    files = {}
    if rec.t1 is not None:
        files[("t1",)] = rec.t1.sha256
    for n, variants in rec.lesions.items():
        for variant, m in variants.items():
            files[(n, variant)] = m.sha256
    return files


def _plan_native(s: Session, result: ValidationResult) -> set[str]:
    """Scans to add; refuses a known scan whose files differ."""
    new: set[str] = set()
    codes = list(result.scans)
    existing = {tp.code: tp for tp in s.exec(select(Timepoint).where(Timepoint.code.in_(codes))).all()} if codes else {}
    for sid, rec in sorted(result.scans.items()):
        tp = existing.get(sid)
        if tp is None:
            new.add(sid)
            continue
        if result.report.files and _current_native_signature(s, tp) != _record_signature(rec):
            raise AtlasError(
                "ING002",
                f"{sid} is already in the registry with different content; corrections go through "
                "`atlas-registry issue open` and `atlas-registry revise`",
                path=sid,
            )
    return new


def _get_or_create_cohort(s: Session, code: str, cache: dict) -> Cohort:
    if code not in cache:
        c = s.exec(select(Cohort).where(Cohort.code == code)).first()
        if c is None:
            c = Cohort(code=code)
            s.add(c)
            s.flush()
        cache[code] = c
    return cache[code]


def _write_native(w: _Writer, scans: set[str], rev_id: int) -> None:
    s, result = w.s, w.result
    meta = result.metadata
    cohorts: dict[str, Cohort] = {}
    scanners: dict[str, Scanner] = {}

    def scanner_for(cohort: Cohort) -> Scanner | None:
        if cohort.code in scanners:
            return scanners[cohort.code]
        sm = meta.scanners.get(cohort.code) if meta else None
        if sm is None:
            scanners[cohort.code] = None
            return None
        sc = s.exec(select(Scanner).where(Scanner.cohort_id == cohort.id, Scanner.manufacturer == sm.manufacturer,
                                          Scanner.model == sm.model,
                                          Scanner.field_strength_t == sm.field_strength_t)).first()
        if sc is None:
            sc = Scanner(cohort_id=cohort.id, manufacturer=sm.manufacturer, model=sm.model,
                         field_strength_t=sm.field_strength_t, voxel_x_mm=sm.voxel_mm[0],
                         voxel_y_mm=sm.voxel_mm[1], voxel_z_mm=sm.voxel_mm[2])
            s.add(sc)
            s.flush()
        scanners[cohort.code] = sc
        return sc

    subjects: dict[str, Subject] = {}
    for sid in sorted(scans):
        rec = result.scans[sid]
        scan = parse_scan_id(sid)
        cohort = _get_or_create_cohort(s, scan.cohort_code, cohorts)
        sub = subjects.get(scan.subject_code) or s.exec(select(Subject).where(Subject.code == scan.subject_code)).first()
        if sub is None:
            sub = Subject(cohort_id=cohort.id, code=scan.subject_code, number=scan.subject)
            s.add(sub)
            s.flush()
            public_ids.assign(s, sub.id, now())
        subjects[scan.subject_code] = sub
        sm = meta.scans.get(sid) if meta else None
        sc = scanner_for(cohort)
        tp = Timepoint(subject_id=sub.id, scanner_id=sc.id if sc else None, code=sid, number=scan.timepoint,
                       primary_chosen_by_neuroradiologist=bool(sm and sm.primary_chosen_by_neuroradiologist))
        s.add(tp)
        s.flush()
        if rec.t1 is not None:
            s.add(w.image_row(tp.id, rec.t1, "native", rev_id))
        if sm is not None:
            s.add(ScanReport(timepoint_id=tp.id, stroke_type=sm.stroke_type, primary_location=sm.primary_location,
                             primary_hemisphere=sm.primary_hemisphere, vascular_territory=sm.vascular_territory,
                             pvh=sm.pvh, dwmh=sm.dwmh, notes=sm.notes, created_rev_id=rev_id))
        for n in sorted(rec.lesions):
            lesion = Lesion(timepoint_id=tp.id, number=n, created_rev_id=rev_id)
            s.add(lesion)
            s.flush()
            w.out.lesions_added += 1
            for variant in sorted(rec.lesions[n]):
                s.add(w.mask_row(lesion.id, rec.lesions[n][variant], rev_id))
            lm = meta.lesions.get((sid, n)) if meta else None
            if lm is not None:
                s.add(LesionAnnotation(lesion_id=lesion.id, hemisphere=lm.hemisphere, location=lm.location,
                                       tracer=lm.tracer, reviewer=lm.reviewer, created_rev_id=rev_id))
    s.flush()


# -- standard --------------------------------------------------------------------------------

def _plan_standard(s: Session, result: ValidationResult) -> set[str]:
    """Scans whose standard-space files or status are new; the scans must already be registered."""
    wanted = set(result.scans) | {f.scan_id for f in result.registration_failures} | set(result.low_resolution)
    tps = {tp.code: tp for tp in s.exec(select(Timepoint).where(Timepoint.code.in_(sorted(wanted)))).all()} if wanted else {}
    missing = sorted(wanted - set(tps))
    if missing:
        raise AtlasError("ING003", f"standardized files for scans not in the registry: {', '.join(missing[:5])}"
                         + (" …" if len(missing) > 5 else "") + "; ingest the native archive first", path=missing[0])
    changed: set[str] = set()
    for sid, rec in result.scans.items():
        tp = tps[sid]
        have = s.exec(select(Image.sha256).where(Image.timepoint_id == tp.id, Image.space == STANDARD_SPACE,
                                                  Image.retired_rev_id.is_(None))).first()
        if have is None:
            changed.add(sid)
        elif rec.t1 is not None and have != rec.t1.sha256:
            raise AtlasError("ING002", f"{sid} already has different standardized files; use `atlas-registry revise`",
                             path=sid)
        numbers = set(s.exec(select(Lesion.number).where(Lesion.timepoint_id == tp.id, Lesion.retired_rev_id.is_(None))).all())
        extra = sorted(set(rec.lesions) - numbers)
        if extra:
            raise AtlasError("ING005", f"{sid}: standardized mask for lesion {extra[0]} that the native scan does not have",
                             path=sid)
    for f in result.registration_failures:
        if tps[f.scan_id].standard_status != "excluded":
            changed.add(f.scan_id)
    for sid in result.low_resolution:
        if tps[sid].standard_status != "excluded":
            changed.add(sid)
    return changed


def _write_standard(w: _Writer, scans: set[str], rev_id: int) -> None:
    s, result = w.s, w.result
    failures = {f.scan_id: f.reason for f in result.registration_failures}
    lowres = set(result.low_resolution)
    for sid in sorted(scans):
        tp = s.exec(select(Timepoint).where(Timepoint.code == sid)).one()
        rec = result.scans.get(sid)
        if rec is not None:
            if rec.t1 is not None:
                s.add(w.image_row(tp.id, rec.t1, STANDARD_SPACE, rev_id))
            lesions = {l.number: l for l in s.exec(select(Lesion).where(Lesion.timepoint_id == tp.id,
                                                                        Lesion.retired_rev_id.is_(None))).all()}
            for n in sorted(rec.lesions):
                for variant in sorted(rec.lesions[n]):
                    s.add(w.mask_row(lesions[n].id, rec.lesions[n][variant], rev_id))
            tp.standard_status, tp.exclusion_reason, tp.exclusion_note = "included", None, None
        elif sid in failures:
            tp.standard_status, tp.exclusion_reason, tp.exclusion_note = "excluded", "registration_failed", failures[sid]
        elif sid in lowres:
            tp.standard_status, tp.exclusion_reason = "excluded", "low_resolution"
            tp.exclusion_note = "acquired below the standardized subset's minimum resolution"
        s.add(tp)
    s.flush()
