"""Image rules: every NIfTI file is readable and sane (3-D, finite, oriented, in millimetres);
T1s agree with their cohort's scanner record; standardized images lie on the template grid.

The per-file functions work on an image already decoded by :func:`niio.decode` (one decompression
per file); none of them keeps the voxel array.
"""

from __future__ import annotations

import math

import numpy as np

from . import rules

ZOOM_TOL_MM = 0.05
FIELD_TOL_T = 0.05
#: How far apart (mm) the sform and the qform may put a corner of the grid. A qform is a float32
#: quaternion whose first component is recomputed from the other three, which loses precision
#: for rotations near 180 degrees (the usual flip of x and y): on the synthetic archives the two
#: forms of correct headers are up to 0.24 mm apart. A qform also cannot hold shear.
FORMS_TOL_MM = 1.0


def decode(data: bytes, relpath: str, subject: str | None):
    """``(image, inflated bytes, findings)``: the decoded image and the bytes it was read from, or
    ``None``, ``b""`` and the finding (IMG001, or the strict reader's IMG013-IMG015)."""
    from .. import niio
    from ..errors import AtlasError

    try:
        img, raw = niio.decode_raw(data, relpath)
        return img, raw, []
    except AtlasError as e:
        code = e.code if e.code in rules.RULES else "IMG001"
        if code == "IMG001" and "invalid intercept" in e.args[0]:  # nibabel refuses a non-finite scl_inter
            code = "IMG003"
        return None, b"", [rules.make(code, e.args[0], subject=subject, path=relpath)]


def geometry_findings(img, relpath: str, subject: str | None) -> list:
    """IMG002 (not 3-D), IMG004 (no valid orientation), IMG010 (sform and qform disagree), IMG005
    (not millimetres)."""
    out = []
    hdr = img.header
    if len(img.shape) != 3:
        out.append(
            rules.make(
                "IMG002",
                f"image is {len(img.shape)}-D (shape {tuple(int(n) for n in img.shape)}); a T1 or mask must be 3-D",
                subject=subject,
                path=relpath,
            )
        )
    if problem := _orientation_problem(hdr):
        out.append(rules.make("IMG004", problem, subject=subject, path=relpath))
    elif (apart := forms_apart_mm(hdr, img.shape[:3])) > FORMS_TOL_MM:
        out.append(
            rules.make(
                "IMG010",
                f"sform (code {int(hdr['sform_code'])}) and qform (code "
                f"{int(hdr['qform_code'])}) put a corner of the grid {apart:.2f} mm apart "
                f"(tolerance {FORMS_TOL_MM:g} mm)",
                subject=subject,
                path=relpath,
            )
        )
    unit = hdr.get_xyzt_units()[0]
    if unit != "mm":
        out.append(rules.make("IMG005", f"spatial unit is {unit!r}; must be 'mm'", subject=subject, path=relpath))
    return out


def _orientation_problem(hdr) -> str | None:
    zooms = np.asarray(hdr["pixdim"][1:4], dtype=float)
    if not np.all(np.isfinite(zooms)) or np.any(zooms <= 0):
        return f"voxel sizes (pixdim) {zooms.round(3).tolist()} must be finite and positive"
    sform_code, qform_code = int(hdr["sform_code"]), int(hdr["qform_code"])
    if sform_code == 0 and qform_code == 0:
        return "neither sform nor qform is set (sform_code = qform_code = 0): the orientation is unknown"
    try:
        aff = hdr.get_sform() if sform_code > 0 else hdr.get_qform()
    except Exception as e:  # noqa: BLE001 - nibabel raises for impossible quaternions
        return f"invalid {'sform' if sform_code > 0 else 'qform'} ({e})"
    if not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-6:
        return f"{'sform' if sform_code > 0 else 'qform'} is not a finite, invertible affine"
    return None


def forms_apart_mm(hdr, shape) -> float:
    """How far apart (mm) the sform and the qform put the corners of a grid of ``shape``: 0 unless
    both are set (codes > 0)."""
    if int(hdr["sform_code"]) <= 0 or int(hdr["qform_code"]) <= 0:
        return 0.0
    try:
        sform, qform = hdr.get_sform(), hdr.get_qform()
    except Exception:  # noqa: BLE001 - an impossible quaternion: IMG004 territory, not this rule's
        return 0.0
    ext = [max(int(n) - 1, 0) for n in shape]
    corners = np.array([[i, j, k, 1.0] for i in (0, ext[0]) for j in (0, ext[1]) for k in (0, ext[2])]).T
    return float(np.max(np.linalg.norm((sform - qform)[:3] @ corners, axis=0)))


def unscaled(img) -> np.ndarray:
    """The stored voxel array (no scaling to float: integer T1s stay integer)."""
    obj = img.dataobj
    return np.asanyarray(obj.get_unscaled() if hasattr(obj, "get_unscaled") else obj)


