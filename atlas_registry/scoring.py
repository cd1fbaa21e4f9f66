"""Scoring segmentation submissions against a release's withheld masks (the test and hidden sets of
:mod:`atlas_registry.splits`), as the ATLAS R2.0 challenge scored them.

A submission is a folder of predicted lesion masks, one per scan of the split in the standardized
subset, named as the BIDS archive names the scan's union mask
(``sub-<L>_ses-<n>_space-<space>_label-L_desc-T1lesion_mask.nii.gz``) or by the public scan label
(``sub-<L>_ses-<n>.nii.gz``), on the grid of the scan's standardized T1, with values 0 and 1. The truth
is the union of the scan's standard-space lesion masks as the release recorded them, read from the object
store; nothing is written.

Metrics per scan (:func:`scan_metrics`):

* ``dice``: 2|T∩P| / (|T| + |P|); 1 when both masks are empty;
* ``volume_diff_voxels``, ``volume_diff_mm3``: | |P| − |T| |;
* ``lesion_count_diff``: | components(P) − components(T) |, 26-connected
  (``scipy.ndimage.label`` with a 3×3×3 structure);
* ``lesion_f1``: lesion-wise F1 = 2TP / (2TP + FP + FN): a true lesion (component of T) is detected (TP)
  when at least one predicted voxel lies in it, else it is a FN; a predicted component with no voxel in
  any true lesion is a FP; 1 when both masks are empty.

The summary of a split is the mean of each metric over its scans. A leaderboard ranks several submissions
by their mean rank over the metrics (:data:`RANKED`; ties share the average rank), each split's ranks
weighted by :data:`WEIGHTS` (the hidden set 4×, to discourage tuning on the public test set).

Rule codes: ``SCORE001`` the release cannot be scored (unknown, not built, no splits, no scans in the split's
standardized subset), ``SCORE002`` a scan of the split has no prediction, ``SCORE003`` a file that is not the
prediction of one scan of the split (unknown name, another scan, twice the same scan), ``SCORE004`` a file
that cannot be read as NIfTI, ``SCORE005`` a prediction not on the grid of the scan's T1 (shape or affine),
``SCORE006`` values other than 0 and 1, ``SCORE007`` the submission is not a folder, ``SCORE008`` ``--html``
names a folder.

:func:`leaderboard_html` draws the leaderboard as a static page in the style of the release report.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .config import Workspace
from .errors import AtlasError

STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)
METRICS = ("dice", "volume_diff_mm3", "volume_diff_voxels", "lesion_count_diff", "lesion_f1")
RANKED = {"dice": True, "volume_diff_mm3": False, "lesion_count_diff": False, "lesion_f1": True}  # higher better?
WEIGHTS = {"test": 1.0, "hidden": 4.0}
AFFINE_TOLERANCE_MM = 1e-3
_NAME = re.compile(r"^(sub-[a-z0-9]+_ses-[0-9]+)(?:_[A-Za-z0-9_-]*)?\.nii(?:\.gz)?$")


# -- metrics -------------------------------------------------------------------------------------


BLOCK = 8  # edge (voxels) of the blocks that split a mask into regions labelled apart


def _coords(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """``np.nonzero(mask)`` by way of the flat index (several times faster on a whole grid; nibabel's
    arrays are in Fortran order, read as they lie in memory). The order of the voxels is not kept."""
    if mask.flags.f_contiguous and not mask.flags.c_contiguous:
        return np.unravel_index(np.flatnonzero(mask.ravel(order="F")), mask.shape, order="F")
    return np.unravel_index(np.flatnonzero(mask.ravel(order="C")), mask.shape, order="C")


def _regions(coords: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """Disjoint boxes that hold every voxel (``coords``, as ``np.nonzero`` gives them) of a mask on a grid
    of ``shape``, each 26-connected component of the mask wholly inside one box: the bounding boxes of the
    26-connected groups of occupied BLOCK^3 blocks (two voxels that touch lie in the same or in touching
    blocks), overlapping boxes merged. Labelling each box apart costs what the lesions' boxes hold, not
    the box of a far false positive and the lesion together."""
    if coords[0].size == 0:
        return []
    coarse = np.zeros(tuple(-(-n // BLOCK) for n in shape), bool)
    coarse[tuple(c // BLOCK for c in coords)] = True
    lc, _ = ndi.label(coarse, structure=STRUCTURE_26)
    boxes = [[(sl.start, sl.stop) for sl in obj] for obj in ndi.find_objects(lc) if obj is not None]
    merged = True
    while merged:  # boxes of different groups may overlap: merge them, so no component is counted twice
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if all(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in zip(boxes[i], boxes[j], strict=True)):
                    boxes[i] = [
                        (min(a0, b0), max(a1, b1)) for (a0, a1), (b0, b1) in zip(boxes[i], boxes[j], strict=True)
                    ]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(slice(a0 * BLOCK, min(a1 * BLOCK, n)) for (a0, a1), n in zip(b, shape, strict=True)) for b in boxes]


def _labelled(mask: np.ndarray, regions) -> list[tuple[tuple[slice, ...], np.ndarray, int]]:
    """(box, labels inside it, number of components) of every region of ``mask`` (26-connected)."""
    out = []
    for box in regions:
        labels, n = ndi.label(mask[box], structure=STRUCTURE_26)
        out.append((box, labels, int(n)))
    return out


@dataclass(frozen=True)
class Crop:
    """A truth mask kept small: its grid (shape, affine), its voxels inside their bounding box, and its
    lesions (26-connected components) labelled region by region, on the grid's coordinates."""

    shape: tuple[int, ...]
    affine: np.ndarray
    box: tuple[slice, ...] | None
    data: np.ndarray | None
    lesions: tuple = ()  # (box on the grid, labels, n) per region
    voxels: int = 0

    @classmethod
    def of(cls, mask: np.ndarray, affine: np.ndarray) -> Crop:
        coords = _coords(mask)
        if coords[0].size == 0:
            return cls(tuple(mask.shape), affine, None, None)
        box = tuple(slice(int(c.min()), int(c.max()) + 1) for c in coords)
        data = mask[box].copy()
        local = tuple(c - b.start for c, b in zip(coords, box, strict=True))
        lesions = tuple(
            (tuple(slice(r.start + b.start, r.stop + b.start) for r, b in zip(reg, box, strict=True)), labels, n)
            for reg, labels, n in _labelled(data, _regions(local, data.shape))
        )
        return cls(tuple(mask.shape), affine, box, data, lesions, int(coords[0].size))

    def within(self, box: tuple[slice, ...]) -> np.ndarray:
        """The truth inside ``box`` (grid coordinates), as a boolean array of the box's shape."""
        out = np.zeros(tuple(b.stop - b.start for b in box), bool)
        if self.box is None or self.data is None:
            return out
        lo = [max(b.start, t.start) for b, t in zip(box, self.box, strict=True)]
        hi = [min(b.stop, t.stop) for b, t in zip(box, self.box, strict=True)]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            return out
        dst = tuple(slice(low - b.start, h - b.start) for low, h, b in zip(lo, hi, box, strict=True))
        src = tuple(slice(low - t.start, h - t.start) for low, h, t in zip(lo, hi, self.box, strict=True))
        out[dst] = self.data[src]
        return out


