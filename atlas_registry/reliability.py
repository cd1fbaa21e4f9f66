"""Inter- and intra-rater reliability of lesion tracings, as the data descriptor's Technical
Validation reports it.

Input layout: ``DIR/<brain>/<brain>_rater-<RR>_session-<S>_mask.nii.gz`` (the training set: 5 brains
traced by 11 raters in 2 sessions a week apart; any number of brains, raters and sessions works,
and missing tracings are skipped).

Measures:

* Dice coefficient DC = 2|X∩Y| / (|X|+|Y|) and Hausdorff distance HD (mm) between the surface
  points of two masks (voxels with a 6-neighbour outside the mask), as
  :func:`atlas_registry.masks.dice` and :func:`atlas_registry.masks.hausdorff_mm` define them.
* Inter-rater, per session: each rater's mask compared with every other rater's mask of the same
  brain, averaged per rater and brain; reported as mean ± SD over (brain, rater).
* Intra-rater: each rater's first session against the second, per brain; mean ± SD over
  (brain, rater).
* Volume agreement: intraclass correlation ICC(2,1) (Shrout & Fleiss: two-way random effects,
  absolute agreement, single rater) of the lesion volumes over the brains. Inter-rater: for each
  rater and session, ICC of that rater with each other rater, averaged per rater; mean ± SD over
  (rater, session). Intra-rater: per rater, ICC of session 1 with session 2; mean ± SD over raters.

Speed: masks of a brain are cropped to the bounding box of all its tracings, and the distance
transform to each mask's surface is computed once per mask (not once per pair), so HD of a pair
is two lookups.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AtlasError

NAME_RE = re.compile(
    r"^(?P<brain>[A-Za-z0-9]+)_rater-(?P<rater>[A-Za-z0-9]+)_session-(?P<session>[A-Za-z0-9]+)_mask\.nii(?:\.gz)?$"
)
ICC_NAME = "ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979)"


@dataclass(frozen=True)
class Tracings:
    root: Path
    paths: dict[tuple[str, str, str], Path]  # (brain, rater, session) -> file

    @property
    def brains(self) -> list[str]:
        return sorted({b for b, _, _ in self.paths})

    @property
    def raters(self) -> list[str]:
        return sorted({r for _, r, _ in self.paths})

    @property
    def sessions(self) -> list[str]:
        return sorted({s for _, _, s in self.paths}, key=_natural)


def _natural(s: str):
    return (0, int(s), s) if s.isdigit() else (1, 0, s)


def discover(root: str | Path) -> Tracings:
    """Find the tracings under ``root`` (``<brain>/<brain>_rater-RR_session-S_mask.nii.gz``)."""
    root = Path(root)
    if not root.is_dir():
        raise AtlasError("RATER001", f"{root} is not a folder of tracings")
    paths = {}
    for p in sorted(root.rglob("*_mask.nii*")):
        m = NAME_RE.match(p.name)
        if m:
            paths[(m["brain"], m["rater"], m["session"])] = p
    if not paths:
        raise AtlasError("RATER001", f"no tracings named <brain>_rater-<RR>_session-<S>_mask.nii.gz under {root}")
    return Tracings(root, paths)


# ---------------------------------------------------------------------------------------------
# Intraclass correlation


def _anova(y: np.ndarray) -> tuple[float, float, float, int, int]:
    """Mean squares of targets (rows), raters (columns) and error of an n x k matrix."""
    n, k = y.shape
    grand = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    msr = k * ((rows - grand) ** 2).sum() / (n - 1)
    msc = n * ((cols - grand) ** 2).sum() / (k - 1)
    resid = y - rows[:, None] - cols[None, :] + grand
    mse = (resid**2).sum() / ((n - 1) * (k - 1))
    return msr, msc, mse, n, k


def icc_2_1(y) -> float:
    """ICC(2,1) of an n targets x k raters matrix (NaN when undefined)."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        return math.nan
    msr, msc, mse, n, k = _anova(y)
    den = msr + (k - 1) * mse + k * (msc - mse) / n
    return float((msr - mse) / den) if den > 0 else math.nan


