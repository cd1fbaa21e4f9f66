"""The scanners of the synthetic cohorts and the native voxel grids they produce.

Each cohort has a scanner (field strength and voxel size from the data descriptor; make and model
invented but plausible), a storage orientation (axis order and flips as different converters leave
them), a field of view, and an intensity character (gain, noise, non-uniformity).  Each scan gets the
cohort's grid moved by a small rigid head-position change (rotation and shift), so no two scans
share an affine.

The synthetic world is MNI space: a native affine maps voxels to MNI millimetres, which is what lets
:func:`atlas_registry.anatomy.classify` work on native masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import paper

SCALES = ("small", "full")
SMALL_FACTOR = 3.0  # --scale small: voxel edges 3× longer (1 mm → 3 mm; 0.9×0.9×3 → 2.7×2.7×9)


@dataclass(frozen=True)
class Scanner:
    cohort: str
    field_strength_t: float
    manufacturer: str
    model: str
    voxel_mm: tuple[float, float, float]  # acquired voxel size along the stored axes
    axcodes: str  # world direction of each stored axis (RAS letters), e.g. "PIR"
    fov_mm: tuple[float, float, float]  # field of view along world x, y, z
    gain: float  # stored value of white matter
    noise: float  # noise SD as a fraction of white matter
    bias: float  # amplitude of the intensity non-uniformity


def _scanner(cohort, maker, model, axcodes, fov, gain, noise, bias) -> Scanner:
    return Scanner(
        cohort,
        paper.FIELD_STRENGTH_T[cohort],
        maker,
        model,
        _stored_zooms(cohort, axcodes),
        axcodes,
        fov,
        gain,
        noise,
        bias,
    )


def _stored_zooms(cohort: str, axcodes: str) -> tuple[float, float, float]:
    """The paper's voxel size, with the thick (3 mm) axis on the stored slice axis (the one along z)."""
    x, y, z = paper.VOXEL_SIZE_MM[cohort]
    by_world = {"x": x, "y": y, "z": z}
    a, b, c = (by_world[_WORLD_AXIS[ax]] for ax in axcodes)
    return a, b, c


_WORLD_AXIS = {"R": "x", "L": "x", "A": "y", "P": "y", "S": "z", "I": "z"}
_SIGN = {"R": 1.0, "L": -1.0, "A": 1.0, "P": -1.0, "S": 1.0, "I": -1.0}
_INDEX = {"x": 0, "y": 1, "z": 2}

SCANNERS: dict[str, Scanner] = {
    s.cohort: s
    for s in (
        _scanner("c0001", "GE", "Signa HDxt", "LPS", (230.4, 230.4, 156.0), 1800.0, 0.035, 0.18),
        _scanner("c0002", "Siemens", "Magnetom Avanto", "LAS", (230.4, 230.4, 150.0), 520.0, 0.04, 0.15),
        _scanner("c0003", "Siemens", "Magnetom TrioTim", "PIR", (176.0, 232.0, 192.0), 640.0, 0.025, 0.12),
        _scanner("c0004", "GE", "Discovery MR750", "LPS", (184.0, 232.0, 184.0), 2400.0, 0.03, 0.16),
        _scanner("c0005", "Philips", "Achieva", "RAS", (180.0, 232.0, 188.0), 900.0, 0.03, 0.1),
        _scanner("c0006", "Siemens", "Magnetom Prisma", "RAS", (176.0, 232.0, 192.0), 700.0, 0.02, 0.1),
        _scanner("c0007", "Siemens", "Magnetom Skyra", "ASR", (176.0, 232.0, 188.0), 680.0, 0.025, 0.14),
        _scanner("c0008", "GE", "Signa HDxt", "LAS", (184.0, 232.0, 184.0), 2100.0, 0.03, 0.2),
        _scanner("c0009", "Siemens", "Magnetom TrioTim", "PIR", (176.0, 232.0, 192.0), 610.0, 0.025, 0.12),
        _scanner("c0010", "Philips", "Ingenia", "RPI", (180.0, 232.0, 188.0), 1100.0, 0.03, 0.12),
        _scanner("c0011", "Siemens", "Magnetom Verio", "LIA", (176.0, 232.0, 192.0), 660.0, 0.03, 0.14),
    )
}
# Where the centre of each field of view sits in MNI mm (the head, scalp to the skull base).
FOV_CENTRE_MM = (0.0, -16.0, 20.0)


