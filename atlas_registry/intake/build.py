"""Writing one intake's native cohort: the tool's own encoding of voxels and geometry, never the
delivery's bytes.

Every source (a converted DICOM series, a BIDS image, a site's NIfTI) is reduced to a
:class:`Loaded` scan: the T1's voxels and affine, each lesion's 0/1 voxels on the T1's grid, and the
allow-listed acquisition parameters. :func:`write_scan` encodes them with :mod:`atlas_registry.niio`
(clean header: no text, no extensions, sform = qform) and derives the smoothed masks exactly as the
validator checks them (:func:`atlas_registry.masks.smooth`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from .. import anatomy, masks, metadata, naming, niio
from ..errors import AtlasError
from ..synth.writer import mask_image, t1_image
from .mapfile import Row

# The acquisition parameters a written sidecar may hold: no dates, times, identifiers or free text.
SIDECAR_ALLOW = (
    "MagneticFieldStrength",
    "Manufacturer",
    "ManufacturersModelName",
    "MRAcquisitionType",
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "SliceThickness",
    "SpacingBetweenSlices",
    "RepetitionTime",
    "EchoTime",
    "InversionTime",
    "FlipAngle",
    "PixelBandwidth",
    "ParallelReductionFactorInPlane",
    "PartialFourier",
    "PhaseEncodingDirection",
    "ImagingFrequency",
    "ReceiveCoilName",
    "Modality",
    "ConversionSoftware",
)
MANUFACTURERS = {
    "ge": "GE",
    "siemens": "Siemens",
    "philips": "Philips",
    "toshiba": "Toshiba",
    "hitachi": "Hitachi",
    "canon": "Canon",
}


def allowed_sidecar(obj: dict) -> dict:
    """Only the allow-listed keys, with numbers, short words or lists of numbers as values."""
    out: dict[str, int | float | str | list] = {}
    for k in SIDECAR_ALLOW:
        v = obj.get(k)
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            out[k] = v
        elif isinstance(v, list) and v and all(isinstance(x, (int, float, str)) for x in v) and len(v) <= 8:
            out[k] = v
        elif isinstance(v, str) and len(v) <= 64 and all(c.isalnum() or c in " _-.+/" for c in v):
            out[k] = v
    return out


def manufacturer(text: str) -> str:
    t = (text or "").strip().lower()
    for key, name in MANUFACTURERS.items():
        if key in t:
            return name
    return text.strip()


@dataclass
class LesionIn:
    mask: np.ndarray  # bool, on the T1's grid
    source: str
    number: int | None = None
    row: Row | None = None


@dataclass
class Loaded:
    t1: nib.Nifti1Image
    lesions: list[LesionIn]
    acquisition: dict = field(default_factory=dict)  # allow-listed sidecar keys


@dataclass
class ScanIn:
    """One session of the delivery, before its identifier is known."""

    subject: str
    session: str
    order: tuple  # new timepoints of a subject are given in this order
    source: str  # the T1's file or series, for messages
    t1_row: Row
    load: Callable[[], Loaded]
    scanner: dict = field(default_factory=dict)  # manufacturer, model, field_strength (text)


def clean_t1(img: nib.Nifti1Image, source: str) -> nib.Nifti1Image:
    """The T1's voxels and affine in a header the tool writes itself."""
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise AtlasError("INTK008", f"the T1 is not 3-D (shape {tuple(img.shape)})", path=source)
    slope, inter = getattr(img.dataobj, "slope", None), getattr(img.dataobj, "inter", None)
    if not hasattr(img.dataobj, "get_unscaled"):
        data = np.asanyarray(img.dataobj)
    elif (slope is None or np.isnan(slope) or slope == 1.0) and (inter is None or np.isnan(inter) or inter == 0.0):
        data = np.asanyarray(img.dataobj.get_unscaled())
    else:
        data = np.asanyarray(img.dataobj, dtype=np.float32)
    if data.dtype == np.uint16 and (data.size == 0 or int(data.max()) <= np.iinfo(np.int16).max):
        data = data.astype(np.int16)
    elif data.dtype.kind not in "iuf" or data.dtype == np.float64:
        data = data.astype(np.float32)
    affine = img.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise AtlasError("INTK008", "the T1 has no usable orientation (singular or non-finite affine)", path=source)
    return t1_image(np.asarray(data), affine)