_PERFECT = {"dice": 1.0, "volume_diff_mm3": 0.0, "volume_diff_voxels": 0, "lesion_count_diff": 0, "lesion_f1": 1.0}


def scan_metrics(truth: np.ndarray, pred: np.ndarray, voxel_mm3: float) -> dict[str, float]:
    """The metrics of one prediction (boolean arrays of one shape)."""
    return crop_metrics(Crop.of(truth, np.eye(4)), pred, voxel_mm3)


def crop_metrics(truth: Crop, pred: np.ndarray, voxel_mm3: float) -> dict[str, float]:
    """The metrics of one prediction (a boolean array on the truth's grid) against a cropped truth.
    Lesions of either are labelled region by region (:func:`_regions`), never over the whole grid."""
    coords = _coords(pred)
    n_p, n_t = int(coords[0].size), truth.voxels
    if n_p == 0 and n_t == 0:
        return dict(_PERFECT)
    inter = 0 if truth.box is None or truth.data is None else int(np.count_nonzero(pred[truth.box] & truth.data))
    dice = 2.0 * inter / (n_t + n_p)
    n_true = sum(n for _, _, n in truth.lesions)
    tp = 0  # true lesions with a predicted voxel in them
    for box, labels, _ in truth.lesions:
        tp += int(np.count_nonzero(np.unique(labels[pred[box] & (labels > 0)])))
    n_pred, fp = 0, 0  # predicted components, and those in no true lesion
    for box, labels, n in _labelled(pred, _regions(coords, pred.shape)):
        n_pred += n
        fp += n - int(np.count_nonzero(np.unique(labels[truth.within(box) & (labels > 0)])))
    fn = n_true - tp
    f1 = 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2.0 * tp + fp + fn)
    diff = abs(n_p - n_t)
    return {
        "dice": dice,
        "volume_diff_mm3": diff * voxel_mm3,
        "volume_diff_voxels": diff,
        "lesion_count_diff": abs(n_pred - n_true),
        "lesion_f1": f1,
    }


