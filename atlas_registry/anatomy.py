"""The anatomy every module agrees on: the MNI152 2009 template and a coarse region map on it.

The template (ICBM 2009a nonlinear symmetric, 197 × 233 × 189 at 1 mm, origin (-98, -134, -72)) is
the copy bundled with nilearn; it is found through ``importlib`` without importing nilearn.

:func:`regions` labels each template voxel as background, cortex (cortical grey), white matter, deep
grey (basal ganglia, thalamus) or brainstem+cerebellum, from the grey/white probability maps and a
few MNI-coordinate rules.  The rules are simple on purpose: what matters is that the generator, the
validators and the statistics use the same definition.

:func:`classify` turns a mask on any grid into the vocabulary of the data descriptor:
hemisphere ∈ {left, right, other}, location ∈ {cortical, subcortical, other}.  World coordinates
are taken to be MNI millimetres (true for the standardized images, and for the synthetic native
images, which are resampled from the template with a rigid change of grid only).

:data:`FACE_BOX_MNI` and :func:`face_signal` tell a defaced head from one with a face.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from .errors import AtlasError

TEMPLATE_SHAPE = (197, 233, 189)
TEMPLATE_ORIGIN = (-98.0, -134.0, -72.0)
TEMPLATE_AFFINE = np.array(
    [[1.0, 0, 0, TEMPLATE_ORIGIN[0]], [0, 1.0, 0, TEMPLATE_ORIGIN[1]], [0, 0, 1.0, TEMPLATE_ORIGIN[2]], [0, 0, 0, 1]]
)
TEMPLATE_AFFINE.setflags(write=False)
TEMPLATE_FILES = {kind: f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz" for kind in ("t1", "gm", "wm")}

# Region labels of :func:`regions`.
BACKGROUND, CORTEX, WHITE, DEEP, OTHER = 0, 1, 2, 3, 4
REGION_NAMES = {
    BACKGROUND: "background",
    CORTEX: "cortex",
    WHITE: "white matter",
    DEEP: "deep grey",
    OTHER: "brainstem/cerebellum",
}

HEMISPHERES = ("left", "right", "other")
LOCATIONS = ("cortical", "subcortical", "other")

# classify(): a lesion is "other" when more than half of its in-brain voxels are brainstem or
# cerebellum; otherwise "cortical" when at least this fraction of them (and at least one voxel) lies
# in cortex, "subcortical" when none or almost none does (a traced edge grazing the ribbon).
OTHER_MIN_FRACTION = 0.5
CORTEX_MIN_FRACTION = 0.01

# The face: in front of and below the frontal lobes, clear of the brain by ≥ 8 mm (MNI mm, inclusive
# bounds as ((x0, x1), (y0, y1), (z0, z1))).  Defacing empties it; a native T1 has tissue in it.
FACE_BOX_MNI = ((-70.0, 70.0), (45.0, 98.0), (-72.0, -38.0))
FACE_TISSUE_FRACTION = 0.25  # a face sample counts as tissue above this fraction of the brain level
FACE_SIGNAL_DEFACED_MAX = 0.05  # face_signal() at or below this: no face left

# Rules behind regions(), in MNI mm.
_DEEP_ELLIPSOID = ((0.0, -8.0, 4.0), (32.0, 34.0, 22.0))  # centre, semi-axes: basal ganglia and thalami
_DEEP_MIN_DEPTH_MM = 12
_STEM_HALF_WIDTH = 15.0  # |x| <
_STEM_Y = (-45.0, -12.0)
_STEM_TOP = -8.0  # z <


def template_dir() -> Path:
    """The folder of nilearn's bundled MNI152 2009 files (found without importing nilearn)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise AtlasError("ANAT001", "nilearn is not installed: its bundled MNI152 template is needed")
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "datasets" / "data"
        if (d / TEMPLATE_FILES["t1"]).is_file():
            return d
    raise AtlasError("ANAT001", "nilearn's bundled MNI152 2009 template files were not found")


