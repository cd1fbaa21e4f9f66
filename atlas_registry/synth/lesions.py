"""Growing lesion masks on a scan's grid that match their plan.

A lesion is an irregular blob (an ellipsoid with a random orientation whose radius is modulated by a
few smooth waves) intersected with the allowed region of its kind (:mod:`.placement`), kept to the
connected piece around its centre, and sized so that its *smoothed* mask has the planned volume.
The raw mask is what a tracer drew; the smoothed one is :func:`atlas_registry.masks.smooth` of it.

A candidate is accepted only when the masks that will be written say what the plan says:
classification of raw and smoothed masks (and of the standard-space mask) as planned, one connected
component, at least 10 mm³, a volume near the target, and at least :data:`GAP_VOXELS` voxels away
from the other lesions of the scan.  Otherwise another candidate is drawn from the lesion's own
random stream, which depends on the subject and lesion, not on the timepoint: a second timepoint
gets the same lesion again on its own grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .. import anatomy, masks
from . import placement

LESION_STREAM = 0x4C45534E  # "LESN"
MIN_VOLUME_MM3 = 10.0
GAP_VOXELS = 2  # free voxels (26-neighbourhood) between two lesions of one scan
MAX_CANDIDATES = 40
MAX_SIZE_STEPS = 14
VOLUME_TOLERANCE = 0.06  # relative, at full scale


@dataclass(frozen=True)
class Grid:
    """A voxel grid: shape and affine (world = MNI mm)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def zooms(self) -> tuple[float, float, float]:
        return masks.zooms_of(self.affine)

    @property
    def voxel_mm3(self) -> float:
        return masks.voxel_volume_mm3(self.affine)


@dataclass
class Lesion:
    """An accepted lesion on a native grid: masks stored as crops at ``box``."""

    box: tuple[slice, slice, slice]
    raw: np.ndarray  # bool, shape of the box
    smooth: np.ndarray  # bool, shape of the box
    hemisphere: str
    location: str
    std_box: tuple[slice, slice, slice] | None = None
    std: np.ndarray | None = None  # smoothed mask resampled to the standard grid (crop)

    @property
    def voxels(self) -> int:
        return int(self.smooth.sum())


@dataclass(frozen=True)
class Blob:
    """The implicit shape of a candidate lesion: f(p) ≤ t inside."""

    centre: np.ndarray  # world mm
    inverse_axes: np.ndarray  # 3×3: world offset → unit-sphere coordinates
    waves: np.ndarray  # 3×3 wave vectors (rad/mm)
    phases: np.ndarray
    amplitude: float

    def field(self, x, y, z) -> np.ndarray:
        dx, dy, dz = x - np.float32(self.centre[0]), y - np.float32(self.centre[1]), z - np.float32(self.centre[2])
        m = self.inverse_axes.astype(np.float32)
        rho2 = np.zeros(x.shape, dtype=np.float32)
        for r in range(3):
            u = m[r, 0] * dx + m[r, 1] * dy + m[r, 2] * dz
            rho2 += u * u
        wave = np.zeros(x.shape, dtype=np.float32)
        for k, ph in zip(self.waves.astype(np.float32), self.phases.astype(np.float32), strict=False):
            wave += np.sin(k[0] * dx + k[1] * dy + k[2] * dz + ph)
        return np.sqrt(rho2) / (1.0 + np.float32(self.amplitude / 3.0) * wave)

    @property
    def longest_axis(self) -> float:
        return float(1.0 / np.linalg.svd(self.inverse_axes, compute_uv=False).min())

    def reach(self, threshold: float) -> float:
        """How far (mm) from the centre a point with f ≤ threshold can be."""
        return threshold * (1.0 + self.amplitude) * self.longest_axis

    def radius_for(self, volume_mm3: float) -> float:
        """The reach of the blob whose ellipsoid alone would have ``volume_mm3``."""
        semi = 1.0 / np.linalg.svd(self.inverse_axes, compute_uv=False)
        t = (3.0 * volume_mm3 / (4.0 * math.pi * float(np.prod(semi)))) ** (1.0 / 3.0)
        return self.reach(t)


