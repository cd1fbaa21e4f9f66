"""Making one synthetic scan: grid, lesions, T1 images, files and metadata rows.

:func:`build_scan` is what a worker process runs.  Every random choice comes from streams keyed by
the seed and the scan (or the subject and lesion), never from the order in which workers pick up
scans, so the bytes written do not depend on the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import anatomy, paper
from . import head, lesions, placement, radiology, scanners, writer
from .plan import ScanPlan

SCAN_STREAM = 0x5343414E  # "SCAN"
MAX_SCAN_TRIES = 6
STANDARD_WM_LEVEL = 1000.0  # intensity-normalized standardized T1s: white matter at 1000
STANDARD_NOISE = 0.012


@dataclass(frozen=True)
class Job:
    """What a worker needs besides the scan plan."""

    out: str
    seed: int
    scale: str
    world: str = "mni"  # scanners.WORLDS: "scanner" writes native headers in scanner coordinates


@dataclass
class ScanResult:
    scan_id: str
    scan_row: dict
    lesion_rows: list
    volumes_mm3: list = field(default_factory=list)  # smoothed native volumes, lesion 0 first
    standard_volumes_mm3: list = field(default_factory=list)


def voxel_scale(scale: str) -> float:
    return scanners.SMALL_FACTOR if scale == "small" else 1.0


@lru_cache(maxsize=2)
def standard_grid(scale: str) -> lesions.Grid:
    shape, aff = anatomy.template_grid(voxel_scale(scale))
    return lesions.Grid(shape, aff)


@lru_cache(maxsize=2)
def _face(scale: str) -> np.ndarray:
    g = standard_grid(scale)
    return anatomy.face_region(g.shape, g.affine)


@lru_cache(maxsize=2)
def standard_head(scale: str) -> np.ndarray:
    """The head on the standard grid (the same for every scan of a scale; read-only)."""
    std = standard_grid(scale)
    img = head.head_volume() if scale == "full" else head.render(std.shape, std.affine, max(std.zooms))
    img.setflags(write=False)
    return img


@lru_cache(maxsize=4)
def noise_bank(seed: int, scale: str) -> head.NoiseBank:
    """Enough noise for the largest image of the scale (native grids and the template grid)."""
    sizes = [int(np.prod(scanners.native_grid(s, scale)[0])) for s in scanners.SCANNERS.values()]
    sizes.append(int(np.prod(standard_grid(scale).shape)))
    return head.NoiseBank(seed, int(max(sizes) * 1.25))


def prepare(seed: int, scale: str) -> None:
    """Compute the shared read-only state now (anatomy, allowed regions, head, noise), so worker
    processes forked afterwards share it instead of each computing it."""
    anatomy.regions()
    placement.warm()
    head.head_for_voxel(voxel_scale(scale))
    standard_head(scale)
    _face(scale)
    noise_bank(seed, scale)


def _scan_numbers(plan: ScanPlan) -> tuple[int, int, int]:
    return int(plan.cohort[1:]), plan.subject, plan.timepoint


def grid_of(plan: ScanPlan, seed: int, scale: str) -> tuple[lesions.Grid, np.random.Generator]:
    """The scan's native grid and its random stream (positioned after the head position draw)."""
    rng = np.random.default_rng([seed, SCAN_STREAM, *_scan_numbers(plan)])
    angles, shift = scanners.head_position(rng)
    shape, aff = scanners.native_grid(scanners.SCANNERS[plan.cohort], scale, angles, shift)
    return lesions.Grid(shape, aff), rng


def _grow_all(plan: ScanPlan, grid: lesions.Grid, seed: int, scale: str, salt: int) -> dict:
    std = standard_grid(scale) if plan.standardized else None
    occupied = np.zeros(grid.shape, dtype=bool)
    grown = {}
    for lp in sorted(plan.lesions, key=lambda les: (-les.volume_mm3, les.index)):
        key = (seed, int(plan.cohort[1:]), plan.subject, lp.index, salt)
        les = lesions.grow_lesion(lp, grid, occupied, key, std, scale == "small")
        lesions.reserve(occupied, les)
        grown[lp.index] = les
    return grown


def number_lesions(plan: ScanPlan, grown: dict) -> list[tuple[int, lesions.Lesion]] | None:
    """(number, lesion) with 0 the primary and the rest from largest to smallest; ``None`` when the
    sizes contradict the plan (a flagged primary that is not smaller than the largest lesion)."""

    def size(i):
        return (grown[i].voxels, int(grown[i].raw.sum()))

    order = sorted(grown, key=lambda i: (-size(i)[0], -size(i)[1], i))
    if plan.primary_not_largest:
        primary = next(les.index for les in plan.lesions if les.primary)
        if size(primary)[0] >= max(size(i)[0] for i in grown if i != primary):
            return None
    else:
        primary = order[0]
    rest = [i for i in order if i != primary]
    return [(0, grown[primary])] + [(n + 1, grown[i]) for n, i in enumerate(rest)]


def _standard_apart(numbered) -> bool:
    """Standard-space masks of one scan neither overlap nor touch."""
    from scipy import ndimage as ndi

    crops = [les for _, les in numbered if les.std is not None]
    for i, a in enumerate(crops):
        box = tuple(slice(s.start - 1, s.stop + 1) for s in a.std_box)  # the padded crop's place
        grown = ndi.binary_dilation(np.pad(a.std, 1), structure=np.ones((3, 3, 3), bool))
        for b in crops[i + 1 :]:
            lo = [max(x.start, y.start) for x, y in zip(box, b.std_box, strict=False)]
            hi = [min(x.stop, y.stop) for x, y in zip(box, b.std_box, strict=False)]
            if any(h <= l_ for l_, h in zip(lo, hi, strict=False)):
                continue
            ga = grown[tuple(slice(l_ - x.start, h - x.start) for l_, h, x in zip(lo, hi, box, strict=False))]
            gb = b.std[tuple(slice(l_ - y.start, h - y.start) for l_, h, y in zip(lo, hi, b.std_box, strict=False))]
            if (ga & gb).any():
                return False
    return True


