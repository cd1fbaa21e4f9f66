"""The tracer reliability study of the Technical Validation, synthesized.

Eleven tracers trace the same five training brains twice, a week apart (Methods: sizes 1,871 to
162,015 mm³; one cortical lesion on the right, four subcortical on the left).  Each tracing is the
true lesion as a person would draw it:

* a boundary drawn a little outside or inside (a per-tracer habit, plus a wandering error);
* slices missed at the ends of the lesion, or one extra slice;
* sometimes part of the lesion missed, sometimes a dark spot elsewhere traced as lesion (what makes
  Hausdorff distances large);
* two tracers are clearly worse in the first session; after feedback everybody improves;
* the border of the large cortical lesion is ambiguous, so habits weigh more there
  (:data:`BORDER_AMBIGUITY`): what spreads the traced volumes.

The amounts are tuned so that agreement lands near the paper's (:mod:`atlas_registry.paper`:
inter-rater Dice 0.73 ± 0.20 in session 1 and 0.83 ± 0.13 in session 2, intra-rater 0.83 ± 0.13;
volume ICC 0.76 ± 0.14 inter-rater and 0.84 ± 0.09 intra-rater); :func:`agreement` measures the
Dice and Hausdorff figures on the files written, ``atlas-registry reliability`` all of them.

Layout (under ``OUT/reliability``): ``b0N/b0N_T1w.nii.gz`` and
``b0N/b0N_rater-RR_session-S_mask.nii.gz`` (RR = 01..11, S = 1 or 2), ``tracings.csv`` and
``README.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .. import masks, niio, paper
from . import head, lesions, scan, scanners, writer
from .plan import LesionPlan

RELIABILITY_STREAM = 0x52454C49  # "RELI"
SCANNER = "c0006"  # the training brains were scanned like a 3 T cohort
# brain: (hemisphere, location, true volume mm³)
BRAINS = {
    1: ("left", "subcortical", 1871.0),
    2: ("right", "cortical", 162015.0),
    3: ("left", "subcortical", 6200.0),
    4: ("left", "subcortical", 33000.0),
    5: ("left", "subcortical", 14500.0),
}
# How much harder a brain's lesion border is to place, as a factor on every tracer's habitual
# boundary offset (in mm: it does not grow with the voxel size). Brain 2's large cortical lesion
# borders sulcal CSF and gliotic tissue, and where it ends is a judgement: tracers who draw a little
# outside elsewhere take in much of that rim, others leave it out. Its traced volumes then spread
# (coefficient of variation ~0.5 at full scale) as much as the paper's volume agreement implies
# (ICC 0.76 inter-rater), while Dice and Hausdorff change little.
BORDER_AMBIGUITY = {2: 5.0}
RATERS = tuple(range(1, paper.N_TRACERS + 1))
SESSIONS = (1, 2)
N_BAD_RATERS = 2


@dataclass(frozen=True)
class Habits:
    """How one tracer draws in one session (mm and probabilities)."""

    offset_mm: float  # + draws outside the lesion edge, - inside
    wander_mm: float  # amplitude of the smooth boundary error
    p_missed_slices: float
    p_extra_slice: float
    p_partial: float  # part of the lesion left out
    p_spot: float  # a dark spot elsewhere traced as lesion


def brain_name(brain: int) -> str:
    return f"b{brain:02d}"


def t1_relpath(brain: int) -> str:
    b = brain_name(brain)
    return f"{b}/{b}_T1w.nii.gz"


def mask_relpath(brain: int, rater: int, session: int) -> str:
    b = brain_name(brain)
    return f"{b}/{b}_rater-{rater:02d}_session-{session}_mask.nii.gz"


# Tracing habits.  Per tracer: a boundary offset (SD, mm) kept in both sessions (shrunk after
# feedback) plus a fresh offset each session; per session: the other error rates.  Tuned on the full
# scale against the paper's agreement figures.
OWN_OFFSET_SD = 0.9
SESSION_OFFSET_SD = {1: 0.35, 2: 0.35}
OFFSET_KEPT = {1: 1.0, 2: 0.7}  # feedback after session 1 shrinks a tracer's habitual offset
SESSION = {
    1: dict(wander_mm=1.1, p_missed_slices=0.25, p_extra_slice=0.15, p_partial=0.08, p_spot=0.17),
    2: dict(wander_mm=1.0, p_missed_slices=0.25, p_extra_slice=0.15, p_partial=0.08, p_spot=0.07),
}
BAD = dict(offset_mm=2.0, wander=1.6, p_missed_slices=0.3, p_partial=0.35)  # the two weak tracers, session 1
SPOT_DISTANCE_MM = (20.0, 80.0)  # from the lesion's edge
P_SPOT_AGAIN = 0.5  # a spot traced in session 1 is traced again in session 2
# On coarse grids a boundary error is at least a fraction of a voxel: errors in mm grow as
# voxel_mm ** this (1 at full scale), which keeps the small scale's agreement near the paper's too.
ERROR_GROWTH = 0.5


def habits(seed: int) -> dict[tuple[int, int], Habits]:
    """Every tracer's habits in each session."""
    rng = np.random.default_rng([seed, RELIABILITY_STREAM, 0])
    bad = set(int(r) for r in rng.choice(RATERS, N_BAD_RATERS, replace=False))
    out = {}
    for r in RATERS:
        own = float(rng.normal(0.0, OWN_OFFSET_SD))
        for s in SESSIONS:
            weak = r in bad and s == 1
            k = SESSION[s]
            offset = own * OFFSET_KEPT[s] + float(rng.normal(0.0, SESSION_OFFSET_SD[s]))
            if weak:
                offset += float(rng.choice([-1.0, 1.0])) * BAD["offset_mm"]
            out[(r, s)] = Habits(
                offset_mm=offset,
                wander_mm=k["wander_mm"] * (BAD["wander"] if weak else 1.0),
                p_missed_slices=k["p_missed_slices"] + (BAD["p_missed_slices"] if weak else 0.0),
                p_extra_slice=k["p_extra_slice"],
                p_partial=k["p_partial"] + (BAD["p_partial"] if weak else 0.0),
                p_spot=k["p_spot"],
            )
    return out


