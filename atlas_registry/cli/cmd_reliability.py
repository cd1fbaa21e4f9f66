"""``atlas-registry reliability DIR``: inter/intra-rater reliability of lesion tracings."""

from __future__ import annotations

import typer

from . import app


@app.command("reliability")
def reliability_cmd(
    folder: str = typer.Argument(..., help="Folder of tracings: <brain>/<brain>_rater-RR_session-S_mask.nii.gz"),
    format: str = typer.Option("text", "--format", help="text|json"),
):
    """Dice, Hausdorff distance (mm) and volume ICC(2,1), inter- and intra-rater, beside the paper's figures."""
    from ..errors import UsageError
    from ..reliability import analyze, format_text
    from ..stats import format_json

    if format not in ("text", "json"):
        raise UsageError("USAGE", f"unknown format {format!r} (text|json)")
    result = analyze(folder)
    typer.echo(format_json(result) if format == "json" else format_text(result))
