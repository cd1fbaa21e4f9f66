"""``atlas-registry ingest``: validate a native root, cohort folder or standardized root, then write
it to the registry in one transaction — or write nothing at all."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, format_option, progress_option, want_progress, workspace


@app.command("ingest")
def ingest_cmd(
    path: Path = typer.Argument(..., help="native root, cohort folder or standardized root"),
    metadata: Path = typer.Option(
        None, "--metadata", help="metadata workbook (.xlsx) or folder of CSVs, if not inside PATH"
    ),
    scrub_headers: bool = typer.Option(
        False,
        "--scrub-headers",
        help="accept NIfTI header text and extensions instead of refusing them; the store keeps neither (audit log)",
    ),
    workers: int = typer.Option(None, "--workers", help="processes for validation [default: all cores]"),
    format: TextJson = format_option(),
    progress: bool = progress_option(),
):
    """Validate PATH and, when nothing is wrong, store every file and row at once."""
    import json

    from ..ingest import IngestRefused, ingest_path

    ws = workspace()
    try:
        out = ingest_path(
            ws,
            path,
            metadata=metadata,
            scrub_headers=scrub_headers,
            workers=workers,
            progress=want_progress(progress, format),
        )
    except IngestRefused as e:
        if format == "json":
            typer.echo(e.report.to_json())
        else:
            typer.echo(e.report.to_text(), err=True)
        raise
    if format == "json":
        typer.echo(json.dumps(out.to_dict(), indent=2))
    elif out.status == "noop":
        typer.echo(f"nothing to do: every scan under {path} is already in the registry with the same content")
    else:
        typer.echo(
            f"ingested {path}: {out.scans_added} scan(s), {out.lesions_added} lesion(s), "
            f"{out.images_added} image(s), {out.masks_added} mask file(s); "
            f"{out.files_stored} file(s) stored, {out.files_reused} already in the store"
            + (f", {out.scrubbed} header(s) scrubbed" if out.scrubbed else "")
            + f" (run {out.run_id})"
        )
    return 0
