"""``atlas-registry validate``: check a native root, a cohort folder or a standardized root
without writing anything; one line per finding and a summary, or JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, format_option, progress_option, want_progress


@app.command("validate")
def validate_cmd(
    path: Path = typer.Argument(..., help="native root, cohort folder or standardized root"),
    format: TextJson = format_option(),
    metadata: Path = typer.Option(
        None, "--metadata", help="metadata workbook (.xlsx) or folder of CSVs, if not inside PATH"
    ),
    workers: int = typer.Option(None, "--workers", help="processes [default: all cores]"),
    progress: bool = progress_option(),
    scrub_headers: bool = typer.Option(
        False,
        "--scrub-headers",
        help="report header text and extensions as info, as `ingest --scrub-headers` accepts them",
    ),
):
    """Validate PATH against every rule (docs/validation-rules.md). Exit 1 when any error is found."""

    from ..validate.runner import validate_path

    result = validate_path(
        path,
        workers=workers,
        progress=want_progress(progress, format),
        scrub_headers=scrub_headers,
        metadata=metadata,
        stored_form=False,  # nothing is stored: hash the canonical bytes without deflating them
    )
    report = result.report
    typer.echo(report.to_json() if format == "json" else report.to_text())
    return 0 if report.ok else 1