def stored(img) -> tuple[float, float, int]:
    """``(scl_slope, scl_inter, vox_offset)`` as stored in the file (nibabel resets them in the
    header of a loaded image and keeps them on the array proxy)."""
    obj = img.dataobj
    if hasattr(obj, "slope"):
        return float(obj.slope), float(obj.inter), int(obj.offset)
    hdr = img.header
    return float(hdr["scl_slope"]), float(hdr["scl_inter"]), int(hdr["vox_offset"])


def raw_scale(img) -> tuple[float, float]:
    """``(scl_slope, scl_inter)`` exactly as the file stores them. nibabel reads a NaN, infinite or
    zero ``scl_slope`` as "no scaling" (1, 0), so :func:`stored` cannot tell them apart; the bytes of
    the header (offset 112, two float32 in the header's byte order) can."""
    fobj = getattr(img.file_map.get("image"), "fileobj", None) if hasattr(img, "file_map") else None
    if fobj is not None and hasattr(fobj, "getbuffer"):
        block = bytes(fobj.getbuffer()[112:120])
        if len(block) == 8:
            slope, inter = np.frombuffer(block, dtype=img.header.endianness + "f4")
            return float(slope), float(inter)
    return stored(img)[:2]


def finite_findings(img, arr: np.ndarray, relpath: str, subject: str | None) -> list:
    """IMG003 for NaN/Inf voxels in a float image, or a scale factor that is NaN, infinite or (for
    ``scl_slope``) zero: readers disagree on what such a file means (nibabel and the NIfTI standard
    read it as unscaled, others multiply by it), so it is refused rather than guessed at."""
    slope, inter = raw_scale(img)
    if not math.isfinite(slope) or slope == 0 or not math.isfinite(inter):
        return [
            rules.make(
                "IMG003",
                f"scale factor scl_slope {slope:g} / scl_inter {inter:g}: scl_slope must be "
                "finite and non-zero, scl_inter finite",
                subject=subject,
                path=relpath,
            )
        ]
    if arr.dtype.kind in "fc" and arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        n = int(np.count_nonzero(~np.isfinite(arr)))
        return [rules.make("IMG003", f"{n} voxel(s) are NaN or infinite", subject=subject, path=relpath)]
    return []


def zooms_of(img) -> tuple[float, float, float]:
    x, y, z = (round(float(z), 6) for z in img.header.get_zooms()[:3])
    return x, y, z


def template_findings(img, relpath: str, subject: str | None) -> list:
    """IMG008: a standardized image lies on the template grid (197x233x189 at 1 mm; a reduced-scale
    archive has the same field of view at its own isotropic voxel size)."""
    from .. import anatomy

    zooms = zooms_of(img)
    shape, affine = anatomy.template_grid(zooms[0])
    if tuple(img.shape[:3]) == tuple(shape) and np.allclose(img.affine, affine, atol=1e-2):
        return []
    full_shape, _ = anatomy.template_grid(1.0)
    return [
        rules.make(
            "IMG008",
            f"shape {tuple(int(n) for n in img.shape)} at {_mm(zooms)} mm is not the "
            f"template grid ({_mm(full_shape)} at 1 mm, origin {_mm(anatomy.TEMPLATE_ORIGIN)})",
            subject=subject,
            path=relpath,
        )
    ]


def scanner_findings(scan_id: str, relpath: str, zooms, scanner) -> list:
    """IMG006: the T1's voxel size against the cohort's scanner record (axis order ignored)."""
    want = sorted(float(v) for v in scanner.voxel_mm)
    have = sorted(float(v) for v in zooms)
    if np.allclose(want, have, atol=ZOOM_TOL_MM):
        return []
    return [
        rules.make(
            "IMG006",
            f"voxel size {_mm(zooms)} mm differs from the cohort's scanner record "
            f"{_mm(scanner.voxel_mm)} mm ({scanner.field_strength_t:g} T {scanner.manufacturer} "
            f"{scanner.model})",
            subject=scan_id,
            path=relpath,
        )
    ]


def field_findings(scan_id: str, relpath: str, field_t, scanner) -> list:
    """IMG007: a sidecar's MagneticFieldStrength against the cohort's scanner record."""
    try:
        value = float(field_t)
    except (TypeError, ValueError):
        return [
            rules.make("IMG007", f"MagneticFieldStrength {field_t!r} is not a number", subject=scan_id, path=relpath)
        ]
    if abs(value - float(scanner.field_strength_t)) <= FIELD_TOL_T:
        return []
    return [
        rules.make(
            "IMG007",
            f"sidecar says {value:g} T, the cohort's scanner record {scanner.field_strength_t:g} T",
            subject=scan_id,
            path=relpath,
        )
    ]


def _mm(v) -> str:
    return " x ".join(f"{float(x):g}" for x in v)
