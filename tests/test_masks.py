"""Mask arithmetic (smoothing, Dice, Hausdorff, metrics) and the shared anatomy behind it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from atlas_registry import anatomy, masks


def _ball(shape, centre, radius_mm, zooms=(1.0, 1.0, 1.0)):
    g = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    d2 = sum(((a - c) * z) ** 2 for a, c, z in zip(g, centre, zooms, strict=False))
    return d2 <= radius_mm**2


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 1.0), (0.9, 0.9, 3.0), (3.0, 3.0, 3.0)])
def test_smooth_equals_whole_volume_gaussian(zooms):
    rng = np.random.default_rng(3)
    raw = _ball((40, 44, 30), (18, 20, 14), 7.0, zooms)
    raw &= rng.random(raw.shape) > 0.15  # ragged tracing
    raw[2, 2, 2] = True  # a lone voxel near the edge of the field of view
    sigma = [2.0 / (2 * math.sqrt(2 * math.log(2))) / z for z in zooms]
    want = ndi.gaussian_filter(raw.astype(np.float32), sigma, mode="constant") > 0.5
    got = masks.smooth(raw, zooms)
    assert got.dtype == bool and np.array_equal(got, want)


def test_smooth_fills_gaps_and_drops_specks():
    raw = _ball((30, 30, 30), (15, 15, 15), 6.0)
    raw[15, 15, 15] = False  # a hole inside
    raw[2, 2, 2] = True  # a speck
    sm = masks.smooth(raw, (1.0, 1.0, 1.0))
    assert sm[15, 15, 15] and not sm[2, 2, 2]
    assert not masks.smooth(np.zeros((5, 5, 5)), (1, 1, 1)).any()


def test_smooth_accepts_an_affine():
    raw = _ball((20, 20, 20), (10, 10, 10), 4.0)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    assert np.array_equal(masks.smooth(raw, aff), masks.smooth(raw, (2.0, 2.0, 2.0)))


def test_dice():
    a = np.zeros((10, 10, 10), bool)
    b = a.copy()
    assert masks.dice(a, b) == 1.0
    a[2:4, 2:4, 2:4] = True
    assert masks.dice(a, b) == 0.0
    b[2:4, 2:4, 2:3] = True
    assert masks.dice(a, b) == pytest.approx(2 * 4 / (8 + 4))


def _brute_hd(a, b, zooms):
    sa = np.argwhere(masks.surface(a)) * zooms
    sb = np.argwhere(masks.surface(b)) * zooms
    d = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    return max(d.min(axis=1).max(), d.min(axis=0).max())


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 1.0), (0.9, 0.9, 3.0)])
def test_hausdorff_matches_brute_force(zooms):
    rng = np.random.default_rng(7)
    for _ in range(4):
        a = _ball((24, 24, 16), rng.integers(6, 14, 3), rng.uniform(2, 5), zooms)
        b = _ball((24, 24, 16), rng.integers(6, 14, 3), rng.uniform(2, 5), zooms)
        b[20:22, 20:22, 13:15] = True  # a far-away island makes the distance large
        got = masks.hausdorff_mm(a, b, zooms)
        assert got == pytest.approx(_brute_hd(a, b, np.asarray(zooms)), abs=1e-6)
    assert masks.hausdorff_mm(a, a, zooms) == 0.0


def test_hausdorff_edge_cases_and_affine():
    a = np.zeros((8, 8, 8), bool)
    assert masks.hausdorff_mm(a, a, (1, 1, 1)) == 0.0
    b = a.copy()
    b[1, 1, 1] = True
    assert masks.hausdorff_mm(a, b, (1, 1, 1)) == math.inf
    a[1, 1, 5] = True
    aff = np.diag([1.0, 1.0, 2.5, 1.0])
    assert masks.hausdorff_mm(a, b, aff) == pytest.approx(10.0)


def test_components_and_bbox():
    m = np.zeros((10, 10, 10), bool)
    assert masks.n_components(m) == 0 and masks.bbox(m) is None
    m[1, 1, 1] = m[2, 2, 2] = True  # corner-touching: one component with 26-connectivity
    assert masks.n_components(m) == 1
    m[6, 6, 6] = True
    assert masks.n_components(m) == 2
    assert masks.bbox(m, 1) == (slice(0, 8), slice(0, 8), slice(0, 8))


def _template_mask(centre_mm, radius_mm):
    idx = np.round(np.asarray(centre_mm) - anatomy.TEMPLATE_ORIGIN).astype(int)
    r = int(math.ceil(radius_mm))
    m = np.zeros(anatomy.TEMPLATE_SHAPE, bool)
    box = tuple(slice(c - r, c + r + 1) for c in idx)
    m[box] = _ball((2 * r + 1,) * 3, (r, r, r), radius_mm)
    return m


@pytest.mark.parametrize(
    "centre,want",
    [
        ((-26.0, -4.0, 24.0), ("left", "subcortical")),  # left corona radiata
        ((24.0, 4.0, 4.0), ("right", "subcortical")),  # right putamen
        ((-45.0, -20.0, 50.0), ("left", "cortical")),  # left pre/postcentral cortex
        ((0.0, -30.0, -35.0), ("other", "other")),  # pons
        ((25.0, -70.0, -40.0), ("other", "other")),  # right cerebellum
    ],
)
def test_classify_known_places(centre, want):
    m = _template_mask(centre, 4.0)
    assert anatomy.classify(m, anatomy.TEMPLATE_AFFINE) == want


def test_classify_is_grid_independent():
    """The same lesion on a rotated, flipped, anisotropic grid classifies the same."""
    from atlas_registry.synth import scanners

    shape, aff = scanners.native_grid(scanners.SCANNERS["c0001"], "full", (4.0, -3.0, 5.0), (2.0, -1.0, 3.0))
    inv = np.linalg.inv(aff)
    g = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    centre = inv[:3, :3] @ np.array([-26.0, -4.0, 24.0]) + inv[:3, 3]
    world_d2 = sum(
        (np.asarray(aff)[r, :3] @ np.stack([a - c for a, c in zip(g, centre, strict=False)], 0).reshape(3, -1)) ** 2
        for r in range(3)
    )
    m = (world_d2 <= 25.0).reshape(shape)
    assert anatomy.classify(m, aff) == ("left", "subcortical")
    assert anatomy.classify(np.zeros(shape, bool), aff) == ("other", "other")


def test_mask_metrics():
    aff = np.array([[-0.9, 0, 0, 60.0], [0, 0.9, 0, -80.0], [0, 0, 3.0, -40.0], [0, 0, 0, 1]])
    m = np.zeros((100, 100, 40), bool)
    m[40:50, 60:70, 20:22] = True
    m[10, 10, 5] = True
    got = masks.mask_metrics(m, aff)
    assert got["voxel_count"] == 201
    assert got["volume_mm3"] == pytest.approx(201 * 0.9 * 0.9 * 3.0)
    assert got["n_components"] == 2
    idx = np.argwhere(m).mean(axis=0)
    assert got["centroid_mm"] == pytest.approx(list(aff[:3, :3] @ idx + aff[:3, 3]))
    assert got["hemisphere"] in anatomy.HEMISPHERES and got["location"] in anatomy.LOCATIONS


def test_regions_and_hemispheres_are_symmetric():
    lab = anatomy.regions()
    assert lab.shape == anatomy.TEMPLATE_SHAPE and not lab.flags.writeable
    left, right = lab[:98], lab[99:][::-1]  # x = 0 is index 98
    for region in (anatomy.CORTEX, anatomy.WHITE, anatomy.DEEP, anatomy.OTHER):
        a, b = int((left == region).sum()), int((right == region).sum())
        assert a > 1000 and abs(a - b) <= 0.02 * a


def test_template_grid():
    shape, aff = anatomy.template_grid(1.0)
    assert shape == (197, 233, 189) and np.allclose(aff, anatomy.TEMPLATE_AFFINE)
    shape3, aff3 = anatomy.template_grid(3.0)
    assert shape3 == (66, 78, 63)
    assert np.allclose(aff3[:3, 3], anatomy.TEMPLATE_ORIGIN) and np.allclose(np.diag(aff3)[:3], 3.0)
    far = aff3[:3, :3] @ (np.array(shape3) - 1) + aff3[:3, 3]
    assert np.all(far <= np.array([98, 98, 116]) + 1e-6)


def test_face_signal_tells_defaced_heads():
    import nibabel as nib

    from atlas_registry.synth import head

    vol = np.asarray(head.head_volume(), dtype=np.float32) * 800
    face = anatomy.face_region(vol.shape, anatomy.TEMPLATE_AFFINE)
    assert not (face & anatomy.head_mask()).any()  # the face box never cuts the brain
    with_face = anatomy.face_signal(nib.Nifti1Image(vol, anatomy.TEMPLATE_AFFINE))
    vol[face] = 0
    without = anatomy.face_signal(nib.Nifti1Image(vol, anatomy.TEMPLATE_AFFINE))
    assert with_face > 0.2 and without <= anatomy.FACE_SIGNAL_DEFACED_MAX


def test_mask_metrics_volume_is_anisotropy_aware():
    for zooms in itertools.permutations((0.9, 0.9, 3.0)):
        aff = np.diag([*zooms, 1.0])
        m = np.ones((2, 2, 2), bool)
        assert masks.mask_metrics(m, aff)["volume_mm3"] == pytest.approx(8 * 0.9 * 0.9 * 3.0)