def union_mask_name(public_scan: str, space: str) -> str:
    """The file name of a scan's union mask in the BIDS archive (``export.bids.mask_path`` with desc
    ``T1lesion``; not imported from there, which would load the archive writers' stack)."""
    return f"{public_scan}_space-{space}_label-L_desc-T1lesion_mask.nii.gz"


# -- the truth -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """A scan of the split to score: its public names and where its standard-space masks are."""

    public_scan: str  # sub-<L>_ses-<n>
    bids_name: str  # file name of its union mask in the BIDS archive
    masks: tuple[str, ...]  # SHA-256 of its standard-space lesion masks
    shape: tuple[int, int, int]
    t1: str = ""  # SHA-256 of its standardized T1 (the grid of a scan without lesions)


def truths(ws: Workspace, release: str, split: str) -> tuple[str, list[Truth]]:
    """(release name, the scans of ``split`` in the release's standardized subset), as recorded."""
    from sqlmodel import select

    from . import db
    from .export.view import recorded_view
    from .models import Release
    from .release_spec import parse_spec
    from .tracker import require_registry

    require_registry(ws)
    with db.session(ws) as s:
        rel = s.exec(select(Release).where(Release.name == release)).first()
        if rel is None or rel.status == "draft" or rel.manifest_sha256 is None:
            raise AtlasError("SCORE001", f"release {release!r} has not been built: nothing to score against")
        spec = parse_spec(rel.spec, rel.name)
        if spec.splits is None:
            raise AtlasError("SCORE001", f"release {release} has no benchmark splits ([splits] in its specification)")
        view = recorded_view(s, spec, rel)
    space = spec.standard.space
    out = []
    for sc in view.scans:
        if sc.split != split or not sc.in_standard:
            continue
        masks = tuple(les.standard.sha256 for les in sc.lesions if les.standard is not None)
        shape = sc.t1_standard.shape if sc.t1_standard else (0, 0, 0)
        t1 = sc.t1_standard.sha256 if sc.t1_standard else ""
        out.append(Truth(sc.public_scan, union_mask_name(sc.public_scan, space), masks, shape, t1))
    if not out:
        raise AtlasError("SCORE001", f"release {release} has no {split} scans in its standardized subset")
    return rel.name, sorted(out, key=lambda t: t.public_scan)


def _truth_array(store, t: Truth) -> Crop:
    """The union of the scan's lesion masks, cropped."""
    from . import niio

    union = None
    affine = None
    for sha in t.masks:
        img = niio.decode(store.get(sha), sha)
        data = np.asanyarray(img.dataobj) > 0
        union = data if union is None else union | data
        affine = img.affine
    if union is None:  # a scan without lesions: an empty mask on the grid of its T1
        img = niio.decode(store.get(t.t1), t.t1)
        union, affine = np.zeros(img.shape[:3], bool), img.affine
    return Crop.of(union, np.asarray(affine))


