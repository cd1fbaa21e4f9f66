"""A head around the template brain, and T1 images rendered from it on any grid.

The MNI152 2009 T1 bundled with nilearn is a skull-stripped brain.  :func:`head_volume` wraps it in
CSF, skull (inner table, diploe, outer table), muscle, scalp fat and skin, adds a face (eyes in
orbital fat, nose, nasal cavity and sinuses, cheeks) and a skull base, all on the template grid in
units where white matter is 1.  The layers follow the distance from the brain, perturbed by a smooth
random field so the head is not an offset copy of the brain surface.

:func:`render` samples that head on a scan's grid (trilinear); :func:`paint_lesions` darkens lesions
the way chronic infarcts look on T1; :func:`finish_native` adds what a scanner adds (intensity
non-uniformity, gain, magnitude noise, and for a few scans motion ghosts or poor SNR) and stores int16.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from .. import anatomy

HEAD_SEED = 20180220  # the head is part of the template subject: fixed, not per dataset
COARSE = 2  # mm: layer distances are computed on a 2 mm lattice and interpolated

# Tissue levels relative to white matter (T1-weighted).
CSF, BONE, DIPLOE, MUSCLE, FAT, SKIN, VITREOUS, AIR = 0.12, 0.05, 0.5, 0.32, 0.92, 0.45, 0.08, 0.0
# Distance from the brain surface (mm) at which each layer ends.
LAYERS = ((2.0, CSF), (3.5, BONE), (6.5, DIPLOE), (8.0, BONE))
SCALP_MM = 15.5  # outer surface of the scalp above the brain
SKIN_MM, FAT_MM = 1.5, 5.0  # depth below the outer surface

# Ellipsoids (centre, radii) in MNI mm.
FACE = ((0.0, 50.0, -52.0), (58.0, 46.0, 34.0))
SKULL_BASE = ((0.0, -22.0, -62.0), (66.0, 84.0, 40.0))
NOSE = ((0.0, 84.0, -44.0), (11.0, 14.0, 20.0))
EYES = (((-32.0, 54.0, -47.0), (12.0, 12.0, 12.0)), ((32.0, 54.0, -47.0), (12.0, 12.0, 12.0)))
ORBIT_FAT_MM = 4.0
AIRWAYS = (
    ((0.0, 62.0, -56.0), (10.0, 24.0, 14.0)),
    ((-24.0, 50.0, -64.0), (11.0, 11.0, 11.0)),
    ((24.0, 50.0, -64.0), (11.0, 11.0, 11.0)),
)


def _coords(step: int = 1):
    return tuple(
        a[::step].reshape(s)
        for a, s in zip(anatomy.template_axes(), ((-1, 1, 1), (1, -1, 1), (1, 1, -1)), strict=False)
    )


def _ellipsoid(coords, centre, radii) -> np.ndarray:
    x, y, z = coords
    (cx, cy, cz), (rx, ry, rz) = centre, radii
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0


def _smooth_field(shape, rng, sigma, amplitude) -> np.ndarray:
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return (f / (f.std() + 1e-6) * amplitude).astype(np.float32)


def _to_fine(coarse: np.ndarray) -> np.ndarray:
    """Interpolate a 2 mm lattice volume onto the 1 mm template grid."""
    return ndi.affine_transform(
        coarse, np.full(3, 1.0 / COARSE), output_shape=anatomy.TEMPLATE_SHAPE, order=1, mode="nearest", prefilter=False
    )


@lru_cache(maxsize=1)
def white_matter_level() -> float:
    """Median template T1 value of white matter (probability > 0.9): the unit of the head volume."""
    return float(np.median(anatomy.template("t1")[anatomy.template("wm") > 0.9]))


@lru_cache(maxsize=1)
def head_volume() -> np.ndarray:
    """The synthetic head on the template grid (float32, white matter = 1, read-only)."""
    rng = np.random.default_rng(HEAD_SEED)
    inside = anatomy.head_mask()
    coarse_inside = inside[::COARSE, ::COARSE, ::COARSE]
    cc = _coords(COARSE)
    jitter = _smooth_field(coarse_inside.shape, rng, 4.0, 1.2)
    dist = ndi.distance_transform_edt(~coarse_inside, sampling=COARSE).astype(np.float32) + jitter
    envelope = (dist <= SCALP_MM) | _ellipsoid(cc, *FACE) | _ellipsoid(cc, *SKULL_BASE) | _ellipsoid(cc, *NOSE)
    envelope = ndi.binary_closing(envelope, iterations=3, border_value=0)
    depth = ndi.distance_transform_edt(envelope, sampling=COARSE).astype(np.float32)
    texture = _smooth_field(coarse_inside.shape, rng, 1.5, 0.08)
    d, dep, tex = _to_fine(np.maximum(dist, 0.01)), _to_fine(depth), _to_fine(texture)

    out = np.zeros(anatomy.TEMPLATE_SHAPE, dtype=np.float32)
    c = _coords()
    soft = dep > 0.5
    out[soft] = MUSCLE
    out[soft & (dep < FAT_MM)] = FAT
    out[soft & (dep < SKIN_MM)] = SKIN
    limit_prev = 0.0
    for limit, level in LAYERS:
        out[(d > limit_prev) & (d <= limit) & soft] = level
        limit_prev = limit
    deep_face = soft & (d > LAYERS[-1][0]) & (dep >= FAT_MM)
    for centre, radii in EYES:
        fat = _ellipsoid(c, centre, tuple(r + ORBIT_FAT_MM for r in radii)) & deep_face
        out[fat] = FAT
        out[_ellipsoid(c, centre, radii) & deep_face] = VITREOUS
    for centre, radii in AIRWAYS:
        out[_ellipsoid(c, centre, radii) & deep_face] = AIR
    out *= 1.0 + tex
    brain = anatomy.template("t1") / np.float32(white_matter_level())
    out[inside] = brain[inside]
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def head_for_voxel(voxel_mm: float) -> np.ndarray:
    """The head low-pass filtered for sampling at ``voxel_mm`` (no aliasing on coarse grids)."""
    head = head_volume()
    if voxel_mm <= 1.5:
        return head
    out = ndi.gaussian_filter(head, sigma=0.4 * voxel_mm, mode="constant")
    out.setflags(write=False)
    return out


def render(shape, affine, voxel_mm: float = 1.0) -> np.ndarray:
    """The head sampled (trilinear) on a grid whose world coordinates are MNI mm; 0 outside."""
    head = head_for_voxel(voxel_mm)
    m = np.linalg.inv(anatomy.TEMPLATE_AFFINE) @ np.asarray(affine, dtype=float)
    return ndi.affine_transform(
        head, m[:3, :3], offset=m[:3, 3], output_shape=tuple(shape), order=1, mode="constant", cval=0.0, prefilter=False
    )


def paint_lesions(image: np.ndarray, lesions, zooms, rng: np.random.Generator) -> None:
    """Darken ``image`` in place where lesions are: ``lesions`` is [(box, raw_local_bool)].  Each lesion
    gets a CSF-like core (cavitation) with a soft edge and its own depth of darkening."""
    sigma = tuple(0.8 / z for z in zooms)
    for box, raw in lesions:
        p = ndi.gaussian_filter(raw.astype(np.float32), sigma, mode="constant")
        strength = np.float32(rng.uniform(0.75, 0.95))
        level = np.float32(rng.uniform(0.1, 0.3))
        region = image[box]
        region *= 1.0 - strength * p
        region += strength * p * level


def bias_field(shape, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Smooth multiplicative intensity non-uniformity: a product of quadratics along the stored axes."""
    field = np.ones(shape, dtype=np.float32)
    for ax, n in enumerate(shape):
        t = np.linspace(-1.0, 1.0, n, dtype=np.float32)
        a, b = rng.uniform(-1.0, 1.0, 2) * amplitude
        prof = (1.0 + a * t + 0.6 * b * (t * t - 0.33)).astype(np.float32)
        field *= prof.reshape([-1 if i == ax else 1 for i in range(3)])
    return field


