"""DICOM deliveries: series read with pydicom, one T1 chosen per session by readable rules,
converted with dcm2niix, re-encoded by the tool.

Layout: ``SUBJECT/SESSION/…`` (files at any depth below the session folder). Every file under a
session folder that is not a mask named by MAP.csv must be a DICOM file (``INTK008`` otherwise); one
subject folder holds one patient (``INTK009``).

Selection rules, in order (the first that applies gives the reason a series is skipped):

1. not MR (``Modality``);
2. a localizer (``ImageType`` LOCALIZER, slices in more than one orientation, or a description such as
   localizer/scout/survey/pilot/3-plane);
3. derived (``ImageType`` DERIVED or SECONDARY: reformats, maps, projections);
4. 2-D (``MRAcquisitionType`` 2D, or none and fewer than 32 slices);
5. not T1-weighted (a description naming T2/FLAIR/DWI/PD/SWI/BOLD, or none naming T1/MPRAGE/SPGR/
   BRAVO/TFE/FLASH/MP2RAGE and TE > 10 ms or TR > 3000 ms).

What remains are T1 candidates. One is taken; none is ``INTK007`` and several ``INTK006``, unless
MAP.csv's t1 row chooses: ``series`` (SeriesNumber, or the exact SeriesDescription) or ``path`` (the
folder holding the series). A skip row's path leaves a series out with its reason. ``--plan`` prints
every decision. Enhanced (multi-frame) objects are one series of ``NumberOfFrames`` slices.

Only these header values leave this module: the session's order (study date and time, used to number
new sessions, then dropped) and the allow-listed acquisition parameters of :data:`build.SIDECAR_ALLOW`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AtlasError
from .build import Loaded, ScanIn, allowed_sidecar
from .delivery import is_dicom
from .mapfile import SessionMap

T1_WORDS = re.compile(r"t1|mprage|mp-rage|mp2rage|spgr|bravo|tfe|flash|ir-fspgr|ir_fspgr", re.I)
OTHER_WORDS = re.compile(r"t2|flair|dwi|diff|\bpd\b|swi|bold|epi|tof|adc", re.I)
LOCALIZER_WORDS = re.compile(r"locali[sz]er|scout|survey|pilot|3-?plane|tri-?plane|aahead|\bloc\b", re.I)
MIN_SLICES = 32
ENHANCED = {"1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.4"}  # Enhanced / Legacy converted MR
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}


@dataclass
class Series:
    uid: str
    files: list[str] = field(default_factory=list)
    frames: int = 0
    number: str = ""
    description: str = ""
    image_type: tuple = ()
    modality: str = ""
    acquisition: str = ""
    te: float | None = None
    tr: float | None = None
    order: tuple = ()
    scanner: dict = field(default_factory=dict)
    reason: str | None = None  # why it is skipped (None: a T1 candidate)
    orientations: set = field(default_factory=set)


def dcm2niix_path() -> str:
    try:
        import dcm2niix

        p = Path(dcm2niix.bin)
        if p.is_file():
            return str(p)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("dcm2niix")
    if not found:
        raise AtlasError("INTK014", "dcm2niix is not installed (pip install dcm2niix)")
    return found


def _text(v) -> str:
    return "" if v is None else str(v).strip()


def _float(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# The attributes intake reads (everything else in a header is skipped unread).
TAGS = (
    "PatientID",
    "PatientName",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "ProtocolName",
    "ImageType",
    "Modality",
    "MRAcquisitionType",
    "EchoTime",
    "RepetitionTime",
    "SharedFunctionalGroupsSequence",
    "StudyDate",
    "StudyTime",
    "Manufacturer",
    "ManufacturerModelName",
    "MagneticFieldStrength",
    "ImageOrientationPatient",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "SamplesPerPixel",
)


def read_instance(root: Path, rel: str):
    """The header of one DICOM file (pixel data located, not read); corrupt files are INTK008."""
    import struct

    import pydicom
    from pydicom.errors import InvalidDicomError

    path = root / rel
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=list(TAGS))
            pos = fp.tell()
            head = fp.read(12)
        size = os.path.getsize(path)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise AtlasError("INTK008", f"not a readable DICOM file ({type(e).__name__}: {e})", path=rel) from None
    little = getattr(ds, "is_little_endian", True) is not False
    end = "<" if little else ">"
    if len(head) < 8 or struct.unpack(end + "HH", head[:4]) != (0x7FE0, 0x0010):
        raise AtlasError("INTK008", "no pixel data", path=rel)
    implicit = getattr(ds, "is_implicit_VR", False)
    if implicit:
        length, start = struct.unpack(end + "I", head[4:8])[0], pos + 8
    elif len(head) == 12:
        length, start = struct.unpack(end + "I", head[8:12])[0], pos + 12
    else:
        raise AtlasError("INTK008", "file cut short in the pixel data element", path=rel)
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if not rows or not cols:
        raise AtlasError("INTK008", "no image size (Rows/Columns)", path=rel)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    need = rows * cols * frames * int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.get("BitsAllocated", 16) or 16) // 8
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if length != 0xFFFFFFFF:
        if size < start + length:
            raise AtlasError(
                "INTK008", f"file cut short: pixel data ends at byte {start + length}, file has {size}", path=rel
            )
        if ts in UNCOMPRESSED and length < need:
            raise AtlasError("INTK008", f"pixel data shorter than the image ({length} of {need} bytes)", path=rel)
    return ds


def _read_chunk(args):
    root, rels = args
    out = []
    for rel in rels:
        try:
            out.append((rel, _facts(read_instance(Path(root), rel)), None))
        except AtlasError as e:
            return out + [(rel, None, (e.code, str(e.args[0])))]
    return out


def _facts(ds) -> dict:
    """What intake keeps of one header (plain values: they cross process boundaries)."""
    te, tr = _float(ds.get("EchoTime")), _float(ds.get("RepetitionTime"))
    if te is None and "SharedFunctionalGroupsSequence" in ds:  # enhanced: timing in the groups
        te, tr = _enhanced_timing(ds)
    iop = ds.get("ImageOrientationPatient")
    return {
        "patient": _text(ds.get("PatientID")) or _text(ds.get("PatientName")),
        "uid": _text(ds.get("SeriesInstanceUID")),
        "number": _text(ds.get("SeriesNumber")),
        "description": _text(ds.get("SeriesDescription")) or _text(ds.get("ProtocolName")),
        "image_type": tuple(str(t) for t in (ds.get("ImageType") or ())),
        "modality": _text(ds.get("Modality")),
        "acquisition": _text(ds.get("MRAcquisitionType")),
        "te": te,
        "tr": tr,
        "order": (_text(ds.get("StudyDate")), _text(ds.get("StudyTime")), _text(ds.get("SeriesNumber"))),
        "scanner": {
            "manufacturer": _text(ds.get("Manufacturer")),
            "model": _text(ds.get("ManufacturerModelName")),
            "field_strength": _text(ds.get("MagneticFieldStrength")),
        },
        "iop": None if iop is None else tuple(round(float(x), 3) for x in iop),
        "frames": int(ds.get("NumberOfFrames", 1) or 1),
    }


def read_headers(root: Path, rels: list[str], workers: int | None = None) -> dict[str, dict]:
    """The facts of every file, read by a pool of processes; the first bad file (in path order) refuses."""
    workers = workers or len(os.sched_getaffinity(0))
    size = max(1, min(256, len(rels) // (workers * 4) or 1))
    chunks = [(str(root), rels[i : i + size]) for i in range(0, len(rels), size)]
    if workers <= 1 or len(chunks) <= 1:
        results = [_read_chunk(c) for c in chunks]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as ex:
            results = list(ex.map(_read_chunk, chunks))
    out = {}
    for chunk in results:
        for rel, facts, err in chunk:
            if err:
                raise AtlasError(err[0], err[1], path=rel)
            out[rel] = facts
    return out


def classify(s: Series, n_slices: int) -> str | None:
    kinds = {t.upper() for t in s.image_type}
    desc = s.description
    if s.modality and s.modality != "MR":
        return f"not MR (modality {s.modality})"
    if "LOCALIZER" in kinds or LOCALIZER_WORDS.search(desc):
        return "localizer"
    if kinds & {"DERIVED", "SECONDARY"}:
        return "derived (ImageType " + "\\".join(s.image_type) + ")"
    if len(s.orientations) > 1:
        return f"localizer (slices in {len(s.orientations)} orientations)"
    if s.acquisition.upper() == "2D":
        return "2-D acquisition (MRAcquisitionType 2D)"
    if not s.acquisition and n_slices < MIN_SLICES:
        return f"2-D (no MRAcquisitionType and {n_slices} slice(s), fewer than {MIN_SLICES})"
    if OTHER_WORDS.search(desc) and not T1_WORDS.search(desc):
        return "not T1-weighted (series description)"
    if not T1_WORDS.search(desc) and ((s.te or 0) > 10 or (s.tr or 0) > 3000):
        return f"not T1-weighted (TE {s.te} ms, TR {s.tr} ms)"
    return None


def _series_of(facts: dict[str, dict], rels: list[str], subject: str) -> list[Series]:
    by_uid: dict[str, Series] = {}
    patients: dict[str, str] = {}
    for rel in rels:
        f = facts[rel]
        patients.setdefault(f["patient"], rel)
        if len(patients) > 1:
            raise AtlasError(
                "INTK009",
                f"files of {len(patients)} patients in subject folder {subject}/ "
                f"(another patient first seen in {next(iter(patients.values()))})",
                path=rel,
            )
        uid = f["uid"] or f"{f['number']}:{Path(rel).parent}"
        s = by_uid.get(uid)
        if s is None:
            s = by_uid[uid] = Series(
                uid,
                number=f["number"],
                description=f["description"],
                image_type=f["image_type"],
                modality=f["modality"],
                acquisition=f["acquisition"],
                te=f["te"],
                tr=f["tr"],
                order=f["order"],
                scanner=f["scanner"],
            )
        if f["iop"] is not None:
            s.orientations.add(f["iop"])
        s.files.append(rel)
        s.frames += f["frames"]
    return sorted(by_uid.values(), key=lambda s: (s.order, s.uid))


def _enhanced_timing(ds) -> tuple[float | None, float | None]:
    te = tr = None
    try:
        shared = ds.SharedFunctionalGroupsSequence[0]
        if "MREchoSequence" in shared:
            te = _float(shared.MREchoSequence[0].get("EffectiveEchoTime"))
        if "MRTimingAndRelatedParametersSequence" in shared:
            tr = _float(shared.MRTimingAndRelatedParametersSequence[0].get("RepetitionTime"))
    except (AttributeError, IndexError, KeyError):
        pass
    return te, tr


def _choose(series: list[Series], sm: SessionMap, where: str) -> Series:
    row = sm.t1
    assert row is not None  # mapfile.read refuses a session without a t1 row
    want_series, want_path = row.get("series"), row.get("path")
    skipped_paths = [(r.get("path"), r.get("reason") or "skip row in MAP.csv") for r in sm.skips]
    for s in series:
        for p, why in skipped_paths:
            if all(f == p or f.startswith(p.rstrip("/") + "/") for f in s.files):
                s.reason = f"MAP.csv line {[r.line for r in sm.skips if r.get('path') == p][0]}: {why}"
    if want_series or want_path:
        picked = [
            s
            for s in series
            if (not want_series or want_series in (s.number, s.description))
            and (not want_path or all(f.startswith(want_path.rstrip("/") + "/") or f == want_path for f in s.files))
        ]
        if len(picked) != 1:
            raise AtlasError(
                "INTK006" if picked else "INTK004",
                f"MAP.csv line {row.line} (series {want_series!r}, path "
                f"{want_path!r}) matches {len(picked)} series in {where}",
                path=where,
            )
        picked[0].reason = None
        for s in series:
            if s is not picked[0] and s.reason is None:
                s.reason = f"not chosen (MAP.csv line {row.line} chose series {picked[0].number})"
        return picked[0]
    cands = [s for s in series if s.reason is None]
    if not cands:
        why = "; ".join(f"series {s.number}: {s.reason}" for s in series)
        raise AtlasError("INTK007", f"no T1 candidate in {where} ({why})", path=where)
    if len(cands) > 1:
        names = ", ".join(f"{s.number} ({s.frames} slices, in {Path(s.files[0]).parent})" for s in cands)
        raise AtlasError(
            "INTK006",
            f"{len(cands)} T1 candidates in {where}: series {names}; choose one with the "
            f"t1 row's `series` or `path` (MAP.csv line {row.line})",
            path=where,
        )
    return cands[0]


def plan(root: Path, files: list[str], sessions: dict[tuple[str, str], SessionMap], map_rel: str | None):
    exe = dcm2niix_path()
    mapped = {r.get("path") for sm in sessions.values() for r in sm.lesions}
    for sm in sessions.values():
        for r in sm.lesions:
            if r.get("path") not in set(files):
                raise AtlasError(
                    "INTK004",
                    f"MAP.csv line {r.line} (subject {sm.subject!r} session {sm.session!r}): "
                    "no such file in the delivery",
                    path=r.get("path"),
                )
    by_session: dict[tuple[str, str], list[str]] = {}
    for rel in files:
        if rel == map_rel or rel in mapped:
            continue
        parts = rel.split("/")
        if len(parts) < 3:
            raise AtlasError("INTK005", "a file outside SUBJECT/SESSION/ folders that no MAP.csv row names", path=rel)
        key = (parts[0], parts[1])
        if key not in sessions:
            raise AtlasError("INTK005", f"session folder {parts[0]}/{parts[1]}/ has no row in MAP.csv", path=rel)
        by_session.setdefault(key, []).append(rel)
    for key, sm in sessions.items():
        if key not in by_session:
            assert sm.t1 is not None  # mapfile.read refuses a session without a t1 row
            raise AtlasError(
                "INTK004",
                f"MAP.csv line {sm.t1.line}: subject {key[0]!r} session {key[1]!r} has no "
                f"DICOM files (no folder {key[0]}/{key[1]}/)",
                path="MAP.csv",
            )
    for rel in (f for rels in by_session.values() for f in rels):
        if not is_dicom(root / rel) and Path(rel).name.upper() != "DICOMDIR":
            raise AtlasError("INTK008", "not a DICOM file (no DICM preamble) in a session folder", path=rel)
    scans: list[ScanIn] = []
    skipped: list[dict] = []
    subjects: dict[str, list[str]] = {}
    for (subject, _), rels in by_session.items():
        subjects.setdefault(subject, []).extend(r for r in rels if Path(r).name.upper() != "DICOMDIR")
    facts = read_headers(root, sorted(r for rels in subjects.values() for r in rels))
    series_by_subject = {s: _series_of(facts, rels, s) for s, rels in sorted(subjects.items())}
    for (subject, session), sm in sessions.items():
        assert sm.t1 is not None  # mapfile.read refuses a session without a t1 row
        where = f"{subject}/{session}"
        series = [s for s in series_by_subject[subject] if s.files[0].startswith(where + "/")]
        for s in series:
            s.reason = classify(s, s.frames)
        chosen = _choose(series, sm, where)
        skipped.extend(
            {"subject": subject, "session": session, "series": s.number, "reason": s.reason}
            for s in series
            if s is not chosen
        )
        scans.append(
            ScanIn(
                subject,
                session,
                chosen.order,
                f"{where} series {chosen.number}",
                sm.t1,
                _loader(root, exe, chosen, sm),
                chosen.scanner,
            )
        )
    return scans, skipped


def convert(root: Path, exe: str, s: Series, where: str):
    """dcm2niix on one series (links to its files in a private folder); (image, allow-listed sidecar)."""
    import nibabel as nib

    with tempfile.TemporaryDirectory(prefix="atlas-intake-") as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        dst.mkdir()
        for n, rel in enumerate(s.files):
            os.symlink((root / rel).absolute(), src / f"{n:06d}.dcm")
        cmd = [exe, "-z", "n", "-b", "y", "-ba", "y", "-f", "series", "-o", str(dst), "-w", "1", "-v", "0", str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        images = sorted(dst.glob("*.nii"))
        if proc.returncode != 0 or len(images) != 1:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise AtlasError(
                "INTK008",
                f"dcm2niix could not make one image of series {s.number} (exit "
                f"{proc.returncode}, {len(images)} image(s)) {tail[0][:200]}",
                path=where,
            )
        src_img = nib.load(images[0], mmap=False)
        assert isinstance(src_img, nib.Nifti1Image)  # a .nii: NIfTI-1 (or its subclass NIfTI-2)
        data = np.array(src_img.dataobj.get_unscaled() if _unscaled(src_img) else src_img.get_fdata(dtype=np.float32))  # type: ignore[attr-defined]
        img = nib.Nifti1Image(data, src_img.affine)
        side = images[0].with_suffix(".json")
        obj = {}
        if side.is_file():
            try:
                obj = json.loads(side.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                obj = {}
        return img, allowed_sidecar(obj if isinstance(obj, dict) else {})


def _unscaled(img) -> bool:
    slope, inter = img.dataobj.slope, img.dataobj.inter
    return (slope is None or np.isnan(slope) or slope == 1.0) and (inter is None or np.isnan(inter) or inter == 0.0)


def _loader(root: Path, exe: str, s: Series, sm: SessionMap):
    from .nifti import load_lesions

    def load() -> Loaded:
        img, acq = convert(root, exe, s, f"{sm.subject}/{sm.session}")
        return Loaded(img, load_lesions(root, sm.lesions, img), acq)

    return load


def summary(skipped: list[dict]) -> Counter:
    return Counter(d["reason"].split(" (")[0] for d in skipped)