# -- a submission ----------------------------------------------------------------------------------


def match_files(folder: Path, wanted: dict[str, Truth], ignore: frozenset[str] = frozenset()) -> dict[str, Path]:
    """public scan -> prediction file; SCORE002/003/007 for a folder that is not one file per scan.
    Files of the scans in ``ignore`` (another split scored from the same folder) are passed over."""
    if not folder.is_dir():
        raise AtlasError("SCORE007", "the submission is not a folder of predicted masks", path=str(folder))
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        m = _NAME.match(p.name)
        if m is None or not p.is_file():
            raise AtlasError(
                "SCORE003",
                "not a predicted mask: name it as the BIDS archive names the scan's union mask, "
                "or sub-<label>_ses-<n>.nii.gz",
                path=str(p),
            )
        scan = m.group(1)
        if scan in ignore:
            continue
        if scan not in wanted:
            raise AtlasError("SCORE003", f"{scan} is not a scan of the split being scored", path=str(p))
        if scan in found:
            raise AtlasError(
                "SCORE003", f"a second prediction for {scan} (the first is {found[scan].name})", path=str(p)
            )
        found[scan] = p
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise AtlasError(
            "SCORE002",
            f"{len(missing)} scan(s) of the split have no prediction; first: {wanted[missing[0]].bids_name}",
            path=str(folder / wanted[missing[0]].bids_name),
        )
    return found


def read_prediction(path: Path, shape, affine) -> np.ndarray:
    """A predicted mask as a boolean array; SCORE004/005/006. Read with the registry's strict reader
    (:func:`niio.decode`: bounded inflation, so a submitted file cannot make it hold more than its header
    declares), whose refusals become SCORE004."""
    from . import niio

    try:
        img: Any = niio.decode(path.read_bytes(), str(path))
        data = np.asanyarray(img.dataobj)
    except AtlasError as e:
        raise AtlasError(
            "SCORE004", f"cannot read as NIfTI ({e.code}): {e.args[0] if e.args else e}", path=str(path)
        ) from None
    except OSError as e:
        raise AtlasError("SCORE004", f"cannot read: {e.strerror or e}", path=str(path)) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.shape != tuple(shape):
        raise AtlasError(
            "SCORE005", f"shape {data.shape} is not the grid of the scan's T1 {tuple(shape)}", path=str(path)
        )
    if affine is not None and not np.allclose(img.affine, affine, atol=AFFINE_TOLERANCE_MM):
        raise AtlasError("SCORE005", "the affine is not that of the scan's T1 (another space or grid)", path=str(path))
    if data.dtype == bool:
        return data
    bad = (data != 0) & (data != 1)
    if bad.any():
        v = data[bad].flat[0]
        raise AtlasError("SCORE006", f"values other than 0 and 1 (e.g. {v!r}): a mask is binary", path=str(path))
    return data != 0


@dataclass
class SplitScore:
    split: str
    scans: list[dict]  # one row per scan: public scan, file, metrics
    summary: dict[str, float]

    def to_dict(self) -> dict:
        return {"split": self.split, "n_scans": len(self.scans), "summary": self.summary, "scans": self.scans}


@dataclass
class Submission:
    name: str
    path: str
    splits: dict[str, SplitScore] = field(default_factory=dict)
    mean_rank: float | None = None
    rank: int | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "rank": self.rank,
            "mean_rank": self.mean_rank,
            "splits": {k: v.to_dict() for k, v in self.splits.items()},
        }


