"""Fault injection: a clean synthetic archive broken one way at a time.

Each case copies the trimmed clean dataset (``validate_native`` / ``validate_standard``), breaks
it, runs ``atlas-registry validate --format json`` in-process and asserts the rule code, its
severity and the exit status. The clean copies themselves must validate without a single error.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import assert_valid, write_metadata_tables

from atlas_registry import metadata as md
from atlas_registry import naming, niio
from atlas_registry.cli import main
from atlas_registry.validate.runner import validate_path


def run(path: Path, capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["validate", str(path), "--format", "json", "--workers", "1", *extra])
    report = json.loads(capsys.readouterr().out)
    assert_valid(report, "findings-report.schema.json")
    return code, report


def codes(report: dict, severity: str = "error") -> set[str]:
    return {f["code"] for f in report["findings"] if f["severity"] == severity}


# -- what the breakers work on ------------------------------------------------------------------


@dataclass
class Ids:
    multi: str  # a c0009 scan with the most lesions (at least 2 secondaries when the data has one)
    single: str  # a c0009 scan with one lesion
    low: str  # the c0001 scan (1.5 T)
    lesions: dict  # scan id -> number of lesions


def ids_of(root: Path) -> Ids:
    les = md.read_metadata(root)["lesions"].groupby(md.SCAN_ID).size().to_dict()
    c9 = {k: v for k, v in les.items() if k.startswith("c0009")}
    multi = max(sorted(c9), key=lambda k: c9[k])
    single = min(sorted(c9), key=lambda k: c9[k])
    low = sorted(k for k in les if k.startswith("c0001"))[0]
    return Ids(multi, single, low, les)


def path(root: Path, sid: str, kind: str = "t1", variant: str | None = None, lesion: int = 0) -> Path:
    return root / naming.native_relpath(sid, kind, variant, lesion)


def load(p: Path) -> nib.Nifti1Image:
    return niio.load(p)


def mask_of(p: Path) -> np.ndarray:
    return np.asarray(load(p).dataobj) != 0


def save_t1(p: Path, data, img, **header) -> None:
    out = nib.Nifti1Image(data, img.affine, img.header.copy())
    for k, v in header.items():
        out.header[k] = v
    niio.save_nifti(out, p)


def save_mask(p: Path, mask: np.ndarray, t1: nib.Nifti1Image) -> None:
    """A mask written as the archive writes it: a VOI like MRIcron, or a uint8 NIfTI."""
    if p.name.endswith(".voi"):
        niio.save_voi(mask, t1, p)
    else:
        img = nib.Nifti1Image(mask.astype(np.uint8), t1.affine, t1.header.copy())
        img.set_data_dtype(np.uint8)
        niio.save_nifti(img, p)


def all_variants(root: Path, sid: str, n: int):
    return [path(root, sid, "lesion", v, n) for v in naming.VARIANTS]


def edit(root: Path, fn) -> None:
    frames = md.read_metadata(root)
    fn(frames)
    write_metadata_tables(root, frames)


def set_cell(frames, table: str, sid: str, col: str, value: str, lesion: int | None = None) -> None:
    df = frames[table]
    sel = df[md.SCAN_ID] == sid
    if lesion is not None:
        sel &= df["Lesion"] == str(lesion)
    assert sel.any()
    df.loc[sel, col] = value


# -- breakers: (root, ids) -> None ------------------------------------------------------------------


def phi_voi_descrip(root, ids):
    p = path(root, ids.single, "lesion", "raw_voi")
    t1 = load(path(root, ids.single))
    t1.header["descrip"] = b"John Doe 1950-02-03"
    niio.save_voi(mask_of(p), t1, p)  # MRIcron copies the T1 header into the VOI


def dicom_extension(root, ids):
    p = path(root, ids.single)
    img = load(p)
    img.header.extensions.append(nib.nifti1.Nifti1Extension(2, b"(0010,0010) PN Doe^John\0\0\0\0\0\0\0\0\0"))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header), str(p).replace(".gz", ""))
    Path(str(p).replace(".gz", "")).rename(p.with_suffix(".tmp"))
    p.write_bytes(gzip.compress(p.with_suffix(".tmp").read_bytes()))
    p.with_suffix(".tmp").unlink()


def truncated_gzip(root, ids):
    p = path(root, ids.multi, "lesion", "smooth_nii")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def four_d(root, ids):
    p = path(root, ids.single)
    img = load(p)
    data = np.asarray(img.dataobj)
    niio.save_nifti(nib.Nifti1Image(np.stack([data, data], axis=-1), img.affine, img.header.copy()), p)


def shifted_grid(root, ids):
    p = path(root, ids.low, "lesion", "smooth_nii")
    img = load(p)
    aff = img.affine.copy()
    aff[:3, 3] += (4.0, 0.0, 0.0)
    out = nib.Nifti1Image(np.asarray(img.dataobj), aff, img.header.copy())
    out.set_sform(aff, 1)
    out.set_qform(aff, 1)
    niio.save_nifti(out, p)


def wrong_shape(root, ids):
    p = path(root, ids.single, "lesion", "smooth_nii")
    t1 = load(path(root, ids.single))
    m = mask_of(p)
    img = nib.Nifti1Image(m[:-2].astype(np.uint8), t1.affine, t1.header.copy())
    img.set_data_dtype(np.uint8)
    niio.save_nifti(img, p)


def non_binary(root, ids):
    p = path(root, ids.single, "lesion", "smooth_nii")
    m = mask_of(p).astype(np.uint8)
    m[np.nonzero(m)[0][0], np.nonzero(m)[1][0], np.nonzero(m)[2][0]] = 2
    t1 = load(path(root, ids.single))
    img = nib.Nifti1Image(m, t1.affine, t1.header.copy())
    img.set_data_dtype(np.uint8)
    niio.save_nifti(img, p)


def empty_mask(root, ids):
    p = path(root, ids.single, "lesion", "raw_voi")
    niio.save_voi(np.zeros(mask_of(p).shape, bool), load(path(root, ids.single)), p)


def tiny_mask(root, ids):
    """A 1-voxel raw VOI on a 1.5 mm grid: 3.4 mm³."""
    p = path(root, ids.single, "lesion", "raw_voi")
    t1 = load(path(root, ids.single))
    aff = t1.affine.copy()
    aff[:3, :3] = np.diag([1.5, 1.5, 1.5])
    m = np.zeros(t1.shape, bool)
    m[tuple(n // 2 for n in t1.shape)] = True
    ref = nib.Nifti1Image(np.asarray(t1.dataobj), aff, t1.header.copy())
    ref.set_sform(aff, 1)
    ref.set_qform(aff, 1)
    niio.save_voi(m, ref, p)


def overlapping(root, ids):
    """One voxel of the primary added to lesion 1 (raw and both smoothed files)."""
    sid = ids.multi
    raw0, smooth0 = mask_of(path(root, sid, "lesion", "raw_voi")), mask_of(path(root, sid, "lesion", "smooth_nii"))
    both = np.argwhere(raw0 & smooth0)
    voxel = tuple(both[len(both) // 2])
    t1 = load(path(root, sid))
    for p in all_variants(root, sid, 1):
        m = mask_of(p)
        m[voxel] = True
        save_mask(p, m, t1)


def island_in_raw_mask(root, ids):
    """A 2x2x2-voxel island four slices beyond the primary lesion of a one-lesion scan (along the
    voxel axis closest to world z), in the raw VOI and (smoothed as ATLAS did) in both smoothed
    files, so that only the parts rule can object."""
    from atlas_registry import masks

    sid = ids.single
    t1 = load(path(root, sid))
    raw = mask_of(path(root, sid, "lesion", "raw_voi"))
    pts = np.argwhere(raw)
    up = int(np.argmax(np.abs(t1.affine[2, :3])))  # the voxel axis closest to world z
    top = pts[pts[:, up] == pts[:, up].max()][0].copy()
    top[up] += 4
    raw[tuple(slice(int(v), int(v) + 2) for v in top)] = True
    save_mask(path(root, sid, "lesion", "raw_voi"), raw, t1)
    smoothed = np.asarray(masks.smooth(raw, t1.affine)) > 0
    for v in ("smooth_voi", "smooth_nii"):
        save_mask(path(root, sid, "lesion", v), smoothed, t1)


def smooth_mismatch(root, ids):
    sid = ids.multi
    t1 = load(path(root, sid))
    for v in ("smooth_voi", "smooth_nii"):
        p = path(root, sid, "lesion", v)
        save_mask(p, np.roll(mask_of(p), 3, axis=0), t1)


def smooth_voi_differs(root, ids):
    sid = ids.multi
    p = path(root, sid, "lesion", "smooth_voi")
    m = mask_of(p)
    edge = np.argwhere(m)[0]
    m[tuple(edge)] = False
    niio.save_voi(m, load(path(root, sid)), p)


def voi_int16(root, ids):
    p = path(root, ids.single, "lesion", "raw_voi")
    img = load(p)
    out = nib.Nifti1Image(np.asarray(img.dataobj).astype(np.int16), img.affine, img.header.copy())
    out.set_data_dtype(np.int16)
    niio.save_nifti(out, p)


def missing_smoothed(root, ids):
    path(root, ids.multi, "lesion", "smooth_nii", 1).unlink()


def numbering_gap(root, ids):
    sid = ids.multi
    last = ids.lesions[sid] - 1
    for v in naming.VARIANTS:
        path(root, sid, "lesion", v, last).rename(path(root, sid, "lesion", v, last + 1))


def out_of_order(root, ids):
    sid = ids.multi
    n = ids.lesions[sid]
    a, b = (1, 2) if n >= 3 else (0, 1)
    for v in naming.VARIANTS:
        pa, pb = path(root, sid, "lesion", v, a), path(root, sid, "lesion", v, b)
        tmp = pa.with_name("swap.tmp")
        pa.rename(tmp)
        pb.rename(pa)
        tmp.rename(pb)


def wrong_cohort(root, ids):
    (root / "c0009" / ids.single).rename(root / "c0001" / ids.single)


def mismatched_id(root, ids):
    p = path(root, ids.single, "lesion", "raw_voi")
    p.rename(p.with_name(p.name.replace(ids.single, ids.single[:-2] + "09")))


def unknown_kind(root, ids):
    (path(root, ids.single).parent / f"{ids.single}_LesionRaw.nii.gz").write_bytes(path(root, ids.single).read_bytes())


def symlink_escape(root, ids):
    outside = root.parent / "outside.voi"
    p = path(root, ids.single, "lesion", "raw_voi")
    shutil.copy2(p, outside)
    p.unlink()
    os.symlink(outside, p)


def nan_voxels(root, ids):
    p = path(root, ids.single)
    img = load(p)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[1, 1, 1] = np.nan
    out = nib.Nifti1Image(data, img.affine, img.header.copy())
    out.set_data_dtype(np.float32)
    niio.save_nifti(out, p)


def no_orientation(root, ids):
    p = path(root, ids.single)
    img = load(p)
    img.header.set_sform(None, 0)
    img.header.set_qform(None, 0)
    niio.save_nifti(nib.Nifti1Image(np.asarray(img.dataobj), None, img.header), p)


def qform_shifted(root, ids):
    """Both forms set, the qform 4 mm to the right of the sform (FSL and ITK would disagree)."""
    p = path(root, ids.single)
    img = load(p)
    hdr = img.header
    shifted = img.affine.copy()
    shifted[0, 3] += 4.0
    hdr.set_sform(img.affine, 1)
    hdr.set_qform(shifted, 1)
    niio.save_nifti(nib.Nifti1Image(np.asarray(img.dataobj), None, hdr), p)


def duplicate_t1(root, ids):
    """One scan's T1 copied over another's (the same scan under two identifiers)."""
    shutil.copyfile(path(root, ids.single), path(root, ids.multi))


def not_mm(root, ids):
    p = path(root, ids.single)
    img = load(p)
    img.header.set_xyzt_units("meter", "sec")
    niio.save_nifti(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header), p)


def dob_column(root, ids):
    edit(root, lambda f: f["scans"].insert(2, "Date of birth", "1950"))


def undeclared_column(root, ids):
    edit(root, lambda f: f["scans"].insert(2, "Comments2", "x"))


def email_in_notes(root, ids):
    edit(root, lambda f: set_cell(f, "scans", ids.single, "Notes", "ask jdoe@example.org about this one"))


def pvh_five(root, ids):
    edit(root, lambda f: set_cell(f, "scans", ids.single, "PVH", "5"))


def bad_enum(root, ids):
    edit(root, lambda f: set_cell(f, "lesions", ids.single, "Hemisphere", "middle", lesion=0))


def scan_without_files(root, ids):
    shutil.rmtree(path(root, ids.single).parent)


def files_without_row(root, ids):
    def drop(f):
        f["scans"] = f["scans"][f["scans"][md.SCAN_ID] != ids.single].reset_index(drop=True)

    edit(root, drop)


def lesion_row_missing(root, ids):
    def drop(f):
        df = f["lesions"]
        f["lesions"] = df[~((df[md.SCAN_ID] == ids.multi) & (df["Lesion"] == "1"))].reset_index(drop=True)

    edit(root, drop)


def counts_wrong(root, ids):
    def bump(f):
        df = f["scans"]
        sel = df[md.SCAN_ID] == ids.single
        df.loc[sel, "Other Location"] = str(int(df.loc[sel, "Other Location"].iloc[0]) + 1)

    edit(root, bump)


def hemisphere_disagrees(root, ids):
    """The lesions sheet and the counts moved to the other hemisphere consistently: a warning only."""

    def flip(f):
        les = f["lesions"]
        sel = (les[md.SCAN_ID] == ids.single) & (les["Lesion"] == "0")
        hemi, loc = les.loc[sel, "Hemisphere"].iloc[0], les.loc[sel, "Location"].iloc[0]
        assert hemi in ("left", "right")
        new = "right" if hemi == "left" else "left"
        les.loc[sel, "Hemisphere"] = new
        scans = f["scans"]
        row = scans[md.SCAN_ID] == ids.single
        scans.loc[row, md.count_column(hemi, loc)] = str(int(scans.loc[row, md.count_column(hemi, loc)].iloc[0]) - 1)
        scans.loc[row, md.count_column(new, loc)] = str(int(scans.loc[row, md.count_column(new, loc)].iloc[0]) + 1)
        scans.loc[row, "Primary Stroke Location Hemisphere"] = new.capitalize()

    edit(root, flip)


def quirks(root, ids):
    """A leading space and an identifier that lost its zeros: accepted with warnings."""

    def q(f):
        set_cell(
            f, "scans", ids.single, "Notes", " " + f["scans"].loc[f["scans"][md.SCAN_ID] == ids.single, "Notes"].iloc[0]
        )
        c, s, t = naming.parse_scan_id(ids.single).cohort, naming.parse_scan_id(ids.single).subject, 1
        set_cell(f, "scans", ids.single, md.SCAN_ID, f" c{c}s{s}t{t}")

    edit(root, q)


def duplicate_row(root, ids):
    def dup(f):
        import pandas as pd

        f["scans"] = pd.concat([f["scans"], f["scans"].iloc[[0]]], ignore_index=True)

    edit(root, dup)


def tracer_is_reviewer(root, ids):
    def same(f):
        les = f["lesions"]
        sel = les[md.SCAN_ID] == ids.single
        les.loc[sel, "Reviewer"] = les.loc[sel, "Tracer"]

    edit(root, same)


def no_scanner_row(root, ids):
    def drop(f):
        f["scanners"] = f["scanners"][f["scanners"][md.COHORT] != "c0001"].reset_index(drop=True)

    edit(root, drop)


def csv_disagrees(root, ids):
    p = root / naming.METADATA_CSV["scans"]
    p.write_text(
        p.read_text().replace("Ischemic", "Embolic").replace("Lacunar", "Embolic").replace("Hemorrhagic", "Embolic"),
        encoding="utf-8",
    )


def wrong_voxel_size(root, ids):
    def thin(f):
        sc = f["scanners"]
        sc.loc[sc[md.COHORT] == "c0009", "Voxel Size Z (mm)"] = "1"

    edit(root, thin)


def sidecar_patient_name(root, ids):
    (path(root, ids.single).parent / f"{ids.single}.json").write_text(
        json.dumps({"MagneticFieldStrength": 3, "PatientName": "Doe^John"}), encoding="utf-8"
    )


def sidecar_wrong_field(root, ids):
    (path(root, ids.single).parent / f"{ids.single}.json").write_text(
        json.dumps({"MagneticFieldStrength": 1.5}), encoding="utf-8"
    )


def sidecar_not_json(root, ids):
    (path(root, ids.single).parent / f"{ids.single}.json").write_text('{"MagneticFieldStrength": 3', encoding="utf-8")


def corrupt_workbook(root, ids):
    p = root / naming.METADATA_WORKBOOK
    p.write_bytes(p.read_bytes()[:200])


def phi_file_name(root, ids):
    (path(root, ids.single).parent / "Smith_John_2015-03-12.nii.gz").write_bytes(b"")


NATIVE = {
    # name: (breaker, code, severity, exit status)
    "phi-voi-descrip": (phi_voi_descrip, "DEID001", "error", 1),
    "dicom-extension": (dicom_extension, "DEID002", "error", 1),
    "truncated-gzip": (truncated_gzip, "IMG001", "error", 1),
    "4d-image": (four_d, "IMG002", "error", 1),
    "nan-voxels": (nan_voxels, "IMG003", "error", 1),
    "no-sform-qform": (no_orientation, "IMG004", "error", 1),
    "units-not-mm": (not_mm, "IMG005", "error", 1),
    "qform-disagrees-with-sform": (qform_shifted, "IMG010", "error", 1),
    "same-t1-under-two-scans": (duplicate_t1, "IMG011", "error", 1),
    "wrong-voxel-size-for-scanner": (wrong_voxel_size, "IMG006", "error", 1),
    "sidecar-field-strength": (sidecar_wrong_field, "IMG007", "error", 1),
    "sidecar-not-json": (sidecar_not_json, "IMG009", "error", 1),
    "corrupt-workbook": (corrupt_workbook, "META002", "error", 1),
    "non-binary-mask": (non_binary, "MASK001", "error", 1),
    "empty-mask": (empty_mask, "MASK002", "error", 1),
    "tiny-mask": (tiny_mask, "MASK003", "error", 1),
    "mask-shape": (wrong_shape, "MASK004", "error", 1),
    "mask-shifted-grid": (shifted_grid, "MASK005", "error", 1),
    "overlapping-masks": (overlapping, "MASK006", "error", 1),
    "smoothed-not-raw": (smooth_mismatch, "MASK007", "error", 1),
    "voi-int16": (voi_int16, "MASK008", "error", 1),
    "smooth-voi-vs-nii": (smooth_voi_differs, "MASK009", "error", 1),
    "raw-mask-in-two-parts": (island_in_raw_mask, "MASK010", "warning", 0),
    "missing-smoothed-file": (missing_smoothed, "NAME007", "error", 1),
    "numbering-gap": (numbering_gap, "NAME008", "error", 1),
    "secondaries-out-of-order": (out_of_order, "NAME011", "error", 1),
    "wrong-cohort-folder": (wrong_cohort, "NAME002", "error", 1),
    "mismatched-id": (mismatched_id, "NAME003", "error", 1),
    "unknown-kind": (unknown_kind, "NAME004", "error", 1),
    "symlink-escape": (symlink_escape, "NAME010", "error", 1),
    "dob-column": (dob_column, "DEID006", "error", 1),
    "undeclared-column": (undeclared_column, "META004", "error", 1),
    "email-in-notes": (email_in_notes, "DEID007", "error", 1),
    "pvh-5": (pvh_five, "META005", "error", 1),
    "hemisphere-enum": (bad_enum, "META005", "error", 1),
    "scan-in-sheet-without-files": (scan_without_files, "META007", "error", 1),
    "files-without-row": (files_without_row, "META008", "error", 1),
    "lesion-without-row": (lesion_row_missing, "META008", "error", 1),
    "lesion-counts": (counts_wrong, "META009", "error", 1),
    "hemisphere-disagrees": (hemisphere_disagrees, "META010", "warning", 0),
    "quirks-normalized": (quirks, "META006", "warning", 0),
    "duplicate-row": (duplicate_row, "META011", "error", 1),
    "tracer-is-reviewer": (tracer_is_reviewer, "META003", "error", 1),
    "no-scanner-row": (no_scanner_row, "META012", "error", 1),
    "csv-disagrees": (csv_disagrees, "META014", "error", 1),
    "sidecar-patient-name": (sidecar_patient_name, "DEID003", "error", 1),
    "phi-file-name": (phi_file_name, "DEID005", "error", 1),
}


def test_clean_copies_validate_without_errors(validate_native, validate_standard, capsys):
    for root in (validate_native, validate_standard):
        status, report = run(root, capsys)
        assert (status, report["summary"]["errors"]) == (0, 0), report["findings"]
    assert codes(run(validate_native, capsys)[1], "warning") == set()


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_native_breakage(name, validate_native, capsys):
    breaker, code, severity, status = NATIVE[name]
    breaker(validate_native, ids_of(validate_native))
    got_status, report = run(validate_native, capsys)
    assert code in codes(report, severity), report["findings"]
    assert got_status == status
    if status == 0:
        assert report["summary"]["errors"] == 0, report["findings"]


def test_cohort_folder_breakage_and_text_output(validate_native, capsys):
    """A cohort folder validates on its own (with its cohort's rows of the tables above it)."""
    ids = ids_of(validate_native)
    capsys.readouterr()
    assert main(["validate", str(validate_native / "c0009"), "--workers", "2"]) == 0
    smooth_mismatch(validate_native, ids)
    assert main(["validate", str(validate_native / "c0009"), "--workers", "2"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("ERROR   [MASK007] c0009/") for line in out)
    assert out[-1].endswith("file(s)") and " error(s), " in out[-1]


# -- standardized root ------------------------------------------------------------------------------


def std_path(root: Path, sid: str, kind: str = "t1", lesion: int = 0) -> Path:
    return root / naming.standard_relpath(sid, kind, lesion)


def std_scan(root: Path) -> str:
    return sorted(p.name for p in (root / "c0009").iterdir())[0]


def undefaced(root):
    from atlas_registry import anatomy

    p = std_path(root, std_scan(root))
    img = load(p)
    data = np.asarray(img.dataobj).copy()
    face = anatomy.face_region(img.shape, img.affine)
    data[face] = np.percentile(data[data > 0], 75)
    save_t1(p, data, img)


def std_off_grid(root):
    p = std_path(root, std_scan(root), "lesion")
    img = load(p)
    out = nib.Nifti1Image(np.asarray(img.dataobj)[1:], img.affine, img.header.copy())
    niio.save_nifti(out, p)


def excluded_with_files(root):
    import pandas as pd

    sid = std_scan(root)
    f = root / naming.REGISTRATION_FAILURES
    df = pd.read_csv(f, dtype=str)
    df.loc[len(df)] = [sid, "registration failure", "motion artefact"]
    f.write_text(df.to_csv(index=False), encoding="utf-8")


STANDARD = {
    "undefaced-t1": (undefaced, "DEID008"),
    "standard-mask-off-grid": (std_off_grid, "IMG008"),
    "excluded-scan-with-files": (excluded_with_files, "META013"),
}


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_standard_breakage(name, validate_standard, capsys):
    breaker, code = STANDARD[name]
    breaker(validate_standard)
    status, report = run(validate_standard, capsys)
    assert code in codes(report), report["findings"]
    assert status == 1


# -- scrubbing and what ingest gets ------------------------------------------------------------------


def test_scrub_headers_turns_header_findings_into_info(validate_native):
    ids = ids_of(validate_native)
    phi_voi_descrip(validate_native, ids)
    dicom_extension(validate_native, ids)
    strict = validate_path(validate_native, workers=1)
    assert {"DEID001", "DEID002"} <= strict.report.codes("error")
    scrub = validate_path(validate_native, workers=1, scrub_headers=True)
    assert scrub.report.ok
    infos = [f for f in scrub.report.findings if f.severity == "info"]
    assert {f.code for f in infos} == {"DEID001", "DEID002"} and all("scrubbed" in f.message for f in infos)
    # PHI in the tables is never scrubbed
    email_in_notes(validate_native, ids)
    assert "DEID007" in validate_path(validate_native, workers=1, scrub_headers=True).report.codes("error")
