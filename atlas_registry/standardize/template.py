"""The fixed side of the registration: the MNI152 2009 template, its masks and the output grid.

The template is the ICBM 2009a nonlinear symmetric T1 bundled with nilearn (:mod:`atlas_registry.anatomy`),
a skull-stripped brain.  Registration compares a native head with it inside the *fixed mask*: the
template's brain dilated by :data:`FIXED_MASK_DILATE_MM`, so the skull of the native head around the
brain pulls the right way and the scalp and neck far from it do not count.

Outputs lie on :func:`anatomy.template_grid` at one isotropic voxel size (1 mm for full-resolution
data; a reduced-scale archive keeps its own voxel size, as ``synth --scale small`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from .. import anatomy

FIXED_MASK_DILATE_MM = 6.0
WM_PROBABILITY = 0.9  # white matter for the intensity standardization: template WM probability above this


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def voxel_mm(self) -> float:
        return float(self.affine[0, 0])


def _resample_to(volume: np.ndarray, grid: Grid, order: int) -> np.ndarray:
    """A template-grid (1 mm) volume sampled on ``grid`` (same origin, coarser voxels)."""
    if grid.shape == anatomy.TEMPLATE_SHAPE:
        return np.asarray(volume, dtype=np.float32)
    v = grid.voxel_mm
    src = volume
    if order > 0 and v > 1.5:  # low-pass first: no aliasing on a coarse grid
        src = ndi.gaussian_filter(np.asarray(volume, dtype=np.float32), sigma=0.4 * v, mode="constant")
    return ndi.affine_transform(
        np.asarray(src, dtype=np.float32), np.diag(np.full(3, v)), output_shape=grid.shape, order=order, mode="constant"
    ).astype(np.float32)


@lru_cache(maxsize=4)
def grid(voxel_mm: float) -> Grid:
    shape, aff = anatomy.template_grid(voxel_mm)
    nx, ny, nz = (int(n) for n in shape)
    return Grid((nx, ny, nz), aff)


@lru_cache(maxsize=4)
def t1(voxel_mm: float) -> np.ndarray:
    """The template T1 on the output grid (float32, 0..1)."""
    out = _resample_to(anatomy.template("t1"), grid(voxel_mm), 1)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def brain(voxel_mm: float) -> np.ndarray:
    """The template's brain (grey + white probability ≥ 0.5) on the output grid."""
    gw = anatomy.template("gm").astype(np.float32) + anatomy.template("wm")
    out = _resample_to(gw, grid(voxel_mm), 1) >= 0.5
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def white(voxel_mm: float) -> np.ndarray:
    """Template white matter (probability > :data:`WM_PROBABILITY`) on the output grid."""
    out = _resample_to(anatomy.template("wm"), grid(voxel_mm), 1) > WM_PROBABILITY
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def fixed_mask(voxel_mm: float) -> np.ndarray:
    """Where the similarity metric is computed on the fixed side: the brain dilated."""
    b = brain(voxel_mm)
    r = max(1, round(FIXED_MASK_DILATE_MM / voxel_mm))
    out = ndi.binary_dilation(b, structure=ndi.generate_binary_structure(3, 1), iterations=r)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def face(voxel_mm: float) -> np.ndarray:
    """The face box of :data:`anatomy.FACE_BOX_MNI` on the output grid (what defacing empties)."""
    g = grid(voxel_mm)
    out = anatomy.face_region(g.shape, g.affine)
    out.setflags(write=False)
    return out