@dataclass
class ScoreResult:
    release: str
    splits: list[str]
    submissions: list[Submission]
    seconds: float

    def to_dict(self) -> dict:
        return {
            "release": self.release,
            "splits": self.splits,
            "metrics": list(METRICS),
            "ranked_by": {k: "higher" if v else "lower" for k, v in RANKED.items()},
            "weights": {k: WEIGHTS[k] for k in self.splits},
            "submissions": [s.to_dict() for s in self.submissions],
            "seconds": self.seconds,
        }

    def to_text(self) -> str:
        out = [f"Scores against release {self.release} ({', '.join(self.splits)})"]
        head = f"  {'rank':>4} {'submission':24s} {'split':7s} {'scans':>5} " + " ".join(f"{m:>18s}" for m in METRICS)
        out.append(head)
        for sub in self.submissions:
            for k, sp in sub.splits.items():
                rank = f"{sub.rank}" if sub.rank is not None else "-"
                cells = " ".join(f"{sp.summary[m]:18.4f}" for m in METRICS)
                out.append(f"  {rank:>4} {sub.name[:24]:24s} {k:7s} {len(sp.scans):5d} {cells}")
            if sub.mean_rank is not None and len(self.submissions) > 1:
                out.append(f"       mean rank {sub.mean_rank:.3f}")
        return "\n".join(out)


def _summary(rows: list[dict]) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) if rows else math.nan for m in METRICS}


def score_split(ws: Workspace, folder: Path, release: str, split: str, *, _cache: dict | None = None) -> SplitScore:
    """Score one submission folder on one split."""
    from .objstore import open_store

    _, ts = truths(ws, release, split)
    return _score(open_store(ws), Path(folder), ts, split, {} if _cache is None else _cache)


def _score(
    store, folder: Path, ts: list[Truth], split: str, cache: dict, ignore: frozenset[str] = frozenset()
) -> SplitScore:
    wanted = {t.public_scan: t for t in ts}
    files = match_files(folder, wanted, ignore)
    rows = []
    for t in ts:
        truth = cache.get(t.public_scan)
        if truth is None:
            truth = cache[t.public_scan] = _truth_array(store, t)
        path = files[t.public_scan]
        pred = read_prediction(path, truth.shape, truth.affine)
        vox = float(abs(np.linalg.det(truth.affine[:3, :3])))
        rows.append({"scan": t.public_scan, "file": path.name, **crop_metrics(truth, pred, vox)})
    return SplitScore(split, rows, _summary(rows))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values`` (smallest first), ties sharing their average rank."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        below, same = np.sum(values < v), np.sum(values == v)
        out[i] = below + (same + 1) / 2
    return out


def rank(submissions: list[Submission]) -> None:
    """Rank submissions by their weighted mean rank over the metrics and splits (1 = best)."""
    if not submissions:
        return
    total = np.zeros(len(submissions))
    weight = 0.0
    for split in submissions[0].splits:
        for metric, higher in RANKED.items():
            vals = np.array([s.splits[split].summary[metric] for s in submissions], dtype=float)
            r = _ranks(-vals if higher else vals)
            total += WEIGHTS.get(split, 1.0) * r
            weight += WEIGHTS.get(split, 1.0)
    for s, t in zip(submissions, total, strict=True):
        s.mean_rank = round(float(t / weight), 6)
    order = sorted(range(len(submissions)), key=lambda i: (submissions[i].mean_rank, submissions[i].name))
    place = 0
    last = None
    for n, i in enumerate(order, start=1):
        if submissions[i].mean_rank != last:
            place, last = n, submissions[i].mean_rank
        submissions[i].rank = place
    submissions.sort(key=lambda s: (s.rank, s.name))


def score(ws: Workspace, folders: list[Path], release: str, splits: list[str]) -> ScoreResult:
    """Score each submission folder on each split (a folder holds the predictions of every split
    asked), and rank them."""
    from .objstore import open_store

    started = time.perf_counter()
    store = open_store(ws)
    other = [k for k in splits if k not in WEIGHTS]
    if other:
        raise AtlasError("SCORE001", f"split {other[0]!r} is not withheld: only test and hidden scans are scored")
    splits = sorted(dict.fromkeys(splits), key=lambda k: ("test", "hidden").index(k))
    wanted: dict[str, list[Truth]] = {}
    name = release
    for k in splits:
        name, wanted[k] = truths(ws, release, k)
    cache: dict = {}  # the truths, cropped to their lesions, are read once for a leaderboard
    subs = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise AtlasError("SCORE007", "the submission is not a folder of predicted masks", path=str(folder))
        sub = Submission(folder.name, str(folder))
        for k in splits:  # one folder holds the predictions of every split asked: each scores its own files
            others = frozenset(t.public_scan for j in splits if j != k for t in wanted[j])
            sub.splits[k] = _score(store, folder, wanted[k], k, cache, others)
        subs.append(sub)
    rank(subs)
    return ScoreResult(name, splits, subs, round(time.perf_counter() - started, 3))


