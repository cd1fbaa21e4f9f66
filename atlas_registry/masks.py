"""Lesion-mask arithmetic shared by the generator, the validators, ingest and the statistics.

* :func:`smooth` is MRIcron's "smooth VOI" as ATLAS used it (Methods): Gaussian FWHM 2 mm, threshold
  0.5.  ``LesionSmooth`` files must equal ``smooth(LesionRaw)``.
* :func:`dice` and :func:`hausdorff_mm` are the agreement measures of the Technical Validation.
* :func:`mask_metrics` is what a registry row says about one mask (volume, centroid, components,
  hemisphere and location as :func:`atlas_registry.anatomy.classify` sees them).

All functions work on a bounding box around the voxels that matter, so a small lesion in a full-size
volume costs little.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from .paper import SMOOTH_FWHM_MM, SMOOTH_THRESHOLD

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
TRUNCATE = 4.0  # Gaussian kernel radius in standard deviations (scipy's default)
CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


def zooms_of(zooms_or_affine) -> tuple[float, float, float]:
    """Voxel sizes in mm from a 3-sequence of zooms or a 4×4 affine (column norms)."""
    a = np.asarray(zooms_or_affine, dtype=float)
    if a.shape == (4, 4):
        x, y, z = (float(v) for v in np.linalg.norm(a[:3, :3], axis=0))
        return x, y, z
    if a.shape != (3,):
        raise ValueError(f"expected 3 zooms or a 4×4 affine, got shape {a.shape}")
    x, y, z = (float(v) for v in a)
    return x, y, z


def bbox(mask: np.ndarray, margin=0) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every true voxel, grown by ``margin`` voxels per axis
    (an int or one per axis) and clipped to the array; ``None`` for an empty mask."""
    mask = np.asarray(mask)
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (mask.ndim,))
    out = []
    for ax in range(mask.ndim):
        other = tuple(i for i in range(mask.ndim) if i != ax)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        lo = max(int(hit[0]) - int(margins[ax]), 0)
        hi = min(int(hit[-1]) + int(margins[ax]) + 1, mask.shape[ax])
        out.append(slice(lo, hi))
    return tuple(out)


def smoothing_sigma_vox(zooms) -> tuple[float, float, float]:
    """Per-axis standard deviation, in voxels, of the FWHM 2 mm Gaussian."""
    sx, sy, sz = (SMOOTH_FWHM_MM * FWHM_TO_SIGMA / z for z in zooms_of(zooms))
    return sx, sy, sz


def smoothing_radius_vox(zooms) -> tuple[int, int, int]:
    """How far (voxels) the smoothing kernel reaches per axis: scipy's truncation radius."""
    rx, ry, rz = (int(TRUNCATE * s + 0.5) for s in smoothing_sigma_vox(zooms))
    return rx, ry, rz


def smooth(raw: np.ndarray, zooms) -> np.ndarray:
    """The raw tracing smoothed as ATLAS did: Gaussian FWHM 2 mm on float32, then ``> 0.5``.

    ``zooms`` are the voxel sizes in mm (or the image affine).  Only a box around the mask, grown by
    the kernel radius, is filtered; outside the field of view counts as 0.
    """
    raw = np.asarray(raw)
    out = np.zeros(raw.shape, dtype=bool)
    radius = np.asarray(smoothing_radius_vox(zooms)) + 1
    box = bbox(raw, radius)
    if box is None:
        return out
    local = (raw[box] != 0).astype(np.float32)
    # Pad where the box was clipped by the array edge is not needed: mode="constant" treats the
    # outside of the box like the outside of the field of view, and the margin covers the kernel.
    blurred = ndi.gaussian_filter(local, smoothing_sigma_vox(zooms), mode="constant", cval=0.0, truncate=TRUNCATE)
    out[box] = blurred > SMOOTH_THRESHOLD
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice similarity coefficient 2|A∩B| / (|A|+|B|); 1.0 when both masks are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one 6-neighbour outside it (the traced boundary)."""
    mask = np.asarray(mask, dtype=bool)
    return mask & ~ndi.binary_erosion(mask, border_value=0)


def hausdorff_mm(a: np.ndarray, b: np.ndarray, zooms_or_affine) -> float:
    """Symmetric Hausdorff distance (mm) between the surfaces of two masks on the same grid.

    HD = max(max_{x∈∂A} min_{y∈∂B} d(x,y), max_{y∈∂B} min_{x∈∂A} d(x,y)), with distances from
    Euclidean distance transforms on the voxel grid scaled by the voxel sizes.  0.0 when both masks
    are empty, ``inf`` when exactly one is.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    has_a, has_b = bool(a.any()), bool(b.any())
    if not (has_a or has_b):
        return 0.0
    if has_a != has_b:
        return math.inf
    box = bbox(a | b, 1)
    sa, sb = surface(a[box]), surface(b[box])
    zooms = zooms_of(zooms_or_affine)
    to_b = ndi.distance_transform_edt(~sb, sampling=zooms)
    to_a = ndi.distance_transform_edt(~sa, sampling=zooms)
    return float(max(to_b[sa].max(), to_a[sb].max()))


def n_components(mask: np.ndarray) -> int:
    """Number of 26-connected components."""
    mask = np.asarray(mask, dtype=bool)
    box = bbox(mask)
    if box is None:
        return 0
    return int(ndi.label(mask[box], structure=CONNECTIVITY_26)[1])


def voxel_volume_mm3(affine) -> float:
    """Volume of one voxel in mm³ (|det| of the affine's 3×3 part)."""
    return float(abs(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3])))


def centroid_mm(mask: np.ndarray, affine) -> tuple[float, float, float] | None:
    """World (x, y, z) of the mean voxel position; ``None`` for an empty mask."""
    idx = np.argwhere(np.asarray(mask, dtype=bool))
    if idx.size == 0:
        return None
    aff = np.asarray(affine, dtype=float)
    c = aff[:3, :3] @ idx.mean(axis=0) + aff[:3, 3]
    x, y, z = (float(v) for v in c)
    return x, y, z


def mask_metrics(mask: np.ndarray, affine) -> dict:
    """What a registry row records about one lesion mask, in plain Python types.

    Keys: ``voxel_count``, ``volume_mm3``, ``centroid_mm`` (world x, y, z or ``None``),
    ``n_components`` (26-connectivity), ``hemisphere`` and ``location`` (from
    :func:`atlas_registry.anatomy.classify`).
    """
    from . import anatomy

    mask = np.asarray(mask, dtype=bool)
    count = int(mask.sum())
    hemisphere, location = anatomy.classify(mask, affine)
    c = centroid_mm(mask, affine)
    return {
        "voxel_count": count,
        "volume_mm3": count * voxel_volume_mm3(affine),
        "centroid_mm": list(c) if c is not None else None,
        "n_components": n_components(mask),
        "hemisphere": hemisphere,
        "location": location,
    }
