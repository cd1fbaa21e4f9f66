"""Run every validator over a root: one pass over the files, in parallel per scan folder.

Each file is read once, hashed (SHA-256 of the bytes as found) and decompressed once
(:func:`niio.decode`); the checks and the metrics ingest needs are computed from that one array,
which is dropped before the next file (masks survive only as bounding-box crops until their scan is
done). Scan folders are independent, so they run in a process pool; findings are sorted, so the
report does not depend on the order the workers finish in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import canonical
from ..findings import Report
from ..naming import STANDARD_SPACE
from ..pool import cpu_count, process_pool
from ..records import FileRecord, ImageRecord, MaskRecord, ScanRecord, ValidationResult
from . import deid, images, inventory, rules, sidecars
from . import masks as vmasks
from . import metadata as vmeta
from . import naming as vnaming


@dataclass
class ScanOutcome:
    scan_id: str
    relpath: str
    record: ScanRecord
    findings: list = field(default_factory=list)
    files: int = 0
    field_strengths: dict[str, object] = field(default_factory=dict)  # sidecar relpath -> value


@dataclass
class _Mask:
    """What a scan keeps of one decoded mask until its scan-level checks are done."""

    relpath: str
    shape: tuple
    affine: np.ndarray
    zooms: tuple
    crop: vmasks.Crop | None
    metrics: dict | None = None


class _ScanCheck:
    """The checks of one scan folder (runs in a worker process)."""

    def __init__(
        self,
        root: Path,
        kind: str,
        folder: inventory.ScanFolder,
        scrub: bool,
        spool: Path | None = None,
        stored_form: bool = True,
    ):
        self.root, self.kind, self.folder, self.scrub, self.spool = root, kind, folder, scrub, spool
        self.stored_form = stored_form or spool is not None
        self.sid = folder.scan_id
        self.out = ScanOutcome(folder.scan_id, folder.relpath, ScanRecord(folder.scan_id))
        self.t1: tuple[tuple[int, ...], np.ndarray] | None = None  # (shape, affine) of the decoded T1
        self.masks: dict[str, dict[int, _Mask]] = {}

    def add(self, code: str, message: str, path: str | None = None) -> None:
        self.out.findings.append(rules.make(code, message, subject=self.sid, path=path or self.folder.relpath))

    def run(self) -> ScanOutcome:
        order = {"t1": 0, "lesion": 1, "sidecar": 2}
        for f in sorted(self.folder.files, key=lambda f: (order[f.kind], f.lesion, f.variant or "", f.relpath)):
            self.out.files += 1
            data = self.read(f.relpath, limit=sidecars.MAX_BYTES + 1 if f.kind == "sidecar" else None)
            if data is None:
                continue
            sha = hashlib.sha256(data).hexdigest()
            base = dict(relpath=f.relpath, sha256=sha, size=len(data), source_sha256=sha)
            if f.kind == "sidecar":
                self.sidecar(data, base)
            else:
                self.nifti(f, data, base)
        self.scan_checks()
        return self.out

    def read(self, relpath: str, limit: int | None = None) -> bytes | None:
        """The file's bytes (at most ``limit`` of them when given), or None after a finding: IMG001
        (unreadable, empty, not a regular file) or IMG014 (larger than any image may be)."""
        from ..store import read_regular

        try:
            if limit is None:
                data = read_regular(self.root / relpath, canonical.MAX_FILE_BYTES)
            else:
                data = read_regular(self.root / relpath, limit, truncate=True)
        except OSError as e:
            self.add("IMG001", f"cannot read file ({e.strerror or e})", relpath)
            return None
        except ValueError as e:
            self.add("IMG014", f"file is too large to be an image ({e})", relpath)
            return None
        if not data:
            self.add("IMG001", "file is empty", relpath)
            return None
        return data

    def sidecar(self, data: bytes, base: dict) -> None:
        rel = base["relpath"]
        schema = sidecars.STANDARD_SCHEMA if self.kind == "standard" else sidecars.SCHEMA
        obj, found = sidecars.read(data, relpath=rel, subject=self.sid, schema=schema)
        self.out.findings.extend(found)
        if obj is None:
            return
        if "MagneticFieldStrength" in obj:
            self.out.field_strengths[rel] = obj["MagneticFieldStrength"]
        try:
            _canonical(base, canonical.encode_json(obj), self.spool)
        except ValueError as e:  # NaN or infinity: not JSON (RFC 8259), though Python's parser reads it
            self.add("IMG009", f"sidecar holds a value JSON does not allow ({e})", rel)
            return
        self.out.record.sidecars.append(FileRecord(**base))

    def nifti(self, f: inventory.InvFile, data: bytes, base: dict) -> None:
        rel, sid = f.relpath, self.sid
        img, raw, found = images.decode(data, rel, sid)
        self.out.findings.extend(found)
        if img is None:
            return
        hdr = img.header
        is_mask = f.kind == "lesion"
        if data[:2] == b"\x1f\x8b":
            fname = canonical.gzip_header(data, rel)[1]
            self.out.findings.extend(deid.container_findings(fname, relpath=rel, subject=sid, scrub=self.scrub))
        self.out.findings.extend(
            deid.header_findings(
                hdr.binaryblock,
                [int(e.get_code()) for e in hdr.extensions],
                images.stored(img)[2],
                relpath=rel,
                subject=sid,
                mask=is_mask,
                scrub=self.scrub,
            )
        )
        geometry = images.geometry_findings(img, rel, sid)
        self.out.findings.extend(geometry)
        try:
            arr = images.unscaled(img)
        except Exception as e:  # noqa: BLE001 - nibabel's errors for unreadable voxel data vary
            self.add("IMG001", f"voxel data cannot be read ({type(e).__name__}: {e})", rel)
            return
        self.out.findings.extend(images.finite_findings(img, arr, rel, sid))
        if arr.ndim != 3:
            return  # IMG002 already said so; nothing below makes sense on a 4-D array
        if self.kind == "standard":
            self.out.findings.extend(images.template_findings(img, rel, sid))
        encoded = canonical.encode_image(img, raw, voi=rel.endswith(".voi"), compress=self.stored_form)
        _canonical(base, encoded, self.spool)
        del raw
        if is_mask:
            self.mask(f, data, img, arr, base)
        else:
            self.image(img, arr, base, sound=not geometry)

    def image(self, img, arr, base: dict, sound: bool) -> None:
        standard = self.kind == "standard"
        if standard and sound:
            self.out.findings.extend(deid.face_findings(img, relpath=base["relpath"], subject=self.sid))
        if sound:  # masks are compared with a T1 whose grid is known
            self.t1 = (tuple(arr.shape), np.asarray(img.affine, dtype=float))
        nx, ny, nz = (int(n) for n in arr.shape)  # 3-D (nifti returned on any other)
        self.out.record.t1 = ImageRecord(
            **base,
            shape=(nx, ny, nz),
            zooms=images.zooms_of(img),
            dtype=str(arr.dtype),
            affine=np.asarray(img.affine, dtype=float).round(6).tolist(),
            defaced=standard and sound,
        )  # the face check ran (and any finding of it stops ingest)

    def mask(self, f: inventory.InvFile, data: bytes, img, arr, base: dict) -> None:
        rel, sid = f.relpath, self.sid
        assert f.variant is not None  # every lesion file has its variant (inventory)
        c = vmasks.crop(arr)
        self.out.findings.extend(vmasks.value_findings(img, arr, c, rel, sid))
        if rel.endswith(".voi"):
            self.out.findings.extend(vmasks.voi_findings(data, img, rel, sid))
        affine = np.asarray(img.affine, dtype=float)
        if self.t1 is not None:
            self.out.findings.extend(vmasks.grid_findings(arr.shape, affine, *self.t1, rel, sid))
        m = _Mask(rel, tuple(arr.shape), affine, images.zooms_of(img), c)
        self.masks.setdefault(f.variant, {})[f.lesion] = m
        if c is None:
            return
        m.metrics = self.reuse_metrics(f.lesion, m) or vmasks.metrics(c, affine)
        mm = m.metrics
        cx, cy, cz = (float(v) for v in mm["centroid_mm"])
        if f.variant == "raw_voi":
            voxel_mm3 = float(np.prod(img.header.get_zooms()[:3]))
            self.out.findings.extend(vmasks.parts_findings(c, int(mm["n_components"]), voxel_mm3, rel, sid))
        self.out.record.lesions.setdefault(f.lesion, {})[f.variant] = MaskRecord(
            **base,
            variant=f.variant,
            space=STANDARD_SPACE if self.kind == "standard" else "native",
            voxel_count=int(mm["voxel_count"]),
            volume_mm3=float(mm["volume_mm3"]),
            centroid_mm=(cx, cy, cz),
            n_components=int(mm["n_components"]),
            hemisphere=mm["hemisphere"],
            location=mm["location"],
        )

    def reuse_metrics(self, lesion: int, m: _Mask) -> dict | None:
        """The metrics of an identical mask of the same lesion (smoothed VOI = smoothed NIfTI)."""
        for other in self.masks.values():
            o = other.get(lesion)
            if o is not None and o is not m and o.metrics and _same_grid(o, m) and vmasks.equal(o.crop, m.crop):
                return o.metrics
        return None

    def scan_checks(self) -> None:
        """Overlap between lesions, smoothed against raw, smoothed VOI against smoothed NIfTI."""
        for variant in ("raw_voi", "smooth_nii"):
            crops = {n: m.crop for n, m in self.masks.get(variant, {}).items() if m.crop is not None}
            paths = {n: m.relpath for n, m in self.masks.get(variant, {}).items()}
            self.out.findings.extend(vmasks.overlap_findings(crops, variant, paths, self.sid))
        raws = self.masks.get("raw_voi", {})
        nii, voi = self.masks.get("smooth_nii", {}), self.masks.get("smooth_voi", {})
        for n, raw in sorted(raws.items()):
            if raw.crop is None:
                continue
            smoothed = [s for s in (nii.get(n), voi.get(n)) if s is not None and _same_grid(raw, s)]
            if len(smoothed) == 2 and not vmasks.equal(smoothed[0].crop, smoothed[1].crop):
                d = vmasks.dice(smoothed[0].crop, smoothed[1].crop)
                self.add(
                    "MASK009",
                    f"smoothed VOI and smoothed NIfTI of lesion {n} differ (Dice {d:.3f})",
                    smoothed[1].relpath,
                )
            elif len(smoothed) == 2:
                smoothed = smoothed[:1]
            for s in smoothed:
                self.out.findings.extend(vmasks.smoothing_findings(raw.crop, s.crop, raw.zooms, s.relpath, self.sid))


def _canonical(base: dict, data: bytes, spool: Path | None) -> None:
    """Record the SHA-256 and size of the canonical form the store will keep (:mod:`canonical`), or
    of its uncompressed NIfTI bytes in a validation that stores nothing (``stored_form=False``);
    with a ``spool`` folder (ingest), also leave the bytes there for ingest to move into the store."""
    base["sha256"], base["size"] = hashlib.sha256(data).hexdigest(), len(data)
    if spool is not None and not (spool / base["sha256"]).exists():
        from ..store import atomic_write

        atomic_write(spool / base["sha256"], data, fsync=False)


def _same_grid(a: _Mask, b: _Mask) -> bool:
    return a.shape == b.shape and np.allclose(a.affine, b.affine, atol=vmasks.AFFINE_TOL)


def check_scan(
    root: Path,
    kind: str,
    folder: inventory.ScanFolder,
    scrub: bool,
    spool: Path | None = None,
    stored_form: bool = True,
) -> ScanOutcome:
    """Every file-level and scan-level check of one scan folder."""
    return _ScanCheck(root, kind, folder, scrub, spool, stored_form).run()


# -- orchestration ----------------------------------------------------------------------------


def _warm() -> None:
    """Build the anatomy tables once, before the pool forks, instead of once per worker."""
    from .. import anatomy

    anatomy.regions()


def _run_scans(
    inv: inventory.Inventory,
    workers: int,
    progress: bool,
    scrub: bool,
    spool: Path | None = None,
    stored_form: bool = True,
) -> list[ScanOutcome]:
    from ..progress import bar as progress_bar

    folders = inv.scans
    total = sum(len(f.files) for f in folders)
    outcomes: list[ScanOutcome] = []
    with progress_bar("validating", total, enabled=progress and total > 0, unit="files") as bar:
        if workers <= 1 or len(folders) <= 1:
            for folder in folders:
                outcomes.append(check_scan(inv.root, inv.kind, folder, scrub, spool, stored_form))
                bar.advance(len(folder.files))
        else:
            from concurrent.futures import as_completed

            _warm()
            ex = process_pool(min(workers, len(folders)))
            try:
                # largest folders first, so that no worker is left with a big one at the end
                order = sorted(folders, key=lambda f: -len(f.files))
                futures = [ex.submit(check_scan, inv.root, inv.kind, f, scrub, spool, stored_form) for f in order]
                for fut in as_completed(futures):
                    outcomes.append(fut.result())
                    bar.advance(outcomes[-1].files)
            except BaseException:  # Ctrl-C or a failing worker: do not wait for the queue to drain
                ex.shutdown(wait=False, cancel_futures=True)
                raise
            ex.shutdown()
    return sorted(outcomes, key=lambda o: (o.scan_id, o.relpath))


def validate_path(
    path: Path,
    *,
    workers: int | None = None,
    progress: bool = False,
    scrub_headers: bool = False,
    metadata: Path | None = None,
    spool: Path | None = None,
    stored_form: bool = True,
) -> ValidationResult:
    """Validate a native root, a cohort folder or a standardized root; writes nothing.

    ``workers``: processes (default: every core). ``progress``: a progress bar on stderr.
    ``scrub_headers``: header text and extensions are reported as info ``scrubbed`` findings
    (the canonical form ingest stores has neither: :mod:`canonical`) instead of errors. ``metadata``: a
    workbook, CSV folder or root to read the metadata from instead of the one beside the scans.
    ``spool``: a folder where the canonical form of every file is left, named by its SHA-256
    (ingest moves them into the store instead of encoding every file a second time).
    ``stored_form=False``: a validation whose records will not be stored (the ``validate`` command)
    hashes each file's canonical NIfTI bytes before gzip, which skips deflating every image; its
    ``FileRecord.sha256`` is then not a store key and must not be given to ingest.
    """
    inv = inventory.build(Path(path))
    report = Report(files=inv.files)
    report.extend(inv.findings)
    result = ValidationResult(root=inv.root, kind=inv.kind, report=report)
    meta = vmeta.load(inv, metadata) if inv.scans else vmeta.Loaded()
    report.extend(meta.findings)
    report.files += meta.files
    result.metadata = meta.records
    result.registration_failures, result.low_resolution = meta.registration_failures, meta.low_resolution
    outcomes = _run_scans(inv, workers or cpu_count(), progress, scrub_headers, spool, stored_form)
    for o in outcomes:
        report.extend(o.findings)
        result.scans.setdefault(o.scan_id, o.record)
    report.extend(_cross_findings(inv, meta, outcomes))
    report.findings = sorted(set(report.findings), key=_finding_key)
    return result


def _finding_key(f):
    return (f.subject or "", f.path or "", f.code, f.severity, f.message)


def _cross_findings(inv: inventory.Inventory, meta: vmeta.Loaded, outcomes: list[ScanOutcome]) -> list:
    """Checks that need both the files and the metadata: order by size, scanner, sheet vs files."""
    out = []
    records = meta.records
    for o in outcomes:
        rec = o.record
        row = records.scans.get(rec.scan_id) if records else None
        chosen = row.primary_chosen_by_neuroradiologist if row else None  # unknown without a row
        if inv.kind == "native":
            out.extend(vnaming.order_findings(rec, o.relpath, primary_chosen=chosen))
        scanner = records.scanners.get(rec.scan_id[:5]) if records else None
        if scanner is None:
            continue
        if inv.kind == "native" and rec.t1 is not None:
            out.extend(images.scanner_findings(rec.scan_id, rec.t1.relpath, rec.t1.zooms, scanner))
        for rel, value in sorted(o.field_strengths.items()):
            out.extend(images.field_findings(rec.scan_id, rel, value, scanner))
    out.extend(vmeta.cross_findings(inv, meta, {o.scan_id: o.record for o in outcomes}))
    out.extend(_duplicate_t1s(outcomes))
    return out


def _duplicate_t1s(outcomes: list[ScanOutcome]) -> list:
    """IMG011: a T1 whose canonical form is another scan's T1's (every scan but the first, in scan order)."""
    first: dict[str, str] = {}
    out = []
    for o in sorted(outcomes, key=lambda o: o.scan_id):
        t1 = o.record.t1
        if t1 is None:
            continue
        if t1.sha256 in first:
            out.append(
                rules.make(
                    "IMG011",
                    f"the same image as the T1 of {first[t1.sha256]} (sha256 {t1.sha256[:12]}): "
                    "one scan under two identifiers?",
                    subject=o.scan_id,
                    path=t1.relpath,
                )
            )
        else:
            first[t1.sha256] = o.scan_id
    return out