# -- the leaderboard page ----------------------------------------------------------------------------

_LABELS = {
    "dice": "Dice",
    "volume_diff_mm3": "Volume diff. (mm³)",
    "volume_diff_voxels": "Volume diff. (voxels)",
    "lesion_count_diff": "Lesion count diff.",
    "lesion_f1": "Lesion-wise F1",
}


def leaderboard_html(result: ScoreResult) -> str:
    """The leaderboard as one static HTML page in the style of the release report (no script, nothing
    loaded from elsewhere, all text escaped)."""
    from . import __version__
    from .report import CSS, esc

    shown = [m for m in METRICS if m != "volume_diff_voxels"]
    head = ['<th rowspan="2">Rank</th>', '<th rowspan="2" class="l">Submission</th>', '<th rowspan="2">Mean rank</th>']
    sub_head = []
    for split in result.splits:
        w = WEIGHTS[split]
        head.append(f'<th colspan="{len(shown) + 1}" class="group">{esc(split)} (weight {w:g})</th>')
        sub_head += ["<th>Scans</th>"] + [f"<th>{esc(_LABELS[m])}</th>" for m in shown]
    rows = []
    for sub in result.submissions:
        cells = [
            f"<td>{sub.rank}</td>",
            f'<th class="l">{esc(sub.name)}</th>',
            f"<td>{sub.mean_rank:.2f}</td>" if sub.mean_rank is not None else "<td>–</td>",
        ]
        for split in result.splits:
            sp = sub.splits[split]
            cells.append(f"<td>{len(sp.scans)}</td>")
            for m in shown:
                v = sp.summary[m]
                cells.append(f"<td>{v:,.1f}</td>" if m == "volume_diff_mm3" else f"<td>{v:.3f}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    ranked = ", ".join(f"{_LABELS[m]} ({'higher' if up else 'lower'} is better)" for m, up in RANKED.items())
    body = [
        '<header class="masthead">',
        '<p class="kicker">Segmentation leaderboard</p>',
        f"<h1>Release {esc(result.release)}</h1>",
        f'<p class="subtitle">{len(result.submissions)} submission(s) scored on the withheld masks of the '
        f"{esc(' and '.join(result.splits))} set(s)</p></header>",
        '<table class="data list paper"><caption><b>Leaderboard.</b> Means over the scans of each set. Ranked by '
        f"the mean of the ranks in {esc(ranked)}, each set's ranks weighted as shown (ties share the average "
        "rank).</caption>",
        f"<thead><tr>{''.join(head)}</tr><tr>{''.join(sub_head)}</tr></thead>",
        f"<tbody>{''.join(rows)}</tbody></table>",
        '<p class="hint">Dice is 1 for an empty prediction of an empty mask. A true lesion (26-connected '
        "component) is detected when a predicted voxel lies in it; a predicted component in no true lesion is a "
        "false positive. The masks scored are withheld: they are not in any archive of the release.</p>",
        f"<footer>Generated by atlas-registry {esc(__version__)} (atlas-registry score).</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="atlas-registry score '
        f'{esc(__version__)}"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>Leaderboard — {esc(result.release)}</title>'
        f"<style>{CSS}</style></head>\n<body><main>{''.join(body)}</main></body></html>\n"
    )


def write_leaderboard(result: ScoreResult, path: Path) -> Path:
    """Write :func:`leaderboard_html` to ``path`` (atomically)."""
    from .store import atomic_write

    path = Path(path)
    if path.is_dir():
        raise AtlasError("SCORE008", "--html names a folder: give the file to write (leaderboard.html)", path=str(path))
    atomic_write(path, leaderboard_html(result).encode("utf-8"))
    return path