def voxel_mm(scanner: Scanner, scale: str) -> tuple[float, float, float]:
    """Stored voxel size at a scale (full: the acquired one; small: :data:`SMALL_FACTOR` × it)."""
    f = SMALL_FACTOR if scale == "small" else 1.0
    x, y, z = (round(v * f, 6) for v in scanner.voxel_mm)
    return x, y, z


def orientation_matrix(axcodes: str) -> np.ndarray:
    """3×3 matrix whose column i is the world unit vector of stored axis i."""
    m = np.zeros((3, 3))
    for i, c in enumerate(axcodes):
        m[_INDEX[_WORLD_AXIS[c]], i] = _SIGN[c]
    return m


def rotation(angles_deg) -> np.ndarray:
    """Rotation about x, then y, then z (degrees)."""
    ax, ay, az = (math.radians(a) for a in angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def native_grid(scanner: Scanner, scale: str, angles_deg=(0.0, 0.0, 0.0), shift_mm=(0.0, 0.0, 0.0)):
    """(shape, affine) of a scan on ``scanner``: the cohort field of view in the stored axis order,
    turned by ``angles_deg`` and moved by ``shift_mm`` (the head position of that scan)."""
    zooms = np.asarray(voxel_mm(scanner, scale))
    orient = orientation_matrix(scanner.axcodes)
    fov_stored = np.abs(orient.T) @ np.asarray(scanner.fov_mm)
    shape = tuple(int(n) for n in np.maximum(np.round(fov_stored / zooms), 1))
    lin = rotation(angles_deg) @ orient @ np.diag(zooms)
    centre = np.asarray(FOV_CENTRE_MM) + np.asarray(shift_mm)
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = centre - lin @ ((np.asarray(shape) - 1) / 2.0)
    return shape, aff


# --world scanner (opt-in): native headers in scanner coordinates and heads of different sizes.
WORLDS = ("mni", "scanner")
WORLD_STREAM = 0x574F524C  # "WORL": its own random stream, so the default world is unchanged
OBLIQUE_MAX_DEG = 15.0  # oblique acquisitions: rotation about each axis, uniform within ±this
SCALE_RANGE = (0.9, 1.1)  # per-axis head size relative to the template
ISOCENTRE_MM = (0.0, 0.0, 0.0)  # scanner coordinates: the head's centre lands near the isocentre
ISOCENTRE_SD_MM = 8.0


def scanner_world(seed: int, numbers: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(Z, R)`` of a scan in the scanner world: ``Z`` (4×4) scales MNI about the field-of-view centre
    per axis (the subject's head is 1/scale the template's size along that axis); ``R`` (4×4, rigid)
    maps MNI mm to scanner mm (an oblique rotation about the head centre and the centre moved near the
    isocentre).  A native voxel ``v`` then lies at MNI ``Z @ A @ v`` and its header says ``R @ A``, so
    the true native→MNI transform is ``Z @ inv(R)``."""
    rng = np.random.default_rng([seed, WORLD_STREAM, *numbers])
    c = np.asarray(FOV_CENTRE_MM)
    scale = rng.uniform(*SCALE_RANGE, 3)
    z = np.eye(4)
    z[:3, :3] = np.diag(scale)
    z[:3, 3] = c - scale * c
    angles = rng.uniform(-OBLIQUE_MAX_DEG, OBLIQUE_MAX_DEG, 3)
    rot = rotation(tuple(float(a) for a in angles))
    iso = np.asarray(ISOCENTRE_MM) + rng.normal(0.0, ISOCENTRE_SD_MM, 3)
    r = np.eye(4)
    r[:3, :3] = rot
    r[:3, 3] = iso - rot @ c
    return z, r


def head_position(rng: np.random.Generator) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """A random head position: small rotations (SD 3°, at most 7°) and shifts (SD 4 mm)."""
    ax, ay, az = (float(a) for a in np.clip(rng.normal(0.0, 3.0, 3), -7.0, 7.0))
    sx, sy, sz = (float(s) for s in np.clip(rng.normal(0.0, 4.0, 3), -10.0, 10.0))
    return (ax, ay, az), (sx, sy, sz)