@cache
def template(kind: str) -> np.ndarray:
    """Template volume ``kind`` ∈ {t1, gm, wm} as read-only float32 scaled to [0, 1]."""
    from . import niio

    if kind not in TEMPLATE_FILES:
        raise ValueError(f"unknown template volume {kind!r}")
    img = niio.load(template_dir() / TEMPLATE_FILES[kind])
    if img.shape != TEMPLATE_SHAPE or not np.allclose(img.affine, TEMPLATE_AFFINE):
        raise AtlasError("ANAT002", f"unexpected template grid {img.shape}", path=TEMPLATE_FILES[kind])
    data = np.asarray(img.dataobj, dtype=np.float32) / np.float32(255.0)
    data.setflags(write=False)
    return data


def template_axes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z of the template voxel centres along each axis (mm)."""
    x, y, z = (
        np.arange(n, dtype=np.float32) + np.float32(o) for n, o in zip(TEMPLATE_SHAPE, TEMPLATE_ORIGIN, strict=False)
    )
    return x, y, z


@lru_cache(maxsize=1)
def head_mask() -> np.ndarray:
    """Inside of the template's brain mask (brain + CSF, everything the template T1 shows)."""
    m = template("t1") > 0
    m.setflags(write=False)
    return m


@lru_cache(maxsize=1)
def regions() -> np.ndarray:
    """The region label volume on the template grid (uint8, read-only; labels of REGION_NAMES)."""
    from scipy import ndimage as ndi

    g, w = template("gm"), template("wm")
    x, y, z = (a.reshape(s) for a, s in zip(template_axes(), ((-1, 1, 1), (1, -1, 1), (1, 1, -1)), strict=False))
    ax = np.abs(x)
    in_brain = (g + w) >= 0.5
    grey = g >= w
    # Cerebellum: below the tentorium, which falls from z = -6 at the midline by 0.45 mm per mm
    # of |x|; brainstem: a column around the midline from the midbrain down.
    cerebellum = (y < -40.0) & (z < -6.0 - 0.45 * ax)
    stem = (ax < _STEM_HALF_WIDTH) & (y > _STEM_Y[0]) & (y < _STEM_Y[1]) & (z < _STEM_TOP)
    other = in_brain & (cerebellum | stem)
    # Deep grey: grey matter in the central ellipsoid that lies far from the outer surface of the brain.
    (cx, cy, cz), (rx, ry, rz) = _DEEP_ELLIPSOID
    central = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0
    deep_enough = ndi.minimum_filter(head_mask().view(np.uint8), size=2 * _DEEP_MIN_DEPTH_MM + 1).astype(bool)
    deep = in_brain & grey & central & deep_enough & ~other
    labels = np.zeros(TEMPLATE_SHAPE, dtype=np.uint8)
    labels[in_brain & ~grey] = WHITE
    labels[in_brain & grey] = CORTEX
    labels[deep] = DEEP
    labels[other] = OTHER
    labels.setflags(write=False)
    return labels


