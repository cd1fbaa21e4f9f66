"""Mask rules: binary, non-empty, at least 10 mm³, on the T1's grid, no overlap between the lesions
of a scan, smoothed masks consistent with their raw mask, VOIs as MRIcron writes them.

A mask is kept only as its bounding-box crop (:class:`Crop`): every check after decoding (overlap,
re-smoothing, Dice, metrics) works on crops, which is what keeps validation near the cost of
decompressing the files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..paper import SMOOTH_FWHM_MM
from . import images, rules

MIN_VOLUME_MM3 = 10.0
SMOOTH_DICE_MIN = 0.9
AFFINE_TOL = 1e-2  # mm (and mm per voxel for the rotation/zoom part)
FWHM_MM = SMOOTH_FWHM_MM


@dataclass
class Crop:
    """The nonzero bounding box of a mask: ``data`` (bool) placed at voxel ``offset``."""

    offset: tuple[int, int, int]
    data: np.ndarray

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.data))

    def end(self) -> tuple[int, int, int]:
        return tuple(o + n for o, n in zip(self.offset, self.data.shape, strict=False))


def crop(arr: np.ndarray) -> Crop | None:
    """The bounding-box crop of the nonzero voxels of a 3-D array (``None`` when all zero).

    One reduction over the whole array along its slowest axis (without copying it: nibabel's arrays
    are Fortran-ordered), the other two axes on the slab only."""
    if arr.flags.f_contiguous and not arr.flags.c_contiguous:
        c = _crop_c(arr.T)
        return None if c is None else Crop(c.offset[::-1], np.ascontiguousarray(c.data.T))
    return _crop_c(np.ascontiguousarray(arr))


def _crop_c(arr: np.ndarray) -> Crop | None:
    flat = arr.reshape(arr.shape[0], -1)
    rows = flat.max(axis=1) > 0 if arr.dtype.kind in "ub" else (flat != 0).any(axis=1)
    xs = np.flatnonzero(rows)
    if xs.size == 0:
        return None
    slab = arr[xs[0] : xs[-1] + 1] != 0
    ys = np.flatnonzero(slab.any(axis=(0, 2)))
    zs = np.flatnonzero(slab.any(axis=(0, 1)))
    data = slab[:, ys[0] : ys[-1] + 1, zs[0] : zs[-1] + 1]
    return Crop((int(xs[0]), int(ys[0]), int(zs[0])), data)


def intersection(a: Crop, b: Crop) -> int:
    """Voxels set in both crops."""
    lo = [max(x, y) for x, y in zip(a.offset, b.offset, strict=False)]
    hi = [min(x, y) for x, y in zip(a.end(), b.end(), strict=False)]
    if any(h <= low for low, h in zip(lo, hi, strict=False)):
        return 0
    sa = tuple(slice(low - o, h - o) for low, h, o in zip(lo, hi, a.offset, strict=False))
    sb = tuple(slice(low - o, h - o) for low, h, o in zip(lo, hi, b.offset, strict=False))
    return int(np.count_nonzero(a.data[sa] & b.data[sb]))


def dice(a: Crop | None, b: Crop | None) -> float:
    na, nb = (a.count if a else 0), (b.count if b else 0)
    if na + nb == 0:
        return 1.0
    return 2.0 * (intersection(a, b) if a and b else 0) / (na + nb)


def equal(a: Crop | None, b: Crop | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.offset == b.offset and a.data.shape == b.data.shape and bool(np.array_equal(a.data, b.data))


def shifted_affine(affine: np.ndarray, offset) -> np.ndarray:
    """The affine of a crop that starts at voxel ``offset``."""
    t = np.eye(4)
    t[:3, 3] = offset
    return np.asarray(affine, dtype=float) @ t


# -- per-file checks -------------------------------------------------------------------------


def value_findings(img, arr: np.ndarray, c: Crop | None, relpath: str, subject: str | None) -> list:
    """MASK001 (values other than 0/1, or a scaling that changes them), MASK002 (empty),
    MASK003 (< 10 mm³)."""
    out = []
    slope, inter, _ = images.stored(img)
    scaled = not ((math.isnan(slope) or slope in (0.0, 1.0)) and (math.isnan(inter) or inter == 0.0))
    if c is None:
        out.append(rules.make("MASK002", "mask is empty (no nonzero voxel)", subject=subject, path=relpath))
        return out
    sl = tuple(slice(o, o + n) for o, n in zip(c.offset, c.data.shape, strict=False))
    vals = arr[sl][c.data]
    if scaled or not np.all(vals == 1):
        bad = np.unique(vals[vals != 1])[:5].tolist()
        why = f"scl_slope {slope:g} / scl_inter {inter:g}" if scaled else f"values {bad}"
        out.append(rules.make("MASK001", f"mask is not binary 0/1 ({why})", subject=subject, path=relpath))
    vol = c.count * float(np.prod(img.header.get_zooms()[:3]))
    if vol < MIN_VOLUME_MM3:
        out.append(
            rules.make(
                "MASK003", f"mask volume {vol:.1f} mm³ is below {MIN_VOLUME_MM3:g} mm³", subject=subject, path=relpath
            )
        )
    return out


def voi_findings(data: bytes, img, relpath: str, subject: str | None) -> list:
    """MASK008: a VOI is a gzip NIfTI-1 with uint8 data, intent_name B…, scl 1/0, vox_offset 352."""
    hdr = img.header
    slope, inter, offset = images.stored(img)
    problems = []
    if data[:2] != b"\x1f\x8b":
        problems.append("not gzip-compressed")
    if hdr.get_data_dtype() != np.uint8:
        problems.append(f"data type {hdr.get_data_dtype()} (MRIcron writes uint8)")
    if not bytes(hdr["intent_name"]).startswith(b"B"):
        problems.append("intent_name does not start with 'B'")
    if not (slope == 1.0 and inter == 0.0):
        problems.append(f"scl_slope/scl_inter {slope:g}/{inter:g} (must be 1/0)")
    if offset != 352:
        problems.append(f"vox_offset {offset} (MRIcron writes 352)")
    if not problems:
        return []
    return [
        rules.make("MASK008", "VOI is not as MRIcron writes it: " + "; ".join(problems), subject=subject, path=relpath)
    ]


def grid_findings(shape, affine, t1_shape, t1_affine, relpath: str, subject: str | None) -> list:
    """MASK004 (shape) / MASK005 (affine) against the scan's T1."""
    if tuple(shape[:3]) != tuple(t1_shape[:3]):
        return [
            rules.make(
                "MASK004",
                f"mask shape {tuple(int(n) for n in shape)} differs from the T1's {tuple(int(n) for n in t1_shape)}",
                subject=subject,
                path=relpath,
            )
        ]
    diff = np.abs(np.asarray(affine, dtype=float) - np.asarray(t1_affine, dtype=float))
    if diff.max() > AFFINE_TOL:
        shift = float(np.linalg.norm(np.asarray(affine)[:3, 3] - np.asarray(t1_affine)[:3, 3]))
        return [
            rules.make(
                "MASK005",
                f"mask affine differs from the T1's (largest difference {diff.max():.3g}, "
                f"origin {shift:.2f} mm apart): not on the same grid",
                subject=subject,
                path=relpath,
            )
        ]
    return []


