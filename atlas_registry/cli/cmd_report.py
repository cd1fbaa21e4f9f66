"""``atlas-registry report``: a static HTML report of the registry or of one release."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, format_option, progress_option, want_progress, workspace


@app.command("report")
def report_cmd(
    out: Path = typer.Option(..., "--out", help="folder to write (index.html + img/); replaces an earlier report"),
    release: str = typer.Option(None, "--release", help="report on this built release (default: the registry now)"),
    format: TextJson = format_option(),
    progress: bool = progress_option(),
):
    """Tables 1-2 beside the paper, lesion volumes, overlap map, exclusions, validation, changes and
    a thumbnail of every scan, as one static HTML page."""
    import json

    from ..report import make_report

    r = make_report(workspace(), out, release=release, progress=want_progress(progress, format))
    if format == "json":
        typer.echo(json.dumps(r.to_dict(), sort_keys=True, indent=2))
    else:
        typer.echo(
            f"report of {release or 'the registry'} written to {r.index}: {r.scans} scans, {r.lesions} lesions, "
            f"{r.standard} standardized, {r.excluded} excluded, {r.thumbnails} thumbnails in {r.seconds:.1f} s"
        )