def on_grid(mask_img: nib.Nifti1Image, t1: nib.Nifti1Image, source: str) -> np.ndarray:
    """A mask's voxels on the T1's grid: the same grid, or the same grid stored in another axis order."""
    from nibabel import orientations as ornt

    if len(mask_img.shape) == 4 and mask_img.shape[3] == 1:
        mask_img = mask_img.slicer[..., 0]
    if len(mask_img.shape) != 3:
        raise AtlasError("INTK010", f"the mask is not 3-D (shape {tuple(mask_img.shape)})", path=source)
    data = np.asanyarray(mask_img.dataobj)
    affine = mask_img.affine
    if data.shape != t1.shape or not np.allclose(affine, t1.affine, atol=1e-3):
        tf = ornt.ornt_transform(ornt.io_orientation(affine), ornt.io_orientation(t1.affine))
        data = ornt.apply_orientation(data, tf)
        affine = affine @ ornt.inv_ornt_aff(tf, mask_img.shape[:3])
    if data.shape != t1.shape:
        raise AtlasError(
            "INTK010", f"mask shape {tuple(data.shape)} differs from the T1's {tuple(t1.shape)}", path=source
        )
    diff = float(np.abs(affine - t1.affine).max())
    if diff > 1e-3:
        raise AtlasError(
            "INTK010", f"the mask is not on the T1's grid (affines differ by up to {diff:.3g})", path=source
        )
    if not np.all(np.isfinite(data)):
        raise AtlasError("INTK010", "the mask holds NaN or infinite values", path=source)
    if not np.any(data):
        raise AtlasError("INTK010", "the mask is empty", path=source)
    return np.asarray(data) > 0.5 if data.dtype.kind == "f" else np.asarray(data) != 0


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The 26-connected parts of a mask, largest first."""
    from scipy import ndimage as ndi

    labels, n = ndi.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())[1:]
    order = sorted(range(n), key=lambda i: (-int(sizes[i]), i))
    return [labels == (i + 1) for i in order]


@dataclass
class Written:
    scan_row: dict
    lesion_rows: list[dict]
    zooms: tuple[float, float, float]


def write_scan(root: Path, scan_id: str, scan: ScanIn, loaded: Loaded) -> Written:
    """The native files of one scan under ``root`` and its metadata rows."""
    t1 = clean_t1(loaded.t1, scan.source)
    zx, zy, zz = (float(z) for z in t1.header.get_zooms()[:3])
    zooms = (zx, zy, zz)
    if not loaded.lesions:
        raise AtlasError(
            "INTK004", f"subject {scan.subject!r} session {scan.session!r} has no lesion mask", path=scan.source
        )
    smooth = [masks.smooth(les.mask, zooms) for les in loaded.lesions]
    for les, sm in zip(loaded.lesions, smooth, strict=False):
        if not sm.any():
            raise AtlasError(
                "INTK010", "the mask vanishes when smoothed (FWHM 2 mm): too small to trace", path=les.source
            )
    idx = list(range(len(loaded.lesions)))
    given = [les.number for les in loaded.lesions if les.number is not None]
    if given:
        if len(given) != len(idx) or sorted(given) != idx:
            raise AtlasError(
                "INTK003",
                f"lesion numbers {sorted(given)} are not 0..{len(idx) - 1} for every lesion "
                f"of subject {scan.subject!r} session {scan.session!r}",
                path="MAP.csv",
            )
        primary = given.index(0)
    else:
        primary = max(idx, key=lambda i: (int(smooth[i].sum()), -i))
    rest = sorted(
        (i for i in idx if i != primary), key=lambda i: (-int(smooth[i].sum()), -int(loaded.lesions[i].mask.sum()), i)
    )
    order = [primary, *rest]
    not_largest = any(int(smooth[i].sum()) > int(smooth[primary].sum()) for i in rest)

    files = {naming.native_relpath(scan_id, "t1"): niio.encode_nifti(t1)}
    lesion_rows = []
    default_tracer, default_reviewer = scan.t1_row.get("tracer"), scan.t1_row.get("reviewer")
    classes = []
    for number, i in enumerate(order):
        les, sm = loaded.lesions[i], smooth[i]
        files[naming.native_relpath(scan_id, "lesion", "raw_voi", number)] = niio.encode_voi(les.mask, t1)
        files[naming.native_relpath(scan_id, "lesion", "smooth_voi", number)] = niio.encode_voi(sm, t1)
        files[naming.native_relpath(scan_id, "lesion", "smooth_nii", number)] = niio.encode_nifti(mask_image(sm, t1))
        row = les.row
        hemi, loc = (row.get("hemisphere"), row.get("location")) if row else ("", "")
        if not hemi or not loc:
            auto = anatomy.classify(sm, t1.affine)
            hemi, loc = hemi or auto[0], loc or auto[1]
        tracer = (row.get("tracer") if row else "") or default_tracer
        reviewer = (row.get("reviewer") if row else "") or default_reviewer
        if not tracer or not reviewer:
            raise AtlasError(
                "INTK003",
                f"line {(row or scan.t1_row).line}: no tracer/reviewer for lesion {number} of "
                f"subject {scan.subject!r} session {scan.session!r}",
                path="MAP.csv",
            )
        classes.append((hemi, loc))
        lesion_rows.append(
            {
                "Scan ID": scan_id,
                "Lesion": number,
                "Hemisphere": hemi,
                "Location": loc,
                "Tracer": tracer,
                "Reviewer": reviewer,
            }
        )
    if loaded.acquisition:
        body = json.dumps(loaded.acquisition, indent=2, sort_keys=True) + "\n"
        files[naming.native_relpath(scan_id, "sidecar")] = body.encode("utf-8")
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        niio.write_atomic(p, data)
    return Written(_scan_row(scan_id, scan.t1_row, classes, not_largest), lesion_rows, zooms)


def _scan_row(scan_id: str, t1_row: Row, classes: list[tuple[str, str]], not_largest: bool) -> dict:
    counts = dict.fromkeys(metadata.COUNT_COLUMNS, 0)
    for hemi, loc in classes:
        counts[metadata.count_column(hemi, loc)] += 1
    hemi0, loc0 = classes[0]
    sides = {h for h, _ in classes if h in ("left", "right")}
    side = "Brainstem" if hemi0 == "other" else ("Bilateral" if len(sides) == 2 else hemi0.capitalize())
    where = t1_row.get("primary_location") or (
        "Brainstem or cerebellum" if hemi0 == "other" else f"{hemi0.capitalize()} {loc0}"
    )
    missing = [c for c in ("stroke_type", "vascular_territory", "pvh", "dwmh") if not t1_row.get(c)]
    if missing:
        raise AtlasError(
            "INTK003",
            f"line {t1_row.line}: the t1 row lacks {', '.join(missing)} (the "
            "neuroradiologist's reading: no image holds it)",
            path="MAP.csv",
        )
    return {
        "Scan ID": scan_id,
        "Cohort": scan_id[:5],
        **counts,
        "Stroke type": t1_row.get("stroke_type"),
        "Primary Stroke Location": where,
        "Primary Stroke Location Hemisphere": t1_row.get("primary_hemisphere") or side,
        "Vascular territory": t1_row.get("vascular_territory"),
        "PVH": int(t1_row.get("pvh")),
        "DWMH": int(t1_row.get("dwmh")),
        "Notes": t1_row.get("notes"),
        "Primary Not Largest": "Yes" if not_largest else "No",
    }