def parts_findings(c: Crop, n_parts: int, voxel_mm3: float, relpath: str, subject: str | None) -> list:
    """MASK010: a raw mask in ``n_parts`` > 1 non-contiguous parts (their sizes, largest first)."""
    if n_parts <= 1:
        return []
    from scipy import ndimage as ndi

    from ..masks import CONNECTIVITY_26

    labels, n = ndi.label(c.data, structure=CONNECTIVITY_26)
    sizes = sorted(np.bincount(labels.ravel())[1:].tolist(), reverse=True)
    shown = ", ".join(f"{k * voxel_mm3:.0f}" for k in sizes[:4]) + (", ..." if n > 4 else "")
    return [
        rules.make(
            "MASK010",
            f"raw mask is in {n} non-contiguous parts ({shown} mm³): a lesion not "
            "contiguous with this one is traced as a separate mask, or these are stray voxels",
            subject=subject,
            path=relpath,
        )
    ]


# -- per-scan checks -------------------------------------------------------------------------


def overlap_findings(crops: dict[int, Crop], variant: str, relpaths: dict[int, str], subject: str) -> list:
    """MASK006: lesions of one scan share voxels (checked within one variant)."""
    out = []
    numbers = sorted(crops)
    for i, a in enumerate(numbers):
        for b in numbers[i + 1 :]:
            if n := intersection(crops[a], crops[b]):
                out.append(
                    rules.make(
                        "MASK006",
                        f"{variant} masks of lesions {a} and {b} overlap in {n} voxel(s) "
                        f"({relpaths[b].rsplit('/', 1)[-1]})",
                        subject=subject,
                        path=relpaths[a],
                    )
                )
    return out


def resmooth(raw: Crop, zooms) -> Crop | None:
    """``raw`` smoothed as the release did (Gaussian FWHM 2 mm, threshold 0.5), on a padded crop."""
    from .. import masks

    pad = [r + 1 for r in masks.smoothing_radius_vox(zooms)]  # the kernel's reach: same result as uncropped
    padded = np.pad(raw.data, [(p, p) for p in pad])
    smoothed = np.asarray(masks.smooth(padded, tuple(float(z) for z in zooms))) > 0
    out = crop(smoothed)
    if out is None:
        return None
    ox, oy, oz = (o + r - p for o, r, p in zip(out.offset, raw.offset, pad, strict=False))
    return Crop((ox, oy, oz), out.data)


def smoothing_findings(raw: Crop, smooth: Crop | None, zooms, relpath: str, subject: str) -> list:
    """MASK007: the smoothed mask against the raw mask re-smoothed."""
    d = dice(resmooth(raw, zooms), smooth)
    if d >= SMOOTH_DICE_MIN:
        return []
    return [
        rules.make(
            "MASK007",
            f"smoothed mask does not match its raw mask re-smoothed (FWHM {FWHM_MM:g} mm, "
            f"threshold 0.5): Dice {d:.3f} < {SMOOTH_DICE_MIN}",
            subject=subject,
            path=relpath,
        )
    ]


def metrics(c: Crop, affine) -> dict:
    """Voxel count, volume, centroid, components, hemisphere and location of a mask from its crop."""
    from .. import masks

    return masks.mask_metrics(c.data, shifted_affine(affine, c.offset))
