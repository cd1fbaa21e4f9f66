"""``atlas-registry mask export``: a lesion's current raw VOI, to correct and give back to `revise mask`."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, echo_json, format_option, workspace

mask_app = typer.Typer(
    help="A lesion's mask out of the registry, to correct it and give it back to `revise mask`.", no_args_is_help=True
)
app.add_typer(mask_app, name="mask")


@mask_app.command("export")
def export_cmd(
    scan: str = typer.Argument(..., help="the scan cXXXXsXXXXtXX"),
    out: Path = typer.Option(..., "--out", help="the VOI file to write (replaced if it exists)"),
    lesion: int = typer.Option(0, "--lesion", help="lesion number (0 = primary)"),
    erode: int = typer.Option(0, "--erode", min=0, help="remove this many outer voxel layers (an over-traced edge)"),
    format: TextJson = format_option(),
):
    """Write the current raw VOI of a lesion of SCAN to OUT (optionally eroded by --erode voxels)."""
    from ..lesion_files import raw_voi
    from ..store import atomic_write, sha256_bytes

    data = raw_voi(workspace(), scan, lesion, erode_layers=erode)
    atomic_write(out, data, mode=0o644)
    result: dict = {
        "scan": scan,
        "lesion": lesion,
        "eroded": erode,
        "out": str(out),
        "bytes": len(data),
        "sha256": sha256_bytes(data),
    }
    if format == "json":
        echo_json(result)
    else:
        typer.echo(
            f"wrote lesion {lesion} of {scan}"
            + (f" eroded by {erode} voxel(s)" if erode else "")
            + f" to {out} ({len(data)} bytes, sha256 {result['sha256'][:12]})"
        )