def icc_3_1(y) -> float:
    """ICC(3,1) (two-way mixed, consistency, single rater), for comparison."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        return math.nan
    msr, _msc, mse, _n, k = _anova(y)
    den = msr + (k - 1) * mse
    return float((msr - mse) / den) if den > 0 else math.nan


# ---------------------------------------------------------------------------------------------
# Masks of one brain, cropped, with their surface distance maps


@dataclass
class _Mask:
    crop: np.ndarray  # bool, on the brain's common crop
    surface: np.ndarray  # bool
    to_surface: np.ndarray | None  # mm from each voxel to the nearest surface voxel (None: empty mask)
    volume_mm3: float


def _load_brain(paths: dict[tuple[str, str], Path]) -> tuple[dict[tuple[str, str], _Mask], tuple[float, float, float]]:
    """Load the masks of one brain ((rater, session) -> file) onto their common bounding box."""
    from scipy import ndimage as ndi

    from . import masks, niio

    loaded: dict[tuple[str, str], tuple[tuple[slice, ...] | None, np.ndarray | None]] = {}
    shape: tuple[int, ...] | None = None
    zooms: tuple[float, float, float] | None = None
    for key, path in sorted(paths.items()):
        img = niio.load(path)
        data = np.asanyarray(img.dataobj) > 0
        zx, zy, zz = (float(v) for v in img.header.get_zooms()[:3])
        z = (zx, zy, zz)
        if shape is None or zooms is None:
            shape, zooms = data.shape, z
        elif data.shape != shape or not np.allclose(z, zooms, atol=1e-4):
            raise AtlasError(
                "RATER002", f"not on the grid of the brain's other tracings ({data.shape} vs {shape})", path=str(path)
            )
        box = masks.bbox(data, 0)
        loaded[key] = (box, data[box].copy() if box is not None else None)
    assert shape is not None and zooms is not None  # paths holds at least one tracing
    boxes = [b for b, _ in loaded.values() if b is not None]
    lo = [max(0, min(b[i].start for b in boxes) - 1) if boxes else 0 for i in range(3)]
    hi = [min(shape[i], max(b[i].stop for b in boxes) + 1) if boxes else 1 for i in range(3)]
    voxel = float(np.prod(zooms))
    out = {}
    for key, (box, part) in loaded.items():
        crop = np.zeros([h - low for low, h in zip(lo, hi, strict=False)], bool)
        if box is not None:
            crop[tuple(slice(b.start - low, b.stop - low) for b, low in zip(box, lo, strict=False))] = part
        surf = masks.surface(crop)
        dist = ndi.distance_transform_edt(~surf, sampling=zooms) if surf.any() else None
        out[key] = _Mask(crop, surf, dist, float(crop.sum()) * voxel)
    return out, zooms


def _hausdorff(a: _Mask, b: _Mask) -> float:
    """As :func:`atlas_registry.masks.hausdorff_mm`: 0 when both are empty, inf when one is."""
    if a.to_surface is None or b.to_surface is None:
        return 0.0 if a.to_surface is None and b.to_surface is None else math.inf
    return float(max(b.to_surface[a.surface].max(), a.to_surface[b.surface].max()))


def _pair(a: _Mask, b: _Mask) -> tuple[float, float]:
    from . import masks

    return masks.dice(a.crop, b.crop), _hausdorff(a, b)


# ---------------------------------------------------------------------------------------------
# The whole analysis


def _mean_sd(values) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    return {
        "n": int(len(v)),
        "mean": float(v.mean()) if len(v) else None,
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
    }


def _paper() -> dict:
    from . import paper

    def ms(x) -> dict:
        return {"mean": x.mean, "sd": x.sd}

    return {
        "inter_dice": {k: ms(v) for k, v in paper.INTER_RATER_DICE.items()},
        "inter_hd_mm": {k: ms(v) for k, v in paper.INTER_RATER_HAUSDORFF_MM.items()},
        "intra_dice": ms(paper.INTRA_RATER_DICE),
        "intra_hd_mm": ms(paper.INTRA_RATER_HAUSDORFF_MM),
        "volume_icc_inter": ms(paper.VOLUME_ICC_INTER),
        "volume_icc_intra": ms(paper.VOLUME_ICC_INTRA),
    }


def analyze(root: str | Path) -> dict:
    """Reliability of the tracings under ``root``: see the module docstring for the definitions."""
    t = discover(root)
    sessions = t.sessions
    inter: dict[str, dict[str, list[float]]] = {s: {"dice": [], "hd": []} for s in sessions}
    intra: dict[str, list[float]] = {"dice": [], "hd": []}
    volumes: dict[tuple[str, str, str], float] = {}
    for brain in t.brains:
        masks_b, _zooms = _load_brain({(r, s): p for (b, r, s), p in t.paths.items() if b == brain})
        volumes.update({(brain, r, s): m.volume_mm3 for (r, s), m in masks_b.items()})
        for s in sessions:
            raters = sorted(r for r, ss in masks_b if ss == s)
            pair = {}
            for i, r1 in enumerate(raters):
                for r2 in raters[i + 1 :]:
                    pair[r1, r2] = pair[r2, r1] = _pair(masks_b[r1, s], masks_b[r2, s])
            for r in raters:
                others = [pair[r, o] for o in raters if o != r]
                if others:
                    inter[s]["dice"].append(float(np.mean([d for d, _ in others])))
                    finite = [h for _, h in others if math.isfinite(h)]
                    inter[s]["hd"].append(float(np.mean(finite)) if finite else math.nan)
        if len(sessions) >= 2:
            s1, s2 = sessions[:2]
            for r in t.raters:
                if (r, s1) in masks_b and (r, s2) in masks_b:
                    d, h = _pair(masks_b[r, s1], masks_b[r, s2])
                    intra["dice"].append(d)
                    intra["hd"].append(h)

    icc_inter: dict[str, list[float]] = {s: [] for s in sessions}
    for s in sessions:
        for r in t.raters:
            vals = []
            for o in t.raters:
                if o == r:
                    continue
                rows = [
                    [volumes[b, r, s], volumes[b, o, s]]
                    for b in t.brains
                    if (b, r, s) in volumes and (b, o, s) in volumes
                ]
                vals.append(icc_2_1(rows))
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                icc_inter[s].append(float(np.mean(vals)))
    icc_intra = []
    if len(sessions) >= 2:
        s1, s2 = sessions[:2]
        for r in t.raters:
            rows = [
                [volumes[b, r, s1], volumes[b, r, s2]]
                for b in t.brains
                if (b, r, s1) in volumes and (b, r, s2) in volumes
            ]
            icc_intra.append(icc_2_1(rows))

    paper = _paper()
    measures = []
    for i, s in enumerate(sessions):
        key = i + 1
        measures.append(
            {"measure": "inter_dice", "session": s, **_mean_sd(inter[s]["dice"]), "paper": paper["inter_dice"].get(key)}
        )
        measures.append(
            {"measure": "inter_hd_mm", "session": s, **_mean_sd(inter[s]["hd"]), "paper": paper["inter_hd_mm"].get(key)}
        )
    if len(sessions) >= 2:
        measures.append(
            {
                "measure": "intra_dice",
                "session": f"{sessions[0]}-{sessions[1]}",
                **_mean_sd(intra["dice"]),
                "paper": paper["intra_dice"],
            }
        )
        measures.append(
            {
                "measure": "intra_hd_mm",
                "session": f"{sessions[0]}-{sessions[1]}",
                **_mean_sd(intra["hd"]),
                "paper": paper["intra_hd_mm"],
            }
        )
    measures.append(
        {
            "measure": "volume_icc_inter",
            "session": "all",
            **_mean_sd([v for s in sessions for v in icc_inter[s]]),
            "paper": paper["volume_icc_inter"],
        }
    )
    for s in sessions:
        measures.append({"measure": "volume_icc_inter", "session": s, **_mean_sd(icc_inter[s]), "paper": None})
    if len(sessions) >= 2:
        measures.append(
            {
                "measure": "volume_icc_intra",
                "session": f"{sessions[0]}-{sessions[1]}",
                **_mean_sd(icc_intra),
                "paper": paper["volume_icc_intra"],
            }
        )
    return {
        "dir": str(t.root),
        "brains": t.brains,
        "raters": t.raters,
        "sessions": sessions,
        "n_tracings": len(t.paths),
        "icc": ICC_NAME,
        "measures": measures,
        "volumes": [
            {"brain": b, "rater": r, "session": s, "volume_mm3": v} for (b, r, s), v in sorted(volumes.items())
        ],
    }


_LABELS = {
    "inter_dice": "inter-rater Dice",
    "inter_hd_mm": "inter-rater Hausdorff (mm)",
    "intra_dice": "intra-rater Dice",
    "intra_hd_mm": "intra-rater Hausdorff (mm)",
    "volume_icc_inter": "volume ICC(2,1), inter-rater",
    "volume_icc_intra": "volume ICC(2,1), intra-rater",
}


def _ms(d: dict | None) -> str:
    if not d or d.get("mean") is None:
        return "-"
    sd = d.get("sd")
    return f"{d['mean']:.2f} ± {sd:.2f}" if sd is not None else f"{d['mean']:.2f}"


def format_text(result: dict) -> str:
    """The paper's form: mean ± SD per measure, beside the paper's figure."""
    head = (
        f"Rater reliability: {len(result['brains'])} brains x {len(result['raters'])} raters x "
        f"{len(result['sessions'])} sessions ({result['n_tracings']} tracings) in {result['dir']}"
    )
    rows = [("measure", "session", "n", "this data", "paper (Liew et al. 2018)")]
    for m in result["measures"]:
        rows.append((_LABELS[m["measure"]], str(m["session"]), str(m["n"]), _ms(m), _ms(m["paper"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head, f"Volume agreement: {result['icc']}", ""]
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
