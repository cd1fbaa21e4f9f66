"""Automatic quality control of one standardized scan: figures, thresholds, reasons.

Figures (all in the sidecar's ``QC`` and, for a failed scan, in the Reason of
``registration_failures.csv``):

* ``similarity``: Pearson correlation of the standardized T1 with the template T1 inside the
  template brain, lesions left out;
* ``brain_dice``: Dice overlap of the scan's brain tissue (standardized intensity above
  :data:`TISSUE_LEVEL` × the white-matter level, inside the dilated template brain) with the template brain;
* ``scales`` / ``anisotropy`` / ``determinant``: the singular values of the linear part of the native→MNI
  affine, the ratio of the largest to the smallest, and its determinant (a head is not flipped, nor
  squeezed to half or blown to twice its size);
* ``lesion_volume_ratio``: total standard lesion volume / (total native volume × determinant), 1 when
  nearest-neighbour resampling neither lost nor invented lesion; ``lesion_mm3_native`` /
  ``lesion_mm3_standard`` per lesion.

Thresholds (:data:`THRESHOLDS`, docs/standardize.md) were chosen on the synthetic data: clean scans
sit far inside them, a registration that went wrong far outside.
"""

from __future__ import annotations

import numpy as np

TISSUE_LEVEL = 0.45  # brain tissue: standardized intensity above this fraction of the white-matter level

THRESHOLDS = {
    "similarity_min": 0.88,
    "brain_dice_min": 0.80,
    "scale_min": 0.70,
    "scale_max": 1.45,
    "anisotropy_max": 1.40,
    "lesion_volume_ratio_min": 0.70,
    "lesion_volume_ratio_max": 1.40,
    "vanished_min_voxels": 8,  # a lesion of at least this many output voxels must not vanish
}


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def figures(t1: np.ndarray, native_to_mni: np.ndarray, native_mm3, standard_mm3, params, std_lesions=None) -> dict:
    """The QC figures of a standardized T1 (float, white matter at ``params.wm_level``)."""
    from . import template

    v = params.voxel_mm
    brain = template.brain(v)
    keep = brain if std_lesions is None else brain & ~std_lesions
    a, b = t1[keep].astype(np.float64), template.t1(v)[keep].astype(np.float64)
    sim = float(np.corrcoef(a, b)[0, 1]) if a.size > 1 and a.std() > 0 and b.std() > 0 else 0.0
    tissue = (t1 > TISSUE_LEVEL * params.wm_level) & template.fixed_mask(v)
    inter = int(np.count_nonzero(tissue & brain))
    dice = 2.0 * inter / max(1, int(tissue.sum()) + int(brain.sum()))
    lin = np.asarray(native_to_mni, dtype=np.float64)[:3, :3]
    sv = np.linalg.svd(lin, compute_uv=False)
    det = float(np.linalg.det(lin))
    nat = sum(x for _, x in native_mm3)
    std = sum(x for _, x in standard_mm3)
    ratio = std / (nat * abs(det)) if nat > 0 and det != 0 else 0.0
    return {
        "similarity": _r(sim),
        "brain_dice": _r(dice),
        "scales": [_r(s) for s in sorted(sv, reverse=True)],
        "anisotropy": _r(sv.max() / sv.min()) if sv.min() > 0 else 1e9,
        "determinant": _r(det),
        "voxel_mm3": _r(v**3),
        "lesion_volume_ratio": _r(ratio),
        "lesion_mm3_native": {str(n): _r(x, 1) for n, x in native_mm3},
        "lesion_mm3_standard": {str(n): _r(x, 1) for n, x in standard_mm3},
    }


def failures(f: dict) -> list[str]:
    """The reasons a scan fails QC (empty: it passes), each naming the figure and the threshold."""
    t = THRESHOLDS
    out = []
    if f["similarity"] < t["similarity_min"]:
        out.append(f"similarity to the template {f['similarity']:.3f} < {t['similarity_min']}")
    if f["brain_dice"] < t["brain_dice_min"]:
        out.append(f"brain overlap (Dice) {f['brain_dice']:.3f} < {t['brain_dice_min']}")
    lo, hi = min(f["scales"]), max(f["scales"])
    if f["determinant"] <= 0:
        out.append(f"transform flips the head (determinant {f['determinant']:.3f})")
    if lo < t["scale_min"] or hi > t["scale_max"]:
        out.append(f"implausible scaling {lo:.3f}..{hi:.3f} (allowed {t['scale_min']}..{t['scale_max']})")
    if f["anisotropy"] > t["anisotropy_max"]:
        out.append(f"implausible shear/anisotropy {f['anisotropy']:.3f} > {t['anisotropy_max']}")
    big = t["vanished_min_voxels"] * f["voxel_mm3"]
    lost = [n for n, x in f["lesion_mm3_native"].items() if x >= big and f["lesion_mm3_standard"].get(n, 0) == 0]
    if lost:
        out.append(f"lesion {', '.join(lost)} vanished on the template grid")
    r = f["lesion_volume_ratio"]
    if not t["lesion_volume_ratio_min"] <= r <= t["lesion_volume_ratio_max"]:
        out.append(
            f"lesion volume ratio {r:.3f} outside {t['lesion_volume_ratio_min']}..{t['lesion_volume_ratio_max']}"
        )
    return out
