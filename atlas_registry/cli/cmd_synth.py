"""``atlas-registry synth OUT``: generate the synthetic ATLAS dataset."""

from __future__ import annotations

from typing import Literal

import typer

from . import TextJson, app, format_option, progress_option, want_progress


@app.command("synth")
def synth_cmd(
    out: str = typer.Argument(..., help="Output folder (created; must be empty unless --force)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same bytes."),
    scale: Literal["small", "full"] = typer.Option(
        "small", "--scale", help="small: 3 mm grids, seconds; full: real resolution."
    ),
    cohorts: str = typer.Option("", "--cohorts", help="Comma-separated cohorts, e.g. c0001,c0009 [default: all 11]."),
    workers: int = typer.Option(0, "--workers", help="Worker processes [default: all cores]."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier synth output in OUT."),
    reliability: bool = typer.Option(
        True, "--reliability/--no-reliability", help="Also write the tracer reliability study."
    ),
    world: Literal["mni", "scanner"] = typer.Option(
        "mni",
        "--world",
        help="mni: native headers in MNI mm (the default world); scanner: headers in scanner mm, oblique, "
        "heads of different sizes, the true native-to-MNI affines under OUT/truth/.",
    ),
    format: TextJson = format_option(),
    show_progress: bool = progress_option(),
):
    """Synthetic ATLAS R1.1: native (ICPSR) and standardized layouts, metadata, reliability tracings."""
    import json
    import time

    from ..synth import generate

    started = time.monotonic()
    from ..progress import bar

    with bar("synth", enabled=want_progress(show_progress, format)) as b:

        def progress(done: int, total: int, label: str) -> None:
            b.update(done, total, label)

        summary = generate(
            out,
            seed=seed,
            scale=scale,
            cohorts=cohorts or None,
            workers=workers or None,
            overwrite=force,
            with_reliability=reliability,
            progress=progress,
            world=world,
        )
    seconds = time.monotonic() - started
    if format == "json":
        typer.echo(json.dumps({**summary, "out": out, "seconds": round(seconds, 1)}, sort_keys=True, indent=2))
        return
    vol = summary["lesion_volume_mm3"]
    typer.echo(
        f"wrote {summary['scans']} scans ({summary['lesions']} lesion masks, {summary['standardized_scans']} "
        f"standardized) to {out} in {seconds:.1f} s"
    )
    if vol:
        typer.echo(
            f"lesion volume {vol['mean']:.4g} ± {vol['sd']:.4g} mm³ (min {vol['min']:.4g}, max {vol['max']:.4g})"
        )