def _slice_axis(affine) -> int:
    """The stored axis closest to world z (tracers drew axial slices)."""
    return int(np.argmax(np.abs(np.asarray(affine)[2, :3])))


@dataclass
class Truth:
    """A training brain's true lesion, prepared for tracing: signed distance (mm, negative inside)
    to its edge on a box around it."""

    lesion: lesions.Lesion
    box: tuple
    signed: np.ndarray

    @classmethod
    def of(cls, lesion: lesions.Lesion, grid: lesions.Grid) -> Truth:
        zooms = grid.zooms
        margin = tuple(int(math.ceil(6.0 / z)) + 2 for z in zooms)
        box = tuple(
            slice(max(s.start - m, 0), min(s.stop + m, n))
            for s, m, n in zip(lesion.box, margin, grid.shape, strict=False)
        )
        local = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
        local[tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(lesion.box, box, strict=False))] = (
            lesion.raw
        )
        signed = ndi.distance_transform_edt(~local, sampling=zooms) - ndi.distance_transform_edt(local, sampling=zooms)
        return cls(lesion, box, signed.astype(np.float32))


WANDER_CLIP = 3.5  # the boundary error is clipped at this many SDs


def _drawn(signed: np.ndarray, zooms, rng: np.random.Generator, offset: float, wander: float) -> np.ndarray:
    """Voxels a tracer includes: signed distance below ``offset`` plus a smooth random error (SD
    ``wander`` mm, correlation length ~3 mm).  The error is drawn on a coarse lattice and
    interpolated only in the band of voxels it can change."""
    step = max(1, int(round(2.0 / min(zooms))))
    coarse = tuple(-(-n // step) + 1 for n in signed.shape)
    field = ndi.gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), tuple(3.0 / (z * step) for z in zooms))
    field *= np.float32(wander / (float(field.std()) + 1e-6))
    np.clip(field, -WANDER_CLIP * wander, WANDER_CLIP * wander, out=field)
    drawn = signed < offset
    band = np.nonzero(np.abs(signed - offset) <= WANDER_CLIP * wander)
    if band[0].size:
        coords = np.stack([i.astype(np.float32) / step for i in band])
        err = ndi.map_coordinates(field, coords, order=1, mode="nearest")
        drawn[band] = signed[band] < offset + err
    return drawn


