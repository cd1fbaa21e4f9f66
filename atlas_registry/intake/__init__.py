"""``atlas-registry intake``: a site's delivery as it arrives → an ATLAS native cohort.

Kinds of delivery (detected in this order): a BIDS dataset (``dataset_description.json`` at the top,
:mod:`.bids`), DICOM series in ``SUBJECT/SESSION/`` folders (:mod:`.dicom`), NIfTI files under the
site's own names (:mod:`.nifti`). MAP.csv (``--map``, or ``MAP.csv`` at the top of the delivery) maps
the site's subjects and sessions and carries what no image holds (the neuroradiologist's reading,
tracer and reviewer). See docs/intake.md.

All or nothing: the cohort is written into a temporary folder beside ``--out``, validated there with
the validators of ``validate`` (any error refuses the delivery: ``INTK015``), and only then renamed
into place while the new crosswalk rows are committed, under the registry's write lock.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import metadata
from ..config import Workspace
from ..errors import AtlasError, UsageError
from . import crosswalk, delivery, mapfile

Progress = Callable[[int, int, str], None]
_COHORT = re.compile(r"^c\d{4}$")


@dataclass
class IntakeResult:
    kind: str
    cohort: str
    out: Path
    scans: list[str]
    new_subjects: int
    new_sessions: int
    skipped: list[dict] = field(default_factory=list)  # DICOM series left out, with the reason
    warnings: int = 0
    ids: dict = field(default_factory=dict, repr=False)  # (site subject, session) -> scan id; never printed


def detect(root: Path, files: list[str]) -> str:
    if "dataset_description.json" in files:
        return "bids"
    for rel in files:
        if rel != delivery.MAP_NAME and not rel.lower().endswith((".nii", ".nii.gz", ".voi", ".json", ".csv")):
            if delivery.is_dicom(root / rel):
                return "dicom"
    return "nifti"


def check_registry(ws: Workspace) -> None:
    from .. import db

    if db.sqlite_file_missing(ws):
        raise AtlasError(
            "INTK012",
            "no registry here: intake keeps its crosswalk in the registry (run `atlas-registry init` first)",
            path=str(ws.home),
        )
    if db.current_revision(ws) != db.head_revision():
        raise AtlasError("INTK012", "the registry is not at the newest schema (run `atlas-registry init`)")


def _prepare_out(out: Path) -> Path:
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink() or any(out.iterdir()):
            raise AtlasError("INTK011", "the output folder exists and is not empty", path=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.intake-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def plan(root: Path, map_path: Path | None = None, ws: Workspace | None = None):
    """(kind, scans, skipped) of a delivery: what intake would write, before any number is assigned."""
    root = Path(root)
    files = delivery.files(root)
    map_rel = None
    if map_path is None and delivery.MAP_NAME in files:
        map_path, map_rel = root / delivery.MAP_NAME, delivery.MAP_NAME
    elif map_path is not None:
        try:
            rel = Path(map_path).resolve().relative_to(root.resolve()).as_posix()
            map_rel = rel if rel in files else None
        except ValueError:
            pass
    kind = detect(root, [f for f in files if f != map_rel])
    if map_path is None:
        raise AtlasError(
            "INTK001", "no MAP.csv (give --map, or put MAP.csv at the top of the delivery)", path=str(root)
        )
    sessions = mapfile.read(Path(map_path))
    if kind in ("dicom", "bids"):
        try:
            source = importlib.import_module(f"{__name__}.{kind}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{kind}":
                raise
            raise AtlasError(
                "INTK014", f"{kind.upper()} deliveries are not supported by this version", path=str(root)
            ) from None
    if kind == "dicom":
        dicom = source

        scans, skipped = dicom.plan(root, files, sessions, map_rel)
    elif kind == "bids":
        bids = source
        scans, skipped = bids.plan(root, files, sessions, map_rel), []
    else:
        from . import nifti

        scans, skipped = nifti.plan(root, files, sessions, map_rel), []
    if not scans:
        raise AtlasError("INTK001", "the delivery holds no scan", path=str(root))
    return kind, scans, skipped


def _order(scans) -> list[tuple[str, str]]:
    return [(s.subject, s.session) for s in sorted(scans, key=lambda s: (s.subject, s.order, s.session))]


def run(
    delivery_root,
    cohort: str,
    out,
    ws: Workspace,
    map_path=None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IntakeResult:
    """Intake of one delivery into a new native root ``out`` (``out/<cohort>/…`` and the metadata)."""
    from .. import db
    from ..validate.runner import validate_path
    from .build import manufacturer, write_scan

    if not _COHORT.match(cohort or ""):
        raise UsageError("INTK003", f"cohort {cohort!r} is not a cohort code cXXXX")
    out = Path(out).absolute()
    check_registry(ws)
    kind, scans, skipped = plan(Path(delivery_root), Path(map_path) if map_path else None, ws)
    key = crosswalk.key(ws)
    with db.session(ws) as sess:
        first = crosswalk.assign(sess, key, cohort, _order(scans))
    tmp = _prepare_out(out)
    try:
        scan_rows: list[dict] = []
        lesion_rows: list[dict] = []
        zooms: tuple[float, float, float] | None = None
        ordered = sorted(scans, key=lambda s: first.scan_id(s.subject, s.session))
        if progress:
            progress(0, len(ordered) + 1, "")
        threads = max(1, workers or len(os.sched_getaffinity(0)))

        def one(s):  # converters, zlib and numpy release the GIL: threads overlap the scans
            return write_scan(tmp, first.scan_id(s.subject, s.session), s, s.load())

        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [pool.submit(one, s) for s in ordered]
            try:
                for n, (s, fut) in enumerate(zip(ordered, futures, strict=False), 1):
                    w = fut.result()  # in scan order: the same refusal whatever finishes first
                    scan_rows.append(w.scan_row)
                    lesion_rows.extend(w.lesion_rows)
                    zooms = zooms or w.zooms
                    if progress:
                        progress(n, len(ordered) + 1, first.scan_id(s.subject, s.session))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        assert zooms is not None  # plan refuses a delivery without scans (INTK001)
        scanner: dict = next((s.scanner for s in ordered if s.scanner), {})
        missing = [k for k in ("manufacturer", "model", "field_strength") if not scanner.get(k)]
        if missing:
            raise AtlasError(
                "INTK003",
                f"no {', '.join(missing)} for the cohort's scanner (MAP.csv t1 row columns; "
                "DICOM and BIDS deliveries take them from the headers)",
                path="MAP.csv",
            )
        scanner_row = {
            "Cohort": cohort,
            "Field Strength (T)": float(scanner["field_strength"]),
            "Manufacturer": manufacturer(scanner["manufacturer"]),
            "Model": scanner["model"],
            "Voxel Size X (mm)": round(zooms[0], 4),
            "Voxel Size Y (mm)": round(zooms[1], 4),
            "Voxel Size Z (mm)": round(zooms[2], 4),
        }
        metadata.write_metadata(tmp, {"scans": scan_rows, "lesions": lesion_rows, "scanners": [scanner_row]})
        result = validate_path(tmp, workers=workers)
        errors = [f for f in result.report.findings if f.severity == "error"]
        if errors:
            f = errors[0]
            raise AtlasError(
                "INTK015",
                f"{f.code} {f.message}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                path=f.path,
            )
        warnings = sum(1 for f in result.report.findings if f.severity == "warning")
        with db.session(ws) as sess:
            db.write_lock(sess)
            again = crosswalk.assign(sess, key, cohort, _order(scans))
            if (again.numbers, again.timepoints) != (first.numbers, first.timepoints):
                raise AtlasError(
                    "INTK012",
                    "the registry's crosswalk changed during this intake (another intake of "
                    f"cohort {cohort}?): run it again",
                )
            crosswalk.record(sess, again)
            if out.exists():
                out.rmdir()  # empty, checked above
            os.rename(tmp, out)
            try:
                sess.commit()
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)  # the rows did not land: neither does the cohort
                raise
        if progress:
            progress(len(ordered) + 1, len(ordered) + 1, "validated")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return IntakeResult(
        kind,
        cohort,
        out,
        sorted(first.scan_id(s.subject, s.session) for s in scans),
        len(first.new_subjects),
        len(first.new_sessions),
        skipped,
        warnings,
        {(s.subject, s.session): first.scan_id(s.subject, s.session) for s in scans},
    )
