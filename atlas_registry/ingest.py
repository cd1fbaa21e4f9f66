"""All-or-nothing ingest of a native root, a cohort folder or a standardized root.

Order of work, so that a refusal or a kill never leaves anything half-written:

1. validate everything (no lock, nothing written); any error -> :class:`IngestRefused`;
2. open one transaction and take the registry's write lock (:func:`db.write_lock`);
3. compare with what the registry holds: identical content is a no-op, different content for a
   known scan is refused (that is what revisions are for);
4. copy the new files into the content-addressed store (atomic writes to a folder, conditional PUTs
   to S3, in parallel; a kill or a lost endpoint here leaves at most unreferenced objects, never a
   row pointing at a missing object: ``store gc`` removes them);
5. insert every row, with the audit log, and commit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from . import db, facts, public_ids, verdicts
from .clock import now, operator
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
    Scanner,
    ScanReport,
    StoredObject,
    Subject,
    Timepoint,
    row_id,
)
from .naming import STANDARD_SPACE, parse_scan_id
from .objstore import open_store
from .records import ImageRecord, MaskRecord, ValidationResult
from .store import sha256_bytes


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
    if result is not None:
        if not result.report.ok:
            raise IngestRefused(result.report, str(path))
        db.upgrade(ws)
        return _write(ws, result, scrub_headers=scrub_headers)
    import shutil
    import tempfile

    ws.home.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(prefix=".ingest-spool-", dir=ws.home))
    try:
        kwargs: dict[str, Any] = {
            "workers": workers,
            "progress": progress,
            "scrub_headers": scrub_headers,
            "spool": spool,
        }
        if metadata is not None:
            kwargs["metadata"] = Path(metadata)
        result = validate_path(path, **kwargs)
        if not result.report.ok:
            raise IngestRefused(result.report, str(path))
        db.upgrade(ws)
        return _write(ws, result, scrub_headers=scrub_headers, spool=spool)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


class _Writer:
    """Holds the open session, the store and the counters of one ingest."""

    def __init__(self, ws: Workspace, sess: Session, result: ValidationResult, scrub: bool, spool: Path | None = None):
        self.ws, self.s, self.result, self.scrub, self.spool = ws, sess, result, scrub, spool
        self.store = open_store(ws)
        self.new_objects: list[str] = []  # written by this writer (appended by the upload threads)
        self.events: list[tuple[str, str | None, str]] = []
        self.known_objects: set[str] = set()
        self.sha_of: dict[str, str] = {}  # relpath -> SHA-256 recorded in the registry
        self.verdicts: set[str] = set()  # passing de-identification verdicts on stored objects
        self.out = IngestOutcome(status="committed", run_id=None, kind=result.kind, report=result.report)

    # -- files ---------------------------------------------------------------------------
    def _load(self, rec) -> bytes:
        """The canonical form (:mod:`canonical`) of one validated file, re-read from the delivery:
        the delivery must still be the bytes validated and its canonical form the one validated."""
        from .canonical import MAX_FILE_BYTES, encode_file
        from .store import read_regular

        try:
            data = read_regular(self.result.root / rec.relpath, MAX_FILE_BYTES)
        except (OSError, ValueError) as e:
            raise AtlasError("ING004", f"file changed between validation and ingest ({e})", path=rec.relpath) from None
        if sha256_bytes(data) != (rec.source_sha256 or rec.sha256):
            raise AtlasError("ING004", "file changed between validation and ingest", path=rec.relpath)
        data = encode_file(data, rec.relpath)
        if sha256_bytes(data) != rec.sha256:
            raise AtlasError("ING004", "file's canonical form changed between validation and ingest", path=rec.relpath)
        return data

    def prefetch(self, recs: list) -> None:
        """Store many files at once: read/verify/write in threads, one query for the objects the
        registry already has, one bulk insert of the new ``stored_object`` rows."""
        from concurrent.futures import ThreadPoolExecutor

        todo = [r for r in recs if r.relpath not in self.sha_of]
        if not todo:
            return
        existing: set[str] = set()
        shas = sorted({r.sha256 for r in todo})
        for i in range(0, len(shas), 500):
            existing |= set(
                self.s.exec(select(StoredObject.sha256).where(col(StoredObject.sha256).in_(shas[i : i + 500]))).all()
            )
        new_rows: dict[str, dict] = {}

        def one(rec) -> tuple:
            """(record, size or None if already stored, written now?)"""
            if self.store.remote and rec.sha256 not in existing:  # new to the registry: one conditional PUT
                data = self._spooled(rec)
                data = data if data is not None else self._load(rec)
                if not self.store.create(data, rec.sha256):
                    return rec, None, False  # there already (left by an interrupted ingest): reused
                self.new_objects.append(rec.sha256)
                return rec, len(data), True
            if self.store.has(rec.sha256):
                return rec, None, False
            if self.spool is not None:  # the canonical bytes validation made: moved, not encoded again
                try:
                    size = (self.spool / rec.sha256).stat().st_size
                    self.store.adopt(self.spool / rec.sha256, rec.sha256)
                    self.new_objects.append(rec.sha256)
                    return rec, size, True
                except FileNotFoundError:  # another record of the same content took it
                    pass
            data = self._load(rec)
            self.store.put(data, rec.sha256, fsync=False)
            self.new_objects.append(rec.sha256)
            return rec, len(data), True

        workers = min(4, (os.cpu_count() or 1) + 1) if not self.store.remote else self.store.parallel
        with ThreadPoolExecutor(max_workers=workers) as pool:  # a remote store: the threads wait on the network
            results = list(pool.map(one, todo))
        scrubbed = self.scrubbed_paths()
        for rec, size, _wrote in results:
            sha = rec.sha256
            if isinstance(rec, (ImageRecord, MaskRecord)):  # the canonical form has no header text by construction
                self.verdicts.add(f"header {sha}")
                if isinstance(rec, ImageRecord) and rec.defaced:
                    self.verdicts.add(f"face {sha}")
            if rec.relpath in scrubbed:
                self.events.append(
                    ("scrub", rec.relpath, "stored the canonical form: header text fields blanked, extensions dropped")
                )
                self.out.scrubbed += 1
            self.sha_of[rec.relpath] = sha
            if sha in existing or sha in new_rows or sha in self.known_objects:
                self.out.files_reused += 1
                continue
            new_rows[sha] = {
                "sha256": sha,
                "size_bytes": size if size is not None else self._size(sha),
                "media_type": media_type(rec.relpath),
                "created_at": now(),
            }
            self.out.files_stored += 1
            self.events.append(("store", rec.relpath, sha))
        if new_rows:
            self.s.execute(insert(StoredObject), [new_rows[k] for k in sorted(new_rows)])
        self.known_objects |= existing | set(new_rows)

    def _spooled(self, rec) -> bytes | None:
        """The canonical bytes validation spooled for ``rec`` (None without a spool)."""
        if self.spool is None:
            return None
        try:
            return (self.spool / rec.sha256).read_bytes()
        except FileNotFoundError:
            return None

    def _size(self, sha: str) -> int:
        n = self.store.size(sha)
        if n is None:  # gone since has() said it was there (someone removed it by hand)
            raise AtlasError("STO001", "an object vanished from the store during ingest", path=self.store.key(sha))
        return n

    def forget_new_objects(self) -> None:
        """After a rollback: remove what this writer stored (best effort: an object left behind
        because the store went away is an orphan, reported by ``store verify``, removed by ``store gc``)."""
        for sha in list(self.new_objects):
            try:
                self.store.remove(sha)
            except (AtlasError, OSError):
                pass

    def scrubbed_paths(self) -> set[str]:
        """Files whose header text or extensions validation reported as scrubbed (``--scrub-headers``)."""
        return {
            f.path
            for f in self.result.report.findings
            if f.severity == "info" and f.code in ("DEID001", "DEID002") and f.path
        }

    def put_file(self, rec) -> str:
        """Copy one validated file into the store; returns the SHA-256 the registry records."""
        self.prefetch([rec])
        return self.sha_of[rec.relpath]

    def image_values(self, tp_id: int, rec: ImageRecord, space: str, rev_id: int) -> dict:
        sha = self.put_file(rec)
        self.out.images_added += 1
        return dict(
            timepoint_id=tp_id,
            space=space,
            modality="T1w",
            sha256=sha,
            source_name=Path(rec.relpath).name,
            shape_x=rec.shape[0],
            shape_y=rec.shape[1],
            shape_z=rec.shape[2],
            voxel_x_mm=rec.zooms[0],
            voxel_y_mm=rec.zooms[1],
            voxel_z_mm=rec.zooms[2],
            dtype=rec.dtype,
            affine=json.dumps(rec.affine),
            defaced=rec.defaced,
            created_rev_id=rev_id,
            retired_rev_id=None,
        )

    def mask_values(self, lesion_id: int, rec: MaskRecord, rev_id: int) -> dict:
        sha = self.put_file(rec)
        self.out.masks_added += 1
        return mask_values(lesion_id, rec, sha, rev_id)

    def mask_row(self, lesion_id: int, rec: MaskRecord, rev_id: int) -> LesionMask:
        """One mask row (revisions add rows one by one; ingest inserts :meth:`mask_values` in bulk)."""
        return LesionMask(**self.mask_values(lesion_id, rec, rev_id))


def mask_values(lesion_id: int, rec: MaskRecord, sha: str, rev_id: int) -> dict:
    cx, cy, cz = rec.centroid_mm
    return dict(
        lesion_id=lesion_id,
        variant=rec.variant,
        space=rec.space,
        sha256=sha,
        source_name=Path(rec.relpath).name,
        voxel_count=rec.voxel_count,
        volume_mm3=rec.volume_mm3,
        centroid_x_mm=cx,
        centroid_y_mm=cy,
        centroid_z_mm=cz,
        n_components=rec.n_components,
        hemisphere=rec.hemisphere,
        location=rec.location,
        created_rev_id=rev_id,
        retired_rev_id=None,
    )


def insert_returning_ids(s: Session, model, rows: list[dict]) -> list[int]:
    """Bulk insert ``rows``; the new primary keys in the order of ``rows``."""
    if not rows:
        return []
    return list(s.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows).scalars())


def insert_all(s: Session, model, rows: list[dict]) -> None:
    if rows:
        s.execute(insert(model), rows)


def _write(ws: Workspace, result: ValidationResult, *, scrub_headers: bool, spool: Path | None = None) -> IngestOutcome:
    with db.session(ws) as s:
        db.write_lock(s)
        w = _Writer(ws, s, result, scrub_headers, spool)
        try:
            if result.kind == "standard":
                changed = _plan_standard(s, result)
            else:
                changed = _plan_native(s, result)
            if not changed:
                s.rollback()
                w.out.status = "noop"
                return w.out
            run = IngestRun(
                source=str(result.root),
                started_at=now(),
                operator=operator(),
                status="running",
                n_files=result.report.files,
                n_warnings=len(result.report.warnings),
            )
            s.add(run)
            s.flush()
            rev = Revision(
                kind="ingest" if result.kind != "standard" else "attach_standard",
                ingest_run_id=run.id,
                author=run.operator,
                reason=f"ingest of {result.root.name}",
                created_at=now(),
                details=json.dumps({"scans": sorted(changed)}),
            )
            s.add(rev)
            s.flush()
            if result.kind == "standard":
                _write_standard(w, changed, row_id(rev))
            else:
                _write_native(w, changed, row_id(rev))
            s.flush()
            facts.refresh_scans(s, sorted(changed))  # the current-state rows behind the SQL views
            for kind, p, detail in w.events:
                s.add(AuditEvent(ingest_run_id=row_id(run), kind=kind, path=p, detail=detail))
            for f in result.report.warnings:
                s.add(AuditEvent(ingest_run_id=row_id(run), kind="info", path=f.path, detail=f"[{f.code}] {f.message}"))
            run.status, run.finished_at, run.n_scans = "committed", now(), len(changed)
            s.add(run)
            s.flush()
            w.out.run_id = run.id
            if w.new_objects:
                w.store.sync()  # every new object is on disk before any committed row points at it
            w.out.scans_added = len(changed) if result.kind != "standard" else 0
        except BaseException:
            s.rollback()
            # We hold the write lock: nobody else can have started pointing at these objects.
            w.forget_new_objects()
            raise
    verdicts.add(ws.verdicts_dir, w.verdicts)  # committed: what validation passed need not be checked again
    return w.out


# -- native ----------------------------------------------------------------------------------


def _current_native_signature(s: Session, tp: Timepoint) -> dict:
    files: dict[tuple, str] = {}
    img = s.exec(
        select(Image).where(Image.timepoint_id == tp.id, Image.space == "native", col(Image.retired_rev_id).is_(None))
    ).first()
    if img:
        files[("t1",)] = img.sha256
    rows = s.exec(
        select(Lesion.number, LesionMask.variant, LesionMask.sha256)
        .join(LesionMask, col(LesionMask.lesion_id) == col(Lesion.id))
        .where(
            Lesion.timepoint_id == tp.id,
            col(Lesion.retired_rev_id).is_(None),
            col(LesionMask.retired_rev_id).is_(None),
            LesionMask.space == "native",
        )
    ).all()
    for n, variant, sha in rows:
        files[(n, variant)] = sha
    return files


def _record_signature(rec) -> dict:
    files: dict[tuple, str] = {}
    if rec.t1 is not None:
        files[("t1",)] = rec.t1.sha256
    for n, variants in rec.lesions.items():
        for variant, m in variants.items():
            files[(n, variant)] = m.sha256
    return files


def _refuse_withdrawn(tp: Timepoint) -> None:
    """ING006: a withdrawn scan does not come back by ingest (its folder is still in the source)."""
    if tp.withdrawn:
        raise AtlasError(
            "ING006",
            f"{tp.code} was withdrawn from the registry: remove its folder from the input, or "
            "bring it back with `atlas-registry revise reinstate`",
            path=tp.code,
        )


def _plan_native(s: Session, result: ValidationResult) -> set[str]:
    """Scans to add; refuses a known scan whose files differ."""
    new: set[str] = set()
    codes = list(result.scans)
    existing = (
        {tp.code: tp for tp in s.exec(select(Timepoint).where(col(Timepoint.code).in_(codes))).all()} if codes else {}
    )
    for sid, rec in sorted(result.scans.items()):
        tp = existing.get(sid)
        if tp is None:
            new.add(sid)
            continue
        _refuse_withdrawn(tp)
        if result.report.files and _current_native_signature(s, tp) != _record_signature(rec):
            raise AtlasError(
                "ING002",
                f"{sid} is already in the registry with different content; corrections go through "
                "`atlas-registry issue open` and `atlas-registry revise`",
                path=sid,
            )
    _refuse_duplicates(s, {sid: result.scans[sid] for sid in new})
    return new


def _refuse_duplicates(s: Session, new: dict) -> None:
    """ING007: a new scan whose T1 is, byte for byte, the T1 of a scan already registered (the same
    scan under a second identifier; validation's IMG011 catches it within one archive)."""
    shas = {rec.t1.sha256: sid for sid, rec in new.items() if rec.t1 is not None}
    if not shas:
        return
    for chunk in facts.chunks(sorted(shas)):
        row = s.exec(
            select(Image.sha256, Timepoint.code)
            .join(Timepoint, col(Timepoint.id) == col(Image.timepoint_id))
            .where(Image.space == "native", col(Image.sha256).in_(chunk))
            .order_by(Timepoint.code)
        ).first()
        if row is not None:
            sid = shas[row[0]]
            raise AtlasError(
                "ING007",
                f"its T1 is the T1 of {row[1]}, already in the registry (sha256 "
                f"{row[0][:12]}): the same scan under a second identifier?",
                path=sid,
            )


def _get_or_create_cohort(s: Session, code: str, cache: dict) -> Cohort:
    if code not in cache:
        c = s.exec(select(Cohort).where(Cohort.code == code)).first()
        if c is None:
            c = Cohort(code=code)
            s.add(c)
            s.flush()
        cache[code] = c
    return cache[code]


def _scanner_for(s: Session, cohort: Cohort, meta, cache: dict) -> Scanner | None:
    if cohort.code not in cache:
        sm = meta.scanners.get(cohort.code) if meta else None
        sc = None
        if sm is not None:
            sc = s.exec(
                select(Scanner).where(
                    Scanner.cohort_id == cohort.id,
                    Scanner.manufacturer == sm.manufacturer,
                    Scanner.model == sm.model,
                    Scanner.field_strength_t == sm.field_strength_t,
                )
            ).first()
            if sc is None:
                sc = Scanner(
                    cohort_id=row_id(cohort),
                    manufacturer=sm.manufacturer,
                    model=sm.model,
                    field_strength_t=sm.field_strength_t,
                    voxel_x_mm=sm.voxel_mm[0],
                    voxel_y_mm=sm.voxel_mm[1],
                    voxel_z_mm=sm.voxel_mm[2],
                )
                s.add(sc)
                s.flush()
        cache[cohort.code] = sc
    return cache[cohort.code]


def _write_native(w: _Writer, scans: set[str], rev_id: int) -> None:
    """Insert the new scans table by table (bulk inserts, a handful of statements in all)."""
    s, result = w.s, w.result
    meta = result.metadata
    order = sorted(scans)
    recs = [result.scans[sid] for sid in order]
    w.prefetch(
        [r.t1 for r in recs if r.t1 is not None]
        + [m for r in recs for n in sorted(r.lesions) for _, m in sorted(r.lesions[n].items())]
    )

    cohorts: dict[str, Cohort] = {}
    scanners: dict[str, Scanner | None] = {}
    ids = {sid: parse_scan_id(sid) for sid in order}
    sub_codes = sorted({i.subject_code for i in ids.values()})
    subjects = {sub.code: row_id(sub) for sub in s.exec(select(Subject).where(col(Subject.code).in_(sub_codes))).all()}
    new_subjects = [c for c in sub_codes if c not in subjects]
    rows = []
    for code in new_subjects:
        scan = next(i for i in ids.values() if i.subject_code == code)
        rows.append(
            {"cohort_id": _get_or_create_cohort(s, scan.cohort_code, cohorts).id, "code": code, "number": scan.subject}
        )
    subjects.update(zip(new_subjects, insert_returning_ids(s, Subject, rows), strict=False))
    public_ids.assign_many(s, [subjects[c] for c in new_subjects], now())

    tp_rows = []
    for sid in order:
        scan = ids[sid]
        cohort = _get_or_create_cohort(s, scan.cohort_code, cohorts)
        sc = _scanner_for(s, cohort, meta, scanners)
        sm = meta.scans.get(sid) if meta else None
        tp_rows.append(
            {
                "subject_id": subjects[scan.subject_code],
                "scanner_id": sc.id if sc else None,
                "code": sid,
                "number": scan.timepoint,
                "standard_status": "pending",
                "exclusion_reason": None,
                "exclusion_note": None,
                "primary_chosen_by_neuroradiologist": bool(sm and sm.primary_chosen_by_neuroradiologist),
            }
        )
    tp_ids = dict(zip(order, insert_returning_ids(s, Timepoint, tp_rows), strict=False))

    images, reports, lesion_rows, lesion_keys = [], [], [], []
    for sid, rec in zip(order, recs, strict=False):
        if rec.t1 is not None:
            images.append(w.image_values(tp_ids[sid], rec.t1, "native", rev_id))
        sm = meta.scans.get(sid) if meta else None
        if sm is not None:
            reports.append(
                {
                    "timepoint_id": tp_ids[sid],
                    "stroke_type": sm.stroke_type,
                    "primary_location": sm.primary_location,
                    "primary_hemisphere": sm.primary_hemisphere,
                    "vascular_territory": sm.vascular_territory,
                    "pvh": sm.pvh,
                    "dwmh": sm.dwmh,
                    "notes": sm.notes,
                    "created_rev_id": rev_id,
                    "retired_rev_id": None,
                }
            )
        for n in sorted(rec.lesions):
            lesion_rows.append(
                {"timepoint_id": tp_ids[sid], "number": n, "created_rev_id": rev_id, "retired_rev_id": None}
            )
            lesion_keys.append((sid, n))
    insert_all(s, Image, images)
    insert_all(s, ScanReport, reports)
    lesion_ids = insert_returning_ids(s, Lesion, lesion_rows)
    w.out.lesions_added += len(lesion_ids)

    masks, annotations = [], []
    for (sid, n), lesion_id in zip(lesion_keys, lesion_ids, strict=False):
        for _variant, mrec in sorted(result.scans[sid].lesions[n].items()):
            masks.append(w.mask_values(lesion_id, mrec, rev_id))
        lm = meta.lesions.get((sid, n)) if meta else None
        if lm is not None:
            annotations.append(
                {
                    "lesion_id": lesion_id,
                    "hemisphere": lm.hemisphere,
                    "location": lm.location,
                    "tracer": lm.tracer,
                    "reviewer": lm.reviewer,
                    "created_rev_id": rev_id,
                    "retired_rev_id": None,
                }
            )
    insert_all(s, LesionMask, masks)
    insert_all(s, LesionAnnotation, annotations)


# -- standard --------------------------------------------------------------------------------


def _plan_standard(s: Session, result: ValidationResult) -> set[str]:
    """Scans whose standard-space files or status are new; the scans must already be registered."""
    wanted = set(result.scans) | {f.scan_id for f in result.registration_failures} | set(result.low_resolution)
    tps = (
        {tp.code: tp for tp in s.exec(select(Timepoint).where(col(Timepoint.code).in_(sorted(wanted)))).all()}
        if wanted
        else {}
    )
    missing = sorted(wanted - set(tps))
    if missing:
        raise AtlasError(
            "ING003",
            f"standardized files for scans not in the registry: {', '.join(missing[:5])}"
            + (" …" if len(missing) > 5 else "")
            + "; ingest the native archive first",
            path=missing[0],
        )
    for tp in tps.values():
        _refuse_withdrawn(tp)
    changed: set[str] = set()
    for sid, rec in result.scans.items():
        tp = tps[sid]
        have = s.exec(
            select(Image.sha256).where(
                Image.timepoint_id == tp.id, Image.space == STANDARD_SPACE, col(Image.retired_rev_id).is_(None)
            )
        ).first()
        if have is None:
            changed.add(sid)
        elif rec.t1 is not None and have != rec.t1.sha256:
            raise AtlasError(
                "ING002", f"{sid} already has different standardized files; use `atlas-registry revise`", path=sid
            )
        numbers = set(
            s.exec(
                select(Lesion.number).where(Lesion.timepoint_id == tp.id, col(Lesion.retired_rev_id).is_(None))
            ).all()
        )
        extra = sorted(set(rec.lesions) - numbers)
        if extra:
            raise AtlasError(
                "ING005", f"{sid}: standardized mask for lesion {extra[0]} that the native scan does not have", path=sid
            )
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
    order = sorted(scans)
    attach = [result.scans[sid] for sid in order if sid in result.scans]
    w.prefetch(
        [r.t1 for r in attach if r.t1 is not None]
        + [m for r in attach for n in sorted(r.lesions) for _, m in sorted(r.lesions[n].items())]
    )
    tps = {tp.code: tp for tp in s.exec(select(Timepoint).where(col(Timepoint.code).in_(order))).all()}
    lesions: dict[tuple[int, int], int] = {}
    tp_ids = [tp.id for tp in tps.values()]
    for i in range(0, len(tp_ids), 500):
        for lid, tid, num in s.exec(
            select(Lesion.id, Lesion.timepoint_id, Lesion.number).where(
                col(Lesion.timepoint_id).in_(tp_ids[i : i + 500]), col(Lesion.retired_rev_id).is_(None)
            )
        ).all():
            assert lid is not None  # a primary key
            lesions[(tid, num)] = lid
    images, masks, status = [], [], []
    for sid in order:
        tp = tps[sid]
        rec = result.scans.get(sid)
        if rec is not None:
            if rec.t1 is not None:
                images.append(w.image_values(row_id(tp), rec.t1, STANDARD_SPACE, rev_id))
            for n in sorted(rec.lesions):
                for _, mrec in sorted(rec.lesions[n].items()):
                    masks.append(w.mask_values(lesions[(row_id(tp), n)], mrec, rev_id))
            status.append(
                {"id": tp.id, "standard_status": "included", "exclusion_reason": None, "exclusion_note": None}
            )
        elif sid in failures:
            status.append(
                {
                    "id": tp.id,
                    "standard_status": "excluded",
                    "exclusion_reason": "registration_failed",
                    "exclusion_note": failures[sid],
                }
            )
        elif sid in lowres:
            status.append(
                {
                    "id": tp.id,
                    "standard_status": "excluded",
                    "exclusion_reason": "low_resolution",
                    "exclusion_note": "acquired below the standardized subset's minimum resolution",
                }
            )
    insert_all(s, Image, images)
    insert_all(s, LesionMask, masks)
    if status:
        s.execute(update(Timepoint), status)