def build_scan(plan: ScanPlan, job: Job) -> ScanResult:
    """Generate, write and describe one scan."""
    grid, rng = grid_of(plan, job.seed, job.scale)
    header_affine, native_mm3 = grid.affine, grid.voxel_mm3  # what the native header says
    if job.world == "scanner":
        # generate on the grid whose world is MNI (Z @ A), write the header in scanner mm (R @ A)
        z, r = scanners.scanner_world(job.seed, _scan_numbers(plan))
        header_affine = r @ grid.affine
        grid = lesions.Grid(grid.shape, z @ grid.affine)
        _write_truth(Path(job.out), plan.scan_id, z @ np.linalg.inv(r))
    numbered = None
    for salt in range(MAX_SCAN_TRIES):
        try:
            grown = _grow_all(plan, grid, job.seed, job.scale, salt)
        except RuntimeError:
            continue
        numbered = number_lesions(plan, grown)
        if numbered is not None and _standard_apart(numbered):
            break
        numbered = None
    if numbered is None:
        raise RuntimeError(f"{plan.scan_id}: could not place its lesions as planned")

    scanner = scanners.SCANNERS[plan.cohort]
    zooms = grid.zooms
    image = head.render(grid.shape, grid.affine, max(zooms))
    head.paint_lesions(image, [(les.box, les.raw) for _, les in numbered], zooms, rng)
    gain = scanner.gain * float(rng.uniform(0.9, 1.1))
    data = head.finish_native(
        image,
        rng,
        noise_bank(job.seed, job.scale),
        gain=gain,
        noise_sd=scanner.noise,
        bias=scanner.bias,
        artefact=plan.artefact,
    )
    t1 = writer.t1_image(data, header_affine)
    out = Path(job.out)
    writer.write_native(out / "native", plan.scan_id, t1, numbered)

    result = ScanResult(plan.scan_id, {}, [])
    if plan.standardized:
        std = standard_grid(job.scale)
        simg = standard_head(job.scale).copy(order="K")
        head.paint_lesions(simg, [(les.std_box, les.std) for _, les in numbered], std.zooms, rng)
        sdata = head.finish_standard(
            simg, rng, noise_bank(job.seed, job.scale), level=STANDARD_WM_LEVEL, noise_sd=STANDARD_NOISE
        )
        sdata[_face(job.scale)] = 0  # defacing
        writer.write_standard(
            out / "standard", plan.scan_id, writer.t1_image(sdata, std.affine, standard=True), numbered
        )
        result.standard_volumes_mm3 = []
        for _, les in numbered:
            assert les.std is not None  # a standardized plan resamples every lesion
            result.standard_volumes_mm3.append(int(les.std.sum()) * std.voxel_mm3)

    classes = [(les.hemisphere, les.location) for _, les in numbered]
    primary = numbered[0][1]
    world = anatomy.voxel_world(primary.smooth, _shifted(grid.affine, primary.box))
    result.scan_row = radiology.scan_row(plan, classes, world, classes[0])
    result.lesion_rows = [radiology.lesion_row(plan, n, les.hemisphere, les.location) for n, les in numbered]
    result.volumes_mm3 = [les.voxels * native_mm3 for _, les in numbered]
    return result


TRUTH = "truth"  # OUT/truth/<id>.json in the scanner world: never read by the tool


def _write_truth(out: Path, scan_id: str, native_to_mni: np.ndarray) -> None:
    import json

    from .. import niio

    doc = {"scan": scan_id, "native_to_mni": [[round(float(v), 10) for v in row] for row in native_to_mni]}
    (out / TRUTH).mkdir(parents=True, exist_ok=True)
    niio.write_atomic(out / TRUTH / f"{scan_id}.json", (json.dumps(doc, indent=2) + "\n").encode())


def _shifted(affine: np.ndarray, box) -> np.ndarray:
    a = np.asarray(affine, dtype=float).copy()
    a[:3, 3] = a[:3, :3] @ np.array([s.start for s in box], dtype=float) + a[:3, 3]
    return a


def scanner_row(cohort: str, scale: str) -> dict:
    """The scanners-table row of a cohort (voxel size of the images as written at this scale)."""
    s = scanners.SCANNERS[cohort]
    vx, vy, vz = scanners.voxel_mm(s, scale)
    return {
        "Cohort": cohort,
        "Field Strength (T)": s.field_strength_t,
        "Manufacturer": s.manufacturer,
        "Model": s.model,
        "Voxel Size X (mm)": vx,
        "Voxel Size Y (mm)": vy,
        "Voxel Size Z (mm)": vz,
    }


def exclusion_row(plan: ScanPlan) -> dict:
    return {"Scan ID": plan.scan_id, "Exclusion": plan.exclusion, "Reason": plan.reason}


def cost(plan: ScanPlan) -> float:
    """A rough relative cost of a scan (to hand out the expensive ones first)."""
    low_res = plan.cohort in paper.LOW_RESOLUTION_COHORTS
    return (
        (0.5 if low_res else 1.0)
        + (0.6 if plan.standardized else 0.0)
        + 0.15 * len(plan.lesions)
        + max(les.volume_mm3 for les in plan.lesions) / 4e5
    )