class NoiseBank:
    """Standard-normal noise from one long deterministic stream: an image takes a window of it at a
    random offset.  Generating fresh noise per image costs more than the rest of the rendering."""

    def __init__(self, seed: int, size: int):
        self.values = np.random.default_rng([seed, 0x4E4F4953]).standard_normal(size, dtype=np.float32)
        self.values.setflags(write=False)

    def take(self, shape, rng: np.random.Generator) -> np.ndarray:
        n = int(np.prod(shape))
        start = int(rng.integers(0, len(self.values) - n + 1))
        return self.values[start : start + n].reshape(shape)


def finish_native(
    image: np.ndarray,
    rng: np.random.Generator,
    noise: NoiseBank,
    *,
    gain: float,
    noise_sd: float,
    bias: float,
    artefact: str | None,
) -> np.ndarray:
    """Scanner effects on a rendered image (white matter = 1) → int16 as stored by the scanner."""
    if artefact == "noise":  # poor image quality: low SNR, strong non-uniformity, washed-out contrast
        noise_sd, bias = noise_sd * 3.0, bias * 2.0
        image = 0.6 * image + 0.25 * ndi.uniform_filter(image, 5)
    image = image * bias_field(image.shape, rng, bias)
    if artefact == "motion":  # ghosts along the phase-encoding axis and a little blur
        ax = int(np.argmax(image.shape))
        ghost = 0.25 * np.roll(image, image.shape[ax] // 4, axis=ax) + 0.15 * np.roll(
            image, -image.shape[ax] // 3, axis=ax
        )
        image = ndi.gaussian_filter(image, 0.7) + ghost
    # Magnitude noise: |signal + noise| (half-normal in the air, Gaussian in tissue), the cheap
    # cousin of Rician noise.
    mag = image + np.float32(noise_sd) * noise.take(image.shape, rng)
    np.abs(mag, out=mag)
    mag *= np.float32(gain)
    np.clip(mag, 0, 32767, out=mag)
    return mag.astype(np.int16)


def finish_standard(
    image: np.ndarray, rng: np.random.Generator, noise: NoiseBank, *, level: float, noise_sd: float
) -> np.ndarray:
    """A standardized T1: non-uniformity corrected, intensity normalized (white matter = ``level``),
    resampled (so noise is lower), defaced (the face box emptied) → int16."""
    out = image + np.float32(noise_sd) * noise.take(image.shape, rng)
    np.maximum(out, 0, out=out)
    out *= np.float32(level)
    return out.astype(np.int16)
