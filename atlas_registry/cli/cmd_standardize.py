"""``atlas-registry standardize NATIVE_ROOT --out STANDARD_ROOT``: native scans to the standardized layout."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, emit, format_option, progress_option, want_progress


@app.command("standardize")
def standardize_cmd(
    native_root: Path = typer.Argument(..., help="native root (cXXXX/cXXXXsXXXXtXX/…)"),
    out: Path = typer.Option(..., "--out", help="standardized root to write (new or empty folder)"),
    workers: int = typer.Option(0, "--workers", help="local worker processes [default: all cores]"),
    dask_scheduler: str = typer.Option(
        None, "--dask-scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://host:8786"
    ),
    scans: str = typer.Option("", "--scans", help="comma-separated scan identifiers [default: every scan]"),
    voxel: float = typer.Option(
        0.0, "--voxel", help="output voxel size in mm [default: the finest native voxel edge, at least 1]"
    ),
    format: TextJson = format_option(),
    show_progress: bool = progress_option(),
):
    """N4, lesion-masked affine registration to MNI152NLin2009aSym, resampling, intensity
    standardization and defacing of every scan (docs/standardize.md); failures go to
    registration_failures.csv with their reasons and QC figures."""
    from ..progress import bar
    from ..standardize.runner import standardize

    with bar("standardize", enabled=want_progress(show_progress, format)) as b:
        summary = standardize(
            native_root,
            out,
            workers=workers or None,
            dask_scheduler=dask_scheduler,
            scans=[s.strip() for s in scans.split(",") if s.strip()] or None,
            voxel_mm=voxel or None,
            progress=b.update,
        )
    emit(summary, format)