def trace(truth: Truth, grid: lesions.Grid, h: Habits, rng: np.random.Generator, ambiguity: float = 1.0) -> np.ndarray:
    """One tracing of the true lesion (full-size bool mask) drawn with habits ``h`` around a border
    of the given ambiguity (:data:`BORDER_AMBIGUITY`)."""
    grow = min(grid.zooms) ** ERROR_GROWTH
    drawn = _drawn(truth.signed, grid.zooms, rng, h.offset_mm * (grow + ambiguity - 1.0), h.wander_mm * grow)
    if not drawn.any():
        drawn = truth.signed < 0
    ax = _slice_axis(grid.affine)
    extent = np.flatnonzero(drawn.any(axis=tuple(i for i in range(3) if i != ax)))
    if rng.random() < h.p_missed_slices and len(extent) > 3:
        n = int(rng.integers(1, max(2, len(extent) // 6) + 1))
        cut = extent[:n] if rng.random() < 0.5 else extent[-n:]
        idx = [slice(None)] * 3
        for k in cut:
            idx[ax] = k
            drawn[tuple(idx)] = False
    if rng.random() < h.p_extra_slice and len(extent) and 0 < extent[0] and extent[-1] < drawn.shape[ax] - 1:
        end = int(extent[0]) if rng.random() < 0.5 else int(extent[-1])
        step = -1 if end == extent[0] else 1
        src: list[slice | int] = [slice(None)] * 3
        dst: list[slice | int] = [slice(None)] * 3
        src[ax], dst[ax] = end, end + step
        drawn[tuple(dst)] |= drawn[tuple(src)]
    if rng.random() < h.p_partial:
        pts = np.argwhere(drawn)
        centre = pts.mean(axis=0)
        normal = rng.normal(size=3)
        normal /= np.linalg.norm(normal)
        proj = (pts - centre) @ normal
        keep = proj < np.quantile(proj, float(rng.uniform(0.55, 0.8)))
        drawn[tuple(pts[~keep].T)] = False
    if not drawn.any():
        drawn = truth.signed < 0
    out = np.zeros(grid.shape, dtype=bool)
    out[truth.box] = drawn
    return out


def _spot(truth: lesions.Lesion, grid: lesions.Grid, rng, brain_mask: np.ndarray):
    """A small dark spot elsewhere in the brain (:data:`SPOT_DISTANCE_MM` from the lesion) that a
    tracer may take for lesion: (box, ball crop) or ``None``."""
    pts = np.argwhere(truth.smooth) + np.array([s.start for s in truth.box])
    centre = pts.mean(axis=0)
    r_eq = lesions.equivalent_radius(len(pts) * grid.voxel_mm3)
    cands = np.argwhere(brain_mask[::4, ::4, ::4]) * 4
    d = np.linalg.norm((cands - centre) * np.asarray(grid.zooms), axis=1) - r_eq
    ok = cands[(d > SPOT_DISTANCE_MM[0]) & (d < SPOT_DISTANCE_MM[1])]
    if len(ok) == 0:
        return None
    c = ok[int(rng.integers(len(ok)))]
    radius = float(rng.uniform(2.0, 4.0))
    r_vox = [int(math.ceil(radius / z)) for z in grid.zooms]
    box = tuple(slice(max(int(c[i]) - r_vox[i], 0), min(int(c[i]) + r_vox[i] + 1, grid.shape[i])) for i in range(3))
    ii, jj, kk = np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij")
    dist = np.sqrt(sum(((g - c[i]) * grid.zooms[i]) ** 2 for i, g in enumerate((ii, jj, kk))))
    return box, dist <= max(radius, 0.6 * max(grid.zooms))


def training_brain(brain: int, seed: int, scale: str):
    """(grid, true lesion, rendered image before scanner effects, brain mask, rng) of a brain."""
    hemisphere, location, volume = BRAINS[brain]
    rng = np.random.default_rng([seed, RELIABILITY_STREAM, brain])
    angles, shift = scanners.head_position(rng)
    shape, aff = scanners.native_grid(scanners.SCANNERS[SCANNER], scale, angles, shift)
    grid = lesions.Grid(shape, aff)
    plan = LesionPlan(0, hemisphere, location, volume, True)
    for salt in range(scan.MAX_SCAN_TRIES):
        try:
            truth = lesions.grow_lesion(
                plan, grid, np.zeros(shape, bool), (seed, RELIABILITY_STREAM, brain, 0, salt), None, scale == "small"
            )
            break
        except RuntimeError:
            continue
    else:
        raise RuntimeError(f"reliability brain {brain}: no lesion fits")
    image = head.render(shape, aff, max(grid.zooms))
    return grid, truth, image, image > 0.45, rng


def tracings(brain: int, seed: int, grid, truth, brain_mask):
    """{(rater, session): full-size bool mask} of one brain.

    A tracer who took a dark spot for lesion in session 1 tends to do it again, at the same place,
    in session 2 (:data:`P_SPOT_AGAIN`): intra-rater distances stay below inter-rater ones."""
    prepared = Truth.of(truth, grid)
    all_habits = habits(seed)
    out = {}
    for r in RATERS:
        srng = np.random.default_rng([seed, RELIABILITY_STREAM, brain, r, 0])
        spot = _spot(truth, grid, srng, brain_mask)
        spotted = srng.random() < all_habits[(r, 1)].p_spot
        for s in SESSIONS:
            trng = np.random.default_rng([seed, RELIABILITY_STREAM, brain, r, s])
            mask = trace(prepared, grid, all_habits[(r, s)], trng, BORDER_AMBIGUITY.get(brain, 1.0))
            if s > 1:
                spotted = srng.random() < (P_SPOT_AGAIN if spotted else all_habits[(r, s)].p_spot)
            if spotted and spot is not None:
                box, ball = spot
                mask[box] |= ball
            out[(r, s)] = mask
    return out


def build_brain(brain: int, out: str, seed: int, scale: str) -> list[dict]:
    """Write one training brain and its 22 tracings; rows for ``tracings.csv``."""
    hemisphere, location, _ = BRAINS[brain]
    grid, truth, image, brain_mask, rng = training_brain(brain, seed, scale)
    head.paint_lesions(image, [(truth.box, truth.raw)], grid.zooms, rng)
    sc = scanners.SCANNERS[SCANNER]
    data = head.finish_native(
        image, rng, scan.noise_bank(seed, scale), gain=sc.gain, noise_sd=sc.noise, bias=sc.bias, artefact=None
    )
    t1 = writer.t1_image(data, grid.affine)
    root = Path(out) / "reliability"
    niio.save_nifti(t1, root / t1_relpath(brain))
    rows = []
    for (r, s), mask in sorted(tracings(brain, seed, grid, truth, brain_mask).items()):
        niio.save_nifti(writer.mask_image(mask, t1), root / mask_relpath(brain, r, s))
        rows.append(
            {
                "brain": brain_name(brain),
                "rater": f"{r:02d}",
                "session": s,
                "tracer": f"T{r:02d}",
                "hemisphere": hemisphere,
                "location": location,
                "volume_mm3": round(float(mask.sum()) * grid.voxel_mm3, 3),
                "file": mask_relpath(brain, r, s),
            }
        )
    return rows


TRACINGS_CSV = "tracings.csv"
README = "README.md"


def readme_text(scale: str) -> str:
    inter1, inter2 = paper.INTER_RATER_DICE[1], paper.INTER_RATER_DICE[2]
    hd1, hd2 = paper.INTER_RATER_HAUSDORFF_MM[1], paper.INTER_RATER_HAUSDORFF_MM[2]
    lines = [
        "# Tracer reliability study (synthetic)",
        "",
        f"{paper.N_TRACERS} tracers traced the same {paper.N_TRAINING_BRAINS} training brains twice, one week apart",
        "(ATLAS R1.1 data descriptor, Methods and Technical Validation).",
        "",
        "- `b0N/b0N_T1w.nii.gz`: the T1 of training brain N (1-5).",
        "- `b0N/b0N_rater-RR_session-S_mask.nii.gz`: tracing by rater RR (01-11) in session S (1 or 2);",
        "  uint8 0/1 on the grid of the T1. Rater RR is tracer `TRR` of the metadata.",
        f"- `{TRACINGS_CSV}`: one row per tracing (brain, rater, session, tracer, hemisphere, location,",
        "  traced volume in mm³, file).",
        "",
        "Brains: " + "; ".join(f"{brain_name(b)} {h} {loc} ~{v:,.0f} mm³" for b, (h, loc, v) in BRAINS.items()) + ".",
        "",
        "Agreement reported in the paper (compare with `atlas_registry.synth.reliability.agreement`):",
        f"inter-rater Dice {inter1.mean} ± {inter1.sd} (session 1), {inter2.mean} ± {inter2.sd} (session 2);",
        f"inter-rater Hausdorff {hd1.mean} ± {hd1.sd} mm and {hd2.mean} ± {hd2.sd} mm;",
        f"intra-rater Dice {paper.INTRA_RATER_DICE.mean} ± {paper.INTRA_RATER_DICE.sd}, Hausdorff "
        f"{paper.INTRA_RATER_HAUSDORFF_MM.mean} ± {paper.INTRA_RATER_HAUSDORFF_MM.sd} mm.",
        "",
        f"Scale: {scale} (voxel sizes {'3 mm' if scale == 'small' else '1 mm'}).",
        "",
    ]
    return "\n".join(lines)


def agreement(root: str | Path) -> dict:
    """Dice and Hausdorff agreement of the tracings under ``root`` (an ``OUT/reliability`` folder):
    {"inter_dice": {1: (mean, sd), 2: ...}, "inter_hd": {...}, "intra_dice": (mean, sd),
    "intra_hd": (mean, sd)} over all pairs, as the Technical Validation computes them."""
    root = Path(root)
    loaded = {}
    for b in BRAINS:
        for r in RATERS:
            for s in SESSIONS:
                img = niio.load(root / mask_relpath(b, r, s))
                loaded[(b, r, s)] = (np.asarray(img.dataobj) > 0, img.affine)
    inter_d: dict[int, list[float]] = {s: [] for s in SESSIONS}
    inter_h: dict[int, list[float]] = {s: [] for s in SESSIONS}
    intra_d, intra_h = [], []
    for b in BRAINS:
        for s in SESSIONS:
            for i, r1 in enumerate(RATERS):
                for r2 in RATERS[i + 1 :]:
                    (a, aff), (c, _) = loaded[(b, r1, s)], loaded[(b, r2, s)]
                    inter_d[s].append(masks.dice(a, c))
                    inter_h[s].append(masks.hausdorff_mm(a, c, aff))
        for r in RATERS:
            (a, aff), (c, _) = loaded[(b, r, 1)], loaded[(b, r, 2)]
            intra_d.append(masks.dice(a, c))
            intra_h.append(masks.hausdorff_mm(a, c, aff))

    def ms(v):
        v = np.asarray(v, dtype=float)
        return float(v.mean()), float(v.std(ddof=1))

    return {
        "inter_dice": {s: ms(v) for s, v in inter_d.items()},
        "inter_hd": {s: ms(v) for s, v in inter_h.items()},
        "intra_dice": ms(intra_d),
        "intra_hd": ms(intra_h),
    }
