"""Where a synthetic lesion of each kind may lie, on the template grid.

A lesion planned as (hemisphere, location) is grown only inside the matching *allowed* region, so the
mask that is written classifies as planned (:func:`atlas_registry.anatomy.classify`):

* subcortical: white matter and deep grey, kept :data:`MARGIN_MM` away from cortex and from the
  brainstem/cerebellum;
* cortical: cortex, white matter and deep grey of one hemisphere, kept away from brainstem/cerebellum
  (the grower makes sure the lesion reaches cortex);
* other: brainstem and cerebellum, kept away from the cerebrum;
* left/right: at least :data:`MIDLINE_MM` from the midline.

Each region also has a list of candidate centres (2 mm lattice) with their *room*, the distance to
the region's edge, so that big lesions start where there is space for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import ndimage as ndi

from .. import anatomy

MARGIN_MM = 2  # box margin (voxels of 1 mm) between a lesion and the tissue it must not reach
MIDLINE_MM = 3.0
ROOM_STEP = 2  # lattice of candidate centres (template voxels)


@dataclass(frozen=True)
class Region:
    """An allowed region: the mask on the template grid and candidate centres with their room."""

    allowed: np.ndarray  # bool, template grid
    centres: np.ndarray  # (N, 3) world mm
    room: np.ndarray  # (N,) mm to the edge of the region
    world_box: tuple  # ((x0, x1), (y0, y1), (z0, z1)) world bounds of the region


def _away_from(labels: np.ndarray, forbidden: tuple[int, ...]) -> np.ndarray:
    bad = np.isin(labels, forbidden).view(np.uint8)
    return ~ndi.maximum_filter(bad, size=2 * MARGIN_MM + 1).astype(bool)


@cache
def region(hemisphere: str, location: str) -> Region:
    """The allowed region of lesions planned as (hemisphere, location)."""
    lab = anatomy.regions()
    if location == "subcortical":
        allowed = np.isin(lab, (anatomy.WHITE, anatomy.DEEP)) & _away_from(lab, (anatomy.CORTEX, anatomy.OTHER))
    elif location == "cortical":
        allowed = np.isin(lab, (anatomy.CORTEX, anatomy.WHITE, anatomy.DEEP)) & _away_from(lab, (anatomy.OTHER,))
    elif location == "other":
        allowed = (lab == anatomy.OTHER) & _away_from(lab, (anatomy.CORTEX, anatomy.WHITE, anatomy.DEEP))
    else:
        raise ValueError(f"unknown location {location!r}")
    x = anatomy.template_axes()[0].reshape(-1, 1, 1)
    if hemisphere == "left":
        allowed = allowed & (x <= -MIDLINE_MM)
    elif hemisphere == "right":
        allowed = allowed & (x >= MIDLINE_MM)
    allowed.setflags(write=False)
    coarse = allowed[::ROOM_STEP, ::ROOM_STEP, ::ROOM_STEP]
    room = ndi.distance_transform_edt(coarse, sampling=ROOM_STEP)
    idx = np.argwhere(coarse)
    centres = idx * ROOM_STEP + np.asarray(anatomy.TEMPLATE_ORIGIN)
    hit = np.argwhere(allowed)
    lo = hit.min(axis=0) + np.asarray(anatomy.TEMPLATE_ORIGIN)
    hi = hit.max(axis=0) + np.asarray(anatomy.TEMPLATE_ORIGIN)
    return Region(
        allowed, centres.astype(float), room[coarse].astype(float), tuple(zip(lo.tolist(), hi.tolist(), strict=False))
    )


def warm() -> None:
    """Compute every region now (before worker processes fork, so they share them)."""
    for h, loc in (
        ("left", "cortical"),
        ("right", "cortical"),
        ("left", "subcortical"),
        ("right", "subcortical"),
        ("other", "other"),
    ):
        region(h, loc)


def allowed_at(reg: Region, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Nearest-neighbour lookup of ``reg.allowed`` at world coordinates (arrays of one shape)."""
    ox, oy, oz = anatomy.TEMPLATE_ORIGIN
    nx, ny, nz = anatomy.TEMPLATE_SHAPE
    i = np.rint(x - ox).astype(np.int32)
    j = np.rint(y - oy).astype(np.int32)
    k = np.rint(z - oz).astype(np.int32)
    inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny) & (k >= 0) & (k < nz)
    out = np.zeros(x.shape, dtype=bool)
    out[inside] = reg.allowed[i[inside], j[inside], k[inside]]
    return out