def equivalent_radius(volume_mm3: float) -> float:
    return (3.0 * volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def candidate_blob(reg: placement.Region, volume_mm3: float, rng: np.random.Generator) -> Blob:
    """A random blob for a lesion of ``volume_mm3`` in region ``reg``: centred where there is room."""
    r_eq = equivalent_radius(volume_mm3)
    want = min(0.6 * r_eq, 0.85 * float(reg.room.max()))
    spread = max(2.0, 0.35 * want)
    w = np.exp(-(((reg.room - want) / spread) ** 2)) + 1e-6
    i = int(rng.choice(len(w), p=w / w.sum()))
    centre = reg.centres[i] + rng.uniform(-1.0, 1.0, 3)
    axes = np.sort(np.array([1.0, rng.uniform(0.65, 1.0), rng.uniform(0.45, 0.85)]))[::-1]
    rot = _random_rotation(rng)
    inverse_axes = np.diag(1.0 / axes) @ rot.T
    directions = np.array([_random_rotation(rng)[:, 0] for _ in range(3)])
    wavelengths = rng.uniform(1.0, 2.2, 3) * max(r_eq, 2.0)
    waves = directions * (2.0 * math.pi / wavelengths)[:, None]
    return Blob(centre, inverse_axes, waves, rng.uniform(0, 2 * math.pi, 3), float(rng.uniform(0.12, 0.3)))


def world_box_to_grid(world_box, grid: Grid) -> tuple[slice, ...] | None:
    """Voxel box of ``grid`` covering a world box ((x0, x1), (y0, y1), (z0, z1)); ``None`` if outside."""
    corners = np.array([[x, y, z] for x in world_box[0] for y in world_box[1] for z in world_box[2]], dtype=float)
    inv = np.linalg.inv(grid.affine)
    ijk = corners @ inv[:3, :3].T + inv[:3, 3]
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, grid.shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=False))


