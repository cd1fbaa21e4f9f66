"""Standardize a native root: scans handed to workers, each scan's folder appearing at once.

* The native root is found as ``validate`` finds it (:mod:`atlas_registry.validate.inventory`); per scan
  the T1 and the smoothed NIfTI masks (``_LesionSmooth[_n].nii.gz``) are used.
* Work runs in a local process pool (``--workers``, one ITK thread each) or, with ``dask_scheduler``,
  on an existing Dask cluster (``dask.distributed``; the workers must see NATIVE_ROOT at the same path).
  A worker returns bytes; only this process writes.
* Each scan is written into a staging folder *beside* the output root (``.<name>.partial``, same file
  system) and renamed into ``cXXXX/`` when complete, so an interruption or a crash leaves no partial
  scan in the root.  ``registration_failures.csv`` (the low-resolution scans and the failures, each
  with its reason and QC figures) is written last, atomically: a root without it is unfinished.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import metadata, naming, niio
from ..errors import AtlasError, UsageError
from . import pipeline

Progress = Callable[[int, int, str], None]


@dataclass
class Summary:
    native_root: str
    out: str
    voxel_mm: float
    scans: int = 0
    standardized: int = 0
    registration_failures: int = 0
    low_resolution: int = 0
    workers: int = 1
    dask_scheduler: str | None = None
    seconds: float = 0.0
    scan_seconds_median: float = 0.0
    outcomes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    def to_text(self) -> str:
        lines = [
            f"standardized {self.standardized} of {self.scans} scans into {self.out} "
            f"({self.registration_failures} registration failures, {self.low_resolution} low resolution) "
            f"in {self.seconds:.1f} s ({self.workers} workers, median {self.scan_seconds_median:.2f} s per scan)"
        ]
        for o in self.outcomes:
            if o["status"] == "failed":
                lines.append(f"  {o['scan_id']}: {o['reason']}")
        return "\n".join(lines)


def find_jobs(native_root: Path, only: list[str] | None = None) -> list[pipeline.ScanJob]:
    """One job per scan folder of a native root (STD001 when it is not one, STD003 for an unknown scan)."""
    from ..validate import inventory

    try:
        root, kind, cohort = inventory.detect(Path(native_root))
    except AtlasError as e:
        raise AtlasError("STD001", f"not a native root ({e.args[0]})", path=str(native_root)) from None
    if kind != "native" or cohort is not None:
        what = "a standardized root" if kind == "standard" else "a cohort folder"
        raise AtlasError("STD001", f"{what}, not a native root (cXXXX/cXXXXsXXXXtXX/…)", path=str(native_root))
    jobs = []
    for cdir in sorted(p for p in root.iterdir() if p.is_dir() and naming.COHORT_RE.match(p.name)):
        for sdir in sorted(p for p in cdir.iterdir() if p.is_dir() and naming.is_scan_id(p.name)):
            sid = sdir.name
            t1 = sdir / naming.native_name(sid, "t1")
            lesions = []
            for f in sorted(sdir.iterdir()):
                nf = naming.parse_native_name(f.name)
                if nf is not None and nf.kind == "lesion" and nf.variant == "smooth_nii" and str(nf.scan) == sid:
                    lesions.append((nf.lesion, str(f)))
            jobs.append(pipeline.ScanJob(sid, str(t1), lesions))
    if not jobs:
        raise AtlasError("STD001", "no scan folders cXXXX/cXXXXsXXXXtXX/ in this native root", path=str(root))
    if only:
        have = {j.scan_id: j for j in jobs}
        unknown = sorted(set(only) - set(have))
        if unknown:
            raise UsageError("STD003", f"no scan {unknown[0]} in the native root", path=unknown[0])
        jobs = [have[s] for s in sorted(set(only))]
    return jobs


def auto_voxel(jobs: list[pipeline.ScanJob]) -> float:
    """The output voxel size: the finest voxel edge among the scans that are not low resolution,
    rounded to whole millimetres, at least 1 mm (1 mm for the real data, 3 mm for ``synth --scale small``)."""
    finest = []
    for j in jobs:
        try:
            hdr = niio.read_header(Path(j.t1).read_bytes()[:65536], j.t1)
        except (OSError, AtlasError):
            continue
        zooms = [float(z) for z in hdr.get_zooms()[:3]]
        if min(zooms) > 0 and not pipeline.low_resolution(zooms):
            finest.append(min(zooms))
    return float(max(1, round(min(finest)))) if finest else 1.0


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AtlasError("STD002", "the output folder exists and is not empty (choose a new folder)", path=str(out))


def _staging(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _publish(out: Path, staging: Path, outcome: pipeline.ScanOutcome) -> None:
    """Write a scan's files into the staging folder, then rename the folder into the root at once."""
    sid = outcome.scan_id
    tmp = staging / sid
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, data in sorted(outcome.files.items()):
        niio.write_atomic(tmp / name, data)
    dest = out / sid[:5] / sid
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, dest)


