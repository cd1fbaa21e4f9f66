"""``atlas-registry score``: score predicted lesion masks against a release's withheld test or hidden masks."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from . import TextJson, app, emit, format_option, workspace


class Split(StrEnum):
    test = "test"
    hidden = "hidden"


@app.command("score")
def score_cmd(
    predictions: list[Path] = typer.Argument(
        ...,
        metavar="PREDICTIONS",
        help="folder(s) of predicted masks, one file per scan named as the BIDS archive names its union mask "
        "(or sub-<label>_ses-<n>.nii.gz); several folders make a leaderboard",
    ),
    release: str = typer.Option(..., "--release", help="the built or published release whose withheld masks score"),
    split: list[Split] = typer.Option(
        [Split.test],
        "--split",
        help="split to score; --split test --split hidden scores both, the hidden ranks weighted 4x",
    ),
    html: Path = typer.Option(None, "--html", help="also write the leaderboard as an HTML page (report style) here"),
    format: TextJson = format_option(),
):
    """Score predicted lesion masks against a release's withheld masks.

    Dice, volume difference, lesion count difference and lesion-wise F1 per scan and on average, and with
    several submissions a leaderboard by mean rank across metrics. Reads the withheld masks from the
    registry; writes nothing."""
    from ..scoring import score, write_leaderboard

    result = score(workspace(), list(predictions), release, [k.value for k in split])
    if html is not None:
        write_leaderboard(result, html)
    emit(result, format)
