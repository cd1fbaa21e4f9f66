"""``atlas-registry demo``: the main job end to end on SQLite and synthetic data."""

from __future__ import annotations

from typing import Literal

import typer

from . import app, workspace


@app.command("demo")
def demo_cmd(
    scale: Literal["small", "full"] = typer.Option("small", "--scale", help="small: quick; full: real resolution"),
    seed: int = typer.Option(0, "--seed", help="seed of the synthetic data"),
    workers: int = typer.Option(None, "--workers", help="processes [default: all cores]"),
):
    """Synthesize ATLAS R1.1, validate, ingest, publish R1.1, revise a mask, publish R1.2, print the
    paper's tables, volumes, reliability and two SQL queries, and write the HTML report."""
    from ..demo import run_demo

    run_demo(workspace(), scale=scale, seed=seed, workers=workers)
    return 0
