"""The synthetic dataset end to end: plan, scans in parallel, metadata, reliability study, preview.

``OUT/native/`` (ICPSR layout and metadata), ``OUT/standard/`` (defaced MNI-space subset and
``registration_failures.csv``), ``OUT/reliability/`` (tracer study), ``OUT/preview.png`` and
``OUT/synth.json`` (what was generated, for people and tests).

Scans are built in worker processes forked after the shared read-only state (template anatomy,
allowed regions, head, noise) is computed, so workers share it.  Results are gathered and sorted
before anything that depends on several scans is written: the output does not depend on the number
of workers or on the order in which they finish.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from .. import __version__, metadata, niio, paper
from ..errors import AtlasError, UsageError
from . import preview, reliability, scan, scanners
from .plan import make_plan

OUTPUTS = ("native", "standard", "reliability", preview.PREVIEW, "synth.json", scan.TRUTH)
PREVIEW_VOLUME_MM3 = 30000.0  # the preview shows the scan whose primary lesion is nearest this size

Progress = Callable[[int, int, str], None]


def parse_cohorts(text: str | None) -> list[str]:
    """``"c0001,c0009"`` → ["c0001", "c0009"] (all 11 cohorts when empty); refuses unknown ones."""
    if not text:
        return list(paper.COHORTS)
    out = []
    for part in str(text).split(","):
        c = part.strip()
        if not c:
            continue
        if c not in paper.COHORTS:
            raise UsageError("SYN002", f"unknown cohort {c!r} (cohorts are {paper.COHORTS[0]}..{paper.COHORTS[-1]})")
        if c not in out:
            out.append(c)
    return sorted(out)


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise AtlasError("SYN001", "output path exists and is not a folder", path=str(out))
    out.mkdir(parents=True, exist_ok=True)
    present = [p.name for p in out.iterdir()]
    if not present:
        return
    if not overwrite:
        raise AtlasError(
            "SYN001", "output folder is not empty (use --force to replace an earlier synth output)", path=str(out)
        )
    foreign = sorted(set(present) - set(OUTPUTS))
    if foreign:
        raise AtlasError(
            "SYN001", f"output folder holds files synth did not write ({', '.join(foreign[:5])})", path=str(out)
        )
    for name in present:
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _task(item):
    kind, payload, job = item
    if kind == "scan":
        return kind, scan.build_scan(payload, job)
    return kind, reliability.build_brain(payload, job.out, job.seed, job.scale)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run(items: list, workers: int, progress: Progress | None) -> list:
    total, results = len(items), []
    if progress:
        progress(0, total, "")
    if workers <= 1 or total <= 1:
        for n, item in enumerate(items, 1):
            results.append(_task(item))
            if progress:
                progress(n, total, _label(item))
        return results
    ctx = multiprocessing.get_context("fork")  # children inherit the prepared state
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        futures = {ex.submit(_task, item): item for item in items}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                exc = f.exception()
                if exc is not None:
                    for p in pending:
                        p.cancel()
                    raise exc
                results.append(f.result())
                if progress:
                    progress(len(results), total, _label(futures[f]))
    return results


def _label(item) -> str:
    kind, payload, _ = item
    return payload.scan_id if kind == "scan" else reliability.brain_name(payload)


def _volume_stats(volumes: list[float]) -> dict:
    if not volumes:
        return {}
    v = np.asarray(volumes, dtype=float)
    return {
        "mean": round(float(v.mean()), 3),
        "sd": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 3),
        "min": round(float(v.min()), 3),
        "max": round(float(v.max()), 3),
    }


def generate(
    out: str | os.PathLike,
    *,
    seed: int = 0,
    scale: str = "small",
    cohorts=None,
    workers: int | None = None,
    overwrite: bool = False,
    with_reliability: bool = True,
    with_preview: bool = True,
    progress: Progress | None = None,
    world: str = "mni",
) -> dict:
    """Generate the synthetic dataset into ``out``; returns the summary also written to synth.json.

    ``cohorts``: list or comma-separated text (default all 11); ``workers``: processes (default all
    cores); the output is byte-identical for the same seed, scale and cohorts whatever the workers.
    """
    if scale not in scanners.SCALES:
        raise UsageError("SYN003", f"unknown scale {scale!r} (small|full)")
    chosen = parse_cohorts(cohorts if isinstance(cohorts, (str, type(None))) else ",".join(cohorts))
    out = Path(out)
    _prepare_out(out, overwrite)
    plan = make_plan(seed)
    scans = plan.by_cohort(chosen)
    scan.prepare(seed, scale)
    if world not in scanners.WORLDS:
        raise UsageError("SYN003", f"unknown world {world!r} (mni|scanner)")
    job = scan.Job(str(out), seed, scale, world)
    items: list[tuple[str, object, scan.Job]] = [
        ("scan", s, job) for s in sorted(scans, key=lambda s: (-scan.cost(s), s.scan_id))
    ]
    if with_reliability:
        items = [("brain", b, job) for b in sorted(reliability.BRAINS, key=lambda b: -reliability.BRAINS[b][2])] + items
    results = _run(items, workers or default_workers(), progress)

    done = sorted((r for kind, r in results if kind == "scan"), key=lambda r: r.scan_id)
    scan_rows = [r.scan_row for r in done]
    lesion_rows = [row for r in done for row in r.lesion_rows]
    scanner_rows = [scan.scanner_row(c, scale) for c in chosen]
    native = out / "native"
    native.mkdir(parents=True, exist_ok=True)
    metadata.write_metadata(native, {"scans": scan_rows, "lesions": lesion_rows, "scanners": scanner_rows})
    excluded = [scan.exclusion_row(s) for s in sorted(scans, key=lambda s: s.scan_id) if not s.standardized]
    metadata.write_registration_failures(out / "standard", excluded)

    if with_reliability:
        rows = sorted(
            (row for kind, r in results if kind == "brain" for row in r),
            key=lambda r: (r["brain"], r["rater"], r["session"]),
        )
        rel = out / "reliability"
        niio.write_atomic(rel / reliability.TRACINGS_CSV, metadata.csv_bytes(_frame(rows)))
        niio.write_atomic(rel / reliability.README, reliability.readme_text(scale).encode("utf-8"))

    shown = _preview_scan(done, scans)
    if with_preview and shown is not None:
        preview.write_preview(out, shown.scan_id, shown.standardized)

    volumes = [v for r in done for v in r.volumes_mm3]
    std_scans = [s for s in scans if s.standardized]
    summary = {
        "generator": f"atlas-registry {__version__} synth",
        "seed": seed,
        "scale": scale,
        "voxel_factor": scan.voxel_scale(scale),
        "cohorts": chosen,
        "scans": len(done),
        "lesions": len(volumes),
        "standardized_scans": len(std_scans),
        "standardized_people": len({(s.cohort, s.subject) for s in std_scans}),
        "low_resolution_exclusions": sum(1 for s in scans if s.exclusion == "low resolution"),
        "registration_failures": sum(1 for s in scans if s.exclusion == "registration failure"),
        "primary_not_largest": sum(1 for s in scans if s.primary_not_largest),
        "second_timepoints": sum(1 for s in scans if s.timepoint > 1),
        "lesion_volume_mm3": _volume_stats(volumes),
        "reliability": with_reliability,
        "preview_scan": shown.scan_id if (with_preview and shown is not None) else None,
    }
    niio.write_atomic(out / "synth.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return summary


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(
        rows, columns=["brain", "rater", "session", "tracer", "hemisphere", "location", "volume_mm3", "file"]
    )


def _preview_scan(done: list, scans: list):
    by_id = {s.scan_id: s for s in scans}
    if not done:
        return None
    std = [r for r in done if by_id[r.scan_id].standardized] or done
    best = min(std, key=lambda r: (abs(np.log(max(r.volumes_mm3[0], 1.0) / PREVIEW_VOLUME_MM3)), r.scan_id))
    return by_id[best.scan_id]