def world_to_template_index(
    points: np.ndarray, affine=TEMPLATE_AFFINE, shape=TEMPLATE_SHAPE
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest voxel (N×3 int) of world points (N×3 mm) on a grid, and which of them are inside it."""
    inv = np.linalg.inv(np.asarray(affine, dtype=float))
    ijk = np.rint(np.asarray(points, dtype=float) @ inv[:3, :3].T + inv[:3, 3]).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(shape)), axis=1)
    return ijk, inside


def sample_labels(volume: np.ndarray, points: np.ndarray, fill=0, affine=TEMPLATE_AFFINE) -> np.ndarray:
    """Nearest-neighbour values of a template-grid ``volume`` at world points (N×3); ``fill`` outside."""
    ijk, inside = world_to_template_index(points, affine, volume.shape)
    out = np.full(len(ijk), fill, dtype=volume.dtype)
    i = ijk[inside]
    out[inside] = volume[i[:, 0], i[:, 1], i[:, 2]]
    return out


def voxel_world(mask: np.ndarray, affine) -> np.ndarray:
    """World coordinates (N×3 mm) of the true voxels of ``mask``."""
    idx = np.argwhere(np.asarray(mask, dtype=bool))
    a = np.asarray(affine, dtype=float)
    return idx @ a[:3, :3].T + a[:3, 3]


def classify_points(world: np.ndarray) -> tuple[str, str]:
    """(hemisphere, location) of a lesion given the world coordinates of its voxels."""
    if len(world) == 0:
        return ("other", "other")
    labels = sample_labels(regions(), world)
    n_brain = int(np.count_nonzero(labels))
    if n_brain == 0:
        return ("other", "other")
    if np.count_nonzero(labels == OTHER) > OTHER_MIN_FRACTION * n_brain:
        return ("other", "other")
    n_cortex = int(np.count_nonzero(labels == CORTEX))
    location = "cortical" if n_cortex >= max(1, math.ceil(CORTEX_MIN_FRACTION * n_brain)) else "subcortical"
    hemisphere = "left" if float(world[:, 0].mean()) < 0.0 else "right"  # RAS: x < 0 is left
    return (hemisphere, location)


def classify(mask: np.ndarray, affine) -> tuple[str, str]:
    """(hemisphere, location) of a lesion mask on a grid with the given affine.

    * more than half of the in-brain voxels in brainstem/cerebellum → ("other", "other");
    * else ``location`` is "cortical" when the lesion reaches cortex (≥ 1 % of its in-brain voxels,
      at least one), "subcortical" when it stays in white matter and deep grey;
    * ``hemisphere`` is the side of the centroid (MNI x < 0 is left).
    An empty mask, or one wholly outside the brain, is ("other", "other").
    """
    return classify_points(voxel_world(mask, affine))


def template_grid(voxel_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """The template's field of view at another isotropic voxel size: (shape, affine), same origin."""
    v = float(voxel_mm)
    if not v > 0:
        raise ValueError("voxel size must be positive")
    extent = [n - 1 for n in TEMPLATE_SHAPE]
    nx, ny, nz = (int(math.floor(e / v + 1e-9)) + 1 for e in extent)
    shape = (nx, ny, nz)
    aff = np.diag([v, v, v, 1.0])
    aff[:3, 3] = TEMPLATE_ORIGIN
    return shape, aff


def face_region(shape, affine) -> np.ndarray:
    """Voxels of a grid whose centres lie in :data:`FACE_BOX_MNI` (what defacing empties)."""
    a = np.asarray(affine, dtype=np.float64)
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    out = np.ones(tuple(shape), dtype=bool)
    for r, (lo, hi) in enumerate(FACE_BOX_MNI):  # world coordinate r, built by broadcasting
        w = a[r, 3] + sum((a[r, c] * axes[c]).reshape([-1 if i == c else 1 for i in range(3)]) for c in range(3))
        out &= (w >= lo) & (w <= hi)
    return out


def _lattice(box, step: float) -> np.ndarray:
    axes = [np.arange(lo, hi + 1e-9, step) for lo, hi in box]
    g = np.meshgrid(*axes, indexing="ij")
    return np.stack([a.ravel() for a in g], axis=1)


@lru_cache(maxsize=1)
def _face_points() -> np.ndarray:
    return _lattice(FACE_BOX_MNI, 3.0)


@lru_cache(maxsize=1)
def _brain_reference_points() -> np.ndarray:
    pts = _lattice(((-50.0, 50.0), (-70.0, 40.0), (0.0, 50.0)), 4.0)
    return pts[sample_labels(regions(), pts) == WHITE]


def face_signal(img) -> float:
    """How much face a head image still has: the fraction of points of :data:`FACE_BOX_MNI`
    (3 mm lattice) brighter than :data:`FACE_TISSUE_FRACTION` of the median white-matter level.

    About 0.3-0.6 for a T1 with a face, 0 for a defaced one (≤ :data:`FACE_SIGNAL_DEFACED_MAX`
    means "no face").  Points outside the field of view count as empty.
    """
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim > 3:
        data = data[..., 0]

    def values(points):
        return sample_labels(data, points, fill=np.float32(0), affine=img.affine)

    ref = values(_brain_reference_points())
    ref = ref[ref > 0]
    if ref.size == 0:
        return 0.0
    level = float(np.median(ref))
    if level <= 0:
        return 0.0
    face = values(_face_points())
    return float(np.count_nonzero(face > FACE_TISSUE_FRACTION * level)) / len(face)
