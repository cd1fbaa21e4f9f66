"""The chain of one scan, from native files to the bytes of its standardized files.

1. **Low-resolution rule** (the paper's): a T1 whose thickest voxel edge is at least
   :data:`LOW_RES_ANISOTROPY` times its thinnest (the 1.5 T cohorts at 0.9 × 0.9 × 3 mm) is left out
   with the reason ``low resolution``; nothing is registered.
2. **N4** bias-field correction of the native T1 (ANTs, :data:`Params.n4_*`).
3. **Affine registration** to the MNI152 2009 template (:mod:`.template`) with Mattes mutual
   information, **the lesions masked out of the metric**: the moving mask is the head minus every
   lesion dilated by :data:`Params.lesion_margin_mm` (cost-function masking, Brett et al. 2001), the
   fixed mask the template brain dilated.  Fixed random seed, regular sampling, one ITK thread.
4. **Resampling** on the template grid through the native→MNI affine: the T1 trilinear, each lesion
   mask nearest-neighbour (native and standard volumes both reported).
5. **Intensity standardization**: the T1 scaled so that the median of the template white matter
   (probability > 0.9, lesions excluded) is :data:`Params.wm_level` (1000), stored int16.
6. **Defacing**: every voxel of :data:`anatomy.FACE_BOX_MNI` set to 0.
7. **QC** (:mod:`.qc`): a scan that fails is reported with its figures, never written.

:func:`run_scan` returns plain data (file names → bytes, figures): it runs in a worker process,
local or on a Dask cluster, and writes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import naming

STANDARD_SPACE = naming.STANDARD_SPACE
LOW_RES_ANISOTROPY = 2.5  # thickest / thinnest voxel edge at or above this: the paper's low-resolution rule
LOW_RES_REASON = "low resolution"
FAILURE = "registration failure"
GENERATOR = "atlas-registry standardize"


@dataclass(frozen=True)
class Params:
    """Every parameter of the chain (recorded in each sidecar's ``GeneratedBy``)."""

    voxel_mm: float = 1.0  # output grid: the template field of view at this isotropic voxel size
    n4_shrink: int = 4
    n4_iterations: tuple[int, ...] = (20, 10)
    n4_tolerance: float = 1e-4
    metric: str = "mattes"
    metric_bins: int = 32
    sampling: str = "regular"
    sampling_rate: float = 0.1
    iterations: tuple[int, ...] = (100, 50, 20)
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_mm: tuple[float, ...] = (4.0, 2.0, 0.0)
    lesion_margin_mm: float = 5.0
    wm_level: float = 1000.0
    random_seed: int = 20180220

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class ScanJob:
    scan_id: str
    t1: str  # absolute path of the native T1
    lesions: list[tuple[int, str]]  # (number, absolute path of the native _LesionSmooth[_n].nii.gz)


@dataclass
class ScanOutcome:
    scan_id: str
    status: str  # "ok" | "failed" | "low_resolution"
    reason: str = ""  # the Reason column of registration_failures.csv when not ok
    figures: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # file name in the scan folder -> bytes
    seconds: float = 0.0  # wall clock in the worker
    cpu_seconds: float = 0.0  # CPU time of the worker process for this scan


def set_single_thread() -> None:
    """One ITK (and BLAS) thread: deterministic and fair on shared cores.  Must run before ``import ants``."""
    for var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def _ants():
    set_single_thread()
    import ants

    return ants


def antspyx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("antspyx")
    except PackageNotFoundError:
        return "unknown"


# -- RAS (NIfTI) <-> LPS (ITK) ---------------------------------------------------------------------

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def to_ants(data: np.ndarray, affine: np.ndarray):
    """An ANTs image of a voxel array with a NIfTI (RAS) affine (spacing, origin, direction in LPS)."""
    ants = _ants()
    a = _LPS @ np.asarray(affine, dtype=np.float64)
    lin = a[:3, :3]
    spacing = np.sqrt((lin**2).sum(axis=0))
    direction = lin / spacing
    return ants.from_numpy(
        np.ascontiguousarray(data, dtype=np.float32),
        origin=tuple(float(v) for v in a[:3, 3]),
        spacing=tuple(float(v) for v in spacing),
        direction=direction,
    )


def itk_affine_to_ras(params: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """The 4×4 RAS matrix of an ITK AffineTransform (12 parameters + centre), which maps *fixed*
    (MNI) points to *moving* (native) points: the MNI→native world matrix."""
    m = np.asarray(params[:9], dtype=np.float64).reshape(3, 3)
    t = np.asarray(params[9:12], dtype=np.float64)
    c = np.asarray(fixed[:3], dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = m
    lps[:3, 3] = t + c - m @ c
    return _LPS @ lps @ _LPS


# -- resampling ------------------------------------------------------------------------------------


def resample(data: np.ndarray, src_affine: np.ndarray, grid, mni_to_native: np.ndarray, order: int) -> np.ndarray:
    """``data`` (native grid) sampled on the output ``grid`` through the MNI→native world matrix:
    trilinear (order 1) for the T1, nearest neighbour (order 0) for masks; 0 outside the field of view."""
    from scipy import ndimage as ndi

    vox = np.linalg.inv(np.asarray(src_affine, dtype=np.float64)) @ mni_to_native @ grid.affine
    return ndi.affine_transform(
        np.asarray(data, dtype=np.float32),
        vox[:3, :3],
        offset=vox[:3, 3],
        output_shape=grid.shape,
        order=order,
        mode="constant",
        cval=0.0,
        prefilter=False,
    )


# -- the chain ---------------------------------------------------------------------------------------


def low_resolution(zooms) -> bool:
    z = [float(v) for v in zooms[:3]]
    return min(z) > 0 and max(z) / min(z) >= LOW_RES_ANISOTROPY


def _load(path: str):
    from .. import niio

    img = niio.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim > 3:
        data = data[..., 0]
    return img, data


def _ball(radius_vox: int):
    from scipy import ndimage as ndi

    return ndi.generate_binary_structure(3, 1), max(1, radius_vox)


def head_mask(t1: np.ndarray) -> np.ndarray:
    """The head: intensity above a tenth of the robust maximum, closed and holes filled."""
    from scipy import ndimage as ndi

    hi = float(np.percentile(t1, 99.0)) if t1.size else 0.0
    head = t1 > 0.1 * hi if hi > 0 else np.ones(t1.shape, dtype=bool)
    return ndi.binary_fill_holes(ndi.binary_closing(head, iterations=2))


def moving_mask(head: np.ndarray, lesion_union: np.ndarray, zooms, margin_mm: float) -> np.ndarray:
    """The head minus the lesions dilated by ``margin_mm``: where the native image takes part in the
    similarity metric (cost-function masking)."""
    from scipy import ndimage as ndi

    head = head.copy()
    if lesion_union.any():
        r = max(1, round(margin_mm / min(float(z) for z in zooms)))
        grown = ndi.binary_dilation(lesion_union, structure=ndi.generate_binary_structure(3, 1), iterations=r)
        head &= ~grown
    return head


def register(t1_n4: np.ndarray, affine: np.ndarray, mmask: np.ndarray, params: Params, rigid_first=False) -> np.ndarray:
    """Affine registration (ANTs) of the native T1 to the template; the MNI→native world matrix.
    ``rigid_first``: a rigid stage first, the affine stage starting from it (the second attempt)."""
    from . import template

    ants = _ants()
    fixed = to_ants(template.t1(params.voxel_mm), template.grid(params.voxel_mm).affine)
    fmask = to_ants(template.fixed_mask(params.voxel_mm).astype(np.float32), template.grid(params.voxel_mm).affine)
    moving = to_ants(t1_n4, affine)
    mm = to_ants(mmask.astype(np.float32), affine)
    ants.config._random_seed = params.random_seed  # antspyx passes it as --random-seed (no public setter in 0.6.3)
    common = dict(
        mask=fmask,
        moving_mask=mm,
        aff_metric=params.metric,
        aff_sampling=params.metric_bins,
        aff_random_sampling_rate=params.sampling_rate,
        aff_iterations=params.iterations,
        aff_shrink_factors=params.shrink_factors,
        aff_smoothing_sigmas=params.smoothing_mm,
        smoothing_in_mm=True,
        verbose=False,
    )
    with tempfile.TemporaryDirectory(prefix="atlas-std-") as tmp:
        init = None
        if rigid_first:
            rigid = ants.registration(
                fixed, moving, type_of_transform="Rigid", outprefix=str(Path(tmp) / "r"), **common
            )
            init = rigid["fwdtransforms"]
        reg = ants.registration(
            fixed, moving, type_of_transform="Affine", initial_transform=init, outprefix=str(Path(tmp) / "x"), **common
        )
        txs = [ants.read_transform(f) for f in reg["fwdtransforms"]]
        m = np.eye(4)
        for tx in txs:  # applied last to first on points: the composite maps fixed to moving
            m = m @ itk_affine_to_ras(np.asarray(tx.parameters), np.asarray(tx.fixed_parameters))
        return m


def n4(t1: np.ndarray, affine: np.ndarray, head: np.ndarray, params: Params) -> np.ndarray:
    """N4 bias-field correction inside the head."""
    ants = _ants()
    img = to_ants(np.maximum(t1, 0.0), affine)
    out = ants.n4_bias_field_correction(
        img,
        mask=to_ants(head.astype(np.float32), affine),
        shrink_factor=params.n4_shrink,
        convergence={"iters": list(params.n4_iterations), "tol": params.n4_tolerance},
        verbose=False,
    )
    return out.numpy().astype(np.float32)


def run_scan(job: ScanJob, params: Params) -> ScanOutcome:
    """The whole chain of one scan; never raises for a bad image (the outcome says why it failed)."""
    import time

    started, cpu = time.monotonic(), time.process_time()
    try:
        out = _run(job, params)
    except Exception as e:  # noqa: BLE001 -- any failure of a registration is a reported exclusion, not a crash
        message = " ".join(str(e).split())[:200] or type(e).__name__
        out = ScanOutcome(job.scan_id, "failed", f"{FAILURE}: cannot register ({type(e).__name__}: {message})")
    out.seconds = round(time.monotonic() - started, 3)
    out.cpu_seconds = round(time.process_time() - cpu, 3)
    return out


def _run(job: ScanJob, params: Params) -> ScanOutcome:
    from .. import niio
    from ..synth import writer
    from . import qc, template

    img, t1 = _load(job.t1)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    if low_resolution(zooms):
        return ScanOutcome(job.scan_id, "low_resolution", LOW_RES_REASON, {"voxel_mm": [round(z, 4) for z in zooms]})
    if not np.isfinite(t1).all() or float(t1.max()) <= float(t1.min()):
        raise ValueError("the T1 holds no image (constant or not finite)")
    masks = []
    for number, path in sorted(job.lesions):
        mimg, m = _load(path)
        if m.shape != t1.shape:
            raise ValueError(f"lesion {number} is not on the T1's grid")
        masks.append((number, m > 0))
    union = np.zeros(t1.shape, dtype=bool)
    for _, m in masks:
        union |= m

    head = head_mask(t1)
    corrected = n4(t1, img.affine, head, params)
    mmask = moving_mask(head, union, zooms, params.lesion_margin_mm)
    best = None
    for attempt, rigid_first in enumerate((False, True), start=1):
        done = _attempt(corrected, img.affine, zooms, masks, mmask, params, rigid_first)
        done[3]["attempt"] = attempt
        failed = qc.failures(done[3])
        if best is None or done[3]["similarity"] > best[3]["similarity"]:
            best = done
        if not failed:
            break
    assert best is not None
    t1_int, std_masks, native_to_mni, figures = best
    failed = qc.failures(figures)
    if failed:
        return ScanOutcome(job.scan_id, "failed", f"{FAILURE}: " + "; ".join(failed), figures)
    grid = template.grid(params.voxel_mm)

    t1_img = writer.t1_image(t1_int, grid.affine, standard=True)
    files = {naming.standard_name(job.scan_id, "t1"): niio.encode_nifti(t1_img)}
    for n, m in std_masks:
        files[naming.standard_name(job.scan_id, "lesion", n)] = niio.encode_nifti(writer.mask_image(m, t1_img))
    files[naming.standard_name(job.scan_id, "sidecar")] = sidecar_bytes(job, params, native_to_mni, figures)
    return ScanOutcome(job.scan_id, "ok", "", figures, files)


def _attempt(corrected, affine, zooms, masks, mmask, params: Params, rigid_first: bool):
    """Register, resample, standardize intensities, deface and measure: (T1 int16, masks, native→MNI, QC)."""
    from . import qc, template

    mni_to_native = register(corrected, affine, mmask, params, rigid_first)
    native_to_mni = np.linalg.inv(mni_to_native)
    grid = template.grid(params.voxel_mm)
    std_t1 = resample(corrected, affine, grid, mni_to_native, order=1)
    std_masks = [(n, resample(m.astype(np.float32), affine, grid, mni_to_native, order=0) > 0.5) for n, m in masks]
    std_union = np.zeros(grid.shape, dtype=bool)
    for _, m in std_masks:
        std_union |= m
    wm = template.white(params.voxel_mm) & ~std_union
    level = float(np.median(std_t1[wm])) if wm.any() else 0.0
    if not level > 0:
        raise ValueError("no white-matter signal on the template's white matter")
    std_t1 *= np.float32(params.wm_level / level)
    std_t1[template.face(params.voxel_mm)] = 0.0
    t1_int = np.clip(np.rint(std_t1), 0, 32767).astype(np.int16)
    native_mm3 = float(np.prod(zooms))
    figures = qc.figures(
        t1_int.astype(np.float32),
        native_to_mni,
        [(n, float(m.sum()) * native_mm3) for n, m in masks],
        [(n, float(m.sum()) * grid.voxel_mm**3) for n, m in std_masks],
        params,
        std_union,
    )
    return t1_int, std_masks, native_to_mni, figures


def sidecar_bytes(job: ScanJob, params: Params, native_to_mni: np.ndarray, figures: dict) -> bytes:
    """The standardized T1's JSON sidecar (``schemas/standard-sidecar.schema.json``): what made the
    files, with which parameters, the native→MNI affine and the QC figures."""
    doc = {
        "GeneratedBy": [
            {
                "Name": GENERATOR,
                "Description": "N4, lesion-masked affine registration to MNI152NLin2009aSym, resampling, "
                "white-matter intensity standardization, defacing",
                "Software": "antspyx",
                "SoftwareVersion": antspyx_version(),
                "Parameters": params.to_dict(),
            }
        ],
        "Space": STANDARD_SPACE,
        "Transform": {
            "From": "native",
            "To": STANDARD_SPACE,
            "Kind": "affine",
            "Matrix": [[round(float(v), 8) for v in row] for row in native_to_mni],
        },
        "QC": figures,
        "Sources": {
            "t1": Path(job.t1).name,
            "lesions": [Path(p).name for _, p in sorted(job.lesions)],
        },
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
