"""``atlas-registry reliability DIR``: inter/intra-rater reliability of lesion tracings."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option


@app.command("reliability")
def reliability_cmd(
    folder: str = typer.Argument(..., help="Folder of tracings: <brain>/<brain>_rater-RR_session-S_mask.nii.gz"),
    format: TextJson = format_option(),
):
    """Dice, Hausdorff distance (mm) and volume ICC(2,1), inter- and intra-rater, beside the paper's figures."""
    from ..reliability import analyze, format_text
    from ..stats import format_json

    result = analyze(folder)
    typer.echo(format_json(result) if format == "json" else format_text(result))