def _reason(o: pipeline.ScanOutcome) -> str:
    if o.status == "low_resolution":
        return pipeline.LOW_RES_REASON
    f = o.figures
    if not f:
        return o.reason
    figs = (
        f"similarity {f['similarity']:.3f}, brain Dice {f['brain_dice']:.3f}, scales "
        f"{min(f['scales']):.3f}-{max(f['scales']):.3f}, anisotropy {f['anisotropy']:.3f}, "
        f"lesion volume ratio {f['lesion_volume_ratio']:.3f}"
    )
    return f"{o.reason} [{figs}]"


def _died(job: pipeline.ScanJob, e: BaseException) -> pipeline.ScanOutcome:
    """The outcome of a scan whose worker died under it (a crash of native code, a lost Dask worker)."""
    what = " ".join(str(e).split())[:160] or type(e).__name__
    return pipeline.ScanOutcome(job.scan_id, "failed", f"{pipeline.FAILURE}: the worker died ({what})")


def _local(jobs, params, workers: int):
    """Outcomes as they finish, from a process pool (or inline for one worker)."""
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            yield pipeline.run_scan(j, params)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("fork")  # the template, prepared here, is shared with the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=pipeline.set_single_thread) as pool:
        futures = {pool.submit(pipeline.run_scan, j, params): j for j in jobs}
        try:
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except Exception as e:  # noqa: BLE001 -- a dead worker is a failed scan, not a crash
                    yield _died(futures[fut], e)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _dask(jobs, params, address: str):
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise AtlasError("STD004", "dask.distributed is not installed") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise AtlasError("STD004", f"cannot reach the Dask scheduler at {address} ({e})", path=address) from None
    try:
        futures = client.map(pipeline.run_scan, jobs, params=params, pure=False, key=[f"std-{j.scan_id}" for j in jobs])
        by_key = {f.key: j for f, j in zip(futures, jobs, strict=True)}
        with client.as_current():  # as_completed looks for the current client
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except Exception as e:  # noqa: BLE001 -- a lost worker is a failed scan, not a crash
                    yield _died(by_key[fut.key], e)
    finally:
        client.close()


def standardize(
    native_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    workers: int | None = None,
    dask_scheduler: str | None = None,
    scans: list[str] | None = None,
    voxel_mm: float | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Standardize the scans of ``native_root`` into a new standardized root ``out``."""
    from . import template

    started = time.monotonic()
    out = Path(out).absolute()
    jobs = find_jobs(Path(native_root), scans)
    _check_out(out)
    voxel = float(voxel_mm) if voxel_mm else auto_voxel(jobs)
    if not voxel > 0:
        raise UsageError("STD003", f"--voxel must be positive, not {voxel}")
    params = pipeline.Params(voxel_mm=voxel)
    nworkers = 1 if dask_scheduler else max(1, int(workers or os.cpu_count() or 1))
    summary = Summary(
        str(native_root), str(out), voxel, scans=len(jobs), workers=nworkers, dask_scheduler=dask_scheduler
    )
    for warm in (template.t1, template.brain, template.white, template.fixed_mask, template.face):
        warm(voxel)
    out.mkdir(parents=True, exist_ok=True)
    staging = _staging(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    stream = _dask(jobs, params, dask_scheduler) if dask_scheduler else _local(jobs, params, nworkers)
    outcomes: list[pipeline.ScanOutcome] = []
    try:
        for o in stream:
            if o.status == "ok":
                _publish(out, staging, o)
            outcomes.append(o)
            if progress:
                progress(len(outcomes), len(jobs), o.scan_id)
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
        shutil.rmtree(staging, ignore_errors=True)
    outcomes.sort(key=lambda o: o.scan_id)
    rows = [
        {
            metadata.SCAN_ID: o.scan_id,
            "Exclusion": "low resolution" if o.status == "low_resolution" else "registration failure",
            "Reason": _reason(o),
        }
        for o in outcomes
        if o.status != "ok"
    ]
    metadata.write_registration_failures(out, rows)
    summary.standardized = sum(o.status == "ok" for o in outcomes)
    summary.registration_failures = sum(o.status == "failed" for o in outcomes)
    summary.low_resolution = sum(o.status == "low_resolution" for o in outcomes)
    timed = [o.seconds for o in outcomes if o.status != "low_resolution"]
    summary.scan_seconds_median = round(statistics.median(timed), 3) if timed else 0.0
    summary.seconds = round(time.monotonic() - started, 2)
    summary.outcomes = [
        {
            "scan_id": o.scan_id,
            "status": o.status,
            "reason": _reason(o) if o.status != "ok" else "",
            "seconds": o.seconds,
            "cpu_seconds": o.cpu_seconds,
            "qc": o.figures,
        }
        for o in outcomes
    ]
    return summary