def box_world(box, affine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z (float32 arrays of the box's shape) of the voxel centres of a box."""
    a = np.asarray(affine, dtype=np.float32)
    idx = [np.arange(s.start, s.stop, dtype=np.float32) for s in box]
    shape = [len(i) for i in idx]
    out = []
    for r in range(3):
        v = np.full(shape, a[r, 3], dtype=np.float32)
        for ax in range(3):
            v += (a[r, ax] * idx[ax]).reshape([-1 if i == ax else 1 for i in range(3)])
        out.append(v)
    x, y, z = out
    return x, y, z


def _intersect(a, b):
    lo = [max(x.start, y.start) for x, y in zip(a, b, strict=False)]
    hi = [min(x.stop, y.stop) for x, y in zip(a, b, strict=False)]
    if any(h <= low for low, h in zip(lo, hi, strict=False)):
        return None
    return tuple(slice(low, h) for low, h in zip(lo, hi, strict=False))


def _working_box(blob: Blob, radius: float, reg: placement.Region, grid: Grid, pad):
    """The grid box around the blob (``radius`` mm) and inside the region, grown by ``pad``."""
    c = blob.centre
    box = world_box_to_grid(tuple((float(c[i] - radius), float(c[i] + radius)) for i in range(3)), grid)
    reg_box = world_box_to_grid(reg.world_box, grid)
    if box is None or reg_box is None or (box := _intersect(box, reg_box)) is None:
        return None
    return tuple(slice(max(s.start - p, 0), min(s.stop + p, n)) for s, p, n in zip(box, pad, grid.shape, strict=False))


def _candidates(blob: Blob, reg: placement.Region, grid: Grid, box, pad, occupied: np.ndarray) -> np.ndarray:
    """The blob field on the box, +inf where a lesion voxel may not be.  The pad ring stays empty
    (except at the edge of the field of view) so smoothing the box equals smoothing the grid."""
    x, y, z = box_world(box, grid.affine)
    ok = placement.allowed_at(reg, x, y, z) & ~occupied[box]
    for ax, (s, p, n) in enumerate(zip(box, pad, grid.shape, strict=False)):
        sl = [slice(None)] * 3
        if s.start > 0:
            sl[ax] = slice(0, p)
            ok[tuple(sl)] = False
        if s.stop < n:
            sl[ax] = slice(ok.shape[ax] - p, None)
            ok[tuple(sl)] = False
    f = blob.field(x, y, z)
    f[~ok] = np.inf
    return f


def _size(f: np.ndarray, zooms, target_vox: float, tolerance: float):
    """Threshold ``f`` (keeping the piece around its minimum) so the smoothed piece has about
    ``target_vox`` voxels: (relative error, raw, smooth, threshold) of the best size tried.

    The number k of raw voxels is searched with a bracket: a proportional guess, or the middle of
    the bracket when the guess leaves it (small lesions lose voxels to smoothing unevenly)."""
    finite = np.isfinite(f)
    n_ok = int(np.count_nonzero(finite))
    seed = np.unravel_index(int(np.argmin(f)), f.shape)
    order = np.sort(f[finite])
    best, lo, hi = None, 0, n_ok + 1  # v(lo) < target <= v(hi)
    k = min(max(1, int(round(target_vox))), n_ok)
    for _ in range(MAX_SIZE_STEPS):
        thr = float(order[k - 1])
        lab, _ = ndi.label(f <= thr, structure=masks.CONNECTIVITY_26)
        raw = lab == lab[seed]
        sm = masks.smooth(raw, zooms)
        v = int(sm.sum())
        err = abs(v - target_vox) / max(target_vox, 1.0)
        if best is None or err < best[0]:
            best = (err, raw, sm, thr)
        if err <= tolerance:
            break
        if v < target_vox:
            lo = k
        else:
            hi = k
        if hi - lo <= 1:
            break
        guess = int(round(k * target_vox / v)) if v > 0 else 2 * k + 1
        k = guess if lo < guess < hi else (lo + hi) // 2
        k = min(max(k, 1), n_ok)
    return best


def _grow(blob: Blob, reg: placement.Region, grid: Grid, target_vox: float, occupied: np.ndarray, tolerance: float):
    """Size the blob on the grid: (box, raw, smooth, relative volume error) or None."""
    pad = np.asarray(masks.smoothing_radius_vox(grid.zooms)) + 2
    radius = 1.6 * blob.radius_for(target_vox * grid.voxel_mm3) + 2.0 * max(grid.zooms)
    result, prev = None, None
    for _ in range(5):
        box = _working_box(blob, radius, reg, grid, pad)
        if box is None:
            return None
        if box == prev:  # the region, not the radius, bounds the box: nothing lies beyond it
            return result
        f = _candidates(blob, reg, grid, box, pad, occupied)
        if not np.isfinite(f).any():
            return None
        err, raw, sm, thr = _size(f, grid.zooms, target_vox, tolerance)
        result = (box, raw, sm, err)
        if blob.reach(thr) <= radius:  # nothing beyond the box could have been selected
            return result
        prev, radius = box, 1.1 * blob.reach(thr) + max(grid.zooms)
    return result


def to_standard(box, smooth_local: np.ndarray, grid: Grid, std: Grid):
    """Nearest-neighbour resampling of a smoothed crop onto the standard grid: (std_box, crop)."""
    corners = [(s.start - 0.5, s.stop - 0.5) for s in box]
    pts = np.array([[i, j, k] for i in corners[0] for j in corners[1] for k in corners[2]], dtype=float)
    world = pts @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    wbox = tuple((float(world[:, a].min()), float(world[:, a].max())) for a in range(3))
    sbox = world_box_to_grid(wbox, std)
    if sbox is None:
        return None, None
    x, y, z = box_world(sbox, std.affine)
    inv = np.linalg.inv(grid.affine).astype(np.float32)
    idx = []
    for r in range(3):
        v = inv[r, 0] * x + inv[r, 1] * y + inv[r, 2] * z + inv[r, 3]
        idx.append(np.rint(v).astype(np.int32) - box[r].start)
    inside = np.ones(x.shape, dtype=bool)
    for r in range(3):
        inside &= (idx[r] >= 0) & (idx[r] < smooth_local.shape[r])
    out = np.zeros(x.shape, dtype=bool)
    out[inside] = smooth_local[idx[0][inside], idx[1][inside], idx[2][inside]]
    tight = masks.bbox(out)
    if tight is None:
        return None, None
    return tuple(slice(s.start + t.start, s.start + t.stop) for s, t in zip(sbox, tight, strict=False)), out[tight]


def _classify_local(mask: np.ndarray, box, affine) -> tuple[str, str]:
    offset = np.array([s.start for s in box], dtype=float)
    aff = np.asarray(affine, dtype=float).copy()
    aff[:3, 3] = aff[:3, :3] @ offset + aff[:3, 3]
    return anatomy.classify(mask, aff)


def _dilate(mask: np.ndarray, n: int) -> np.ndarray:
    return ndi.binary_dilation(mask, structure=masks.CONNECTIVITY_26, iterations=n) if n > 0 else mask


def grow_lesion(plan, grid: Grid, occupied: np.ndarray, key: tuple, std: Grid | None, small: bool) -> Lesion:
    """Grow the lesion planned by ``plan`` (hemisphere, location, volume_mm3) on ``grid``.

    ``occupied`` marks voxels already taken (other lesions and their gap); ``key`` seeds the
    lesion's random stream; ``std`` is the standard grid when the scan is standardized.  Raises
    RuntimeError when no candidate passes (the caller retries the scan with another key).
    """
    reg = placement.region(plan.hemisphere, plan.location)
    want = (plan.hemisphere, plan.location)
    voxel = grid.voxel_mm3
    min_vox = math.ceil(MIN_VOLUME_MM3 / voxel - 1e-9)
    target_vox = max(plan.volume_mm3 / voxel, float(min_vox))
    tolerance = max(VOLUME_TOLERANCE, 1.5 / target_vox) if not small else max(0.25, 1.5 / target_vox)
    std_min = math.ceil(MIN_VOLUME_MM3 / std.voxel_mm3 - 1e-9) if std is not None else 0
    boost = 1.0
    for attempt in range(MAX_CANDIDATES):
        rng = np.random.default_rng([*key, LESION_STREAM, attempt])
        blob = candidate_blob(reg, plan.volume_mm3, rng)
        grown = _grow(blob, reg, grid, target_vox * boost, occupied, tolerance)
        if grown is None:
            continue
        box, raw, sm, err = grown
        n = int(sm.sum())
        if n < min_vox:
            boost *= 1.3
            continue
        if err > tolerance * (2.0 if attempt >= MAX_CANDIDATES // 2 else 1.0):
            continue
        if masks.n_components(sm) != 1 or (sm & occupied[box]).any():
            continue
        if _classify_local(raw, box, grid.affine) != want or _classify_local(sm, box, grid.affine) != want:
            continue
        lesion = Lesion(box, raw, sm, *want)
        if std is not None:
            sbox, scrop = to_standard(box, sm, grid, std)
            if scrop is None or int(scrop.sum()) < std_min or _classify_local(scrop, sbox, std.affine) != want:
                boost *= 1.1
                continue
            lesion.std_box, lesion.std = sbox, scrop
        return lesion
    raise RuntimeError(f"no lesion of {plan.volume_mm3:.0f} mm³ ({plan.hemisphere} {plan.location}) fits")


def reserve(occupied: np.ndarray, lesion: Lesion) -> None:
    """Mark a lesion and its gap as taken."""
    pad = GAP_VOXELS + 1
    box = tuple(
        slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(lesion.box, occupied.shape, strict=False)
    )
    local = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
    inner = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(lesion.box, box, strict=False))
    local[inner] = lesion.raw | lesion.smooth
    occupied[box] |= _dilate(local, GAP_VOXELS)
