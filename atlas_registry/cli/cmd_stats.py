"""``atlas-registry stats tables|volumes|overlap``: the data descriptor's statistics from the registry."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, workspace

stats_app = typer.Typer(
    help="Statistics as the data descriptor reports them (Tables 1-2, volumes, overlap map).", no_args_is_help=True
)
app.add_typer(stats_app, name="stats")

_RELEASE_PARQUET = "Compute from this release's Parquet files (DuckDB)."


def _emit(format: str, compute, render) -> None:
    """Compute the result, print it as text (``render``) or indented JSON."""
    from .. import stats

    result = compute()
    typer.echo(stats.format_json(result) if format == "json" else render(result))


@stats_app.command("tables")
def tables_cmd(
    release: str = typer.Option(None, "--release", help=_RELEASE_PARQUET),
    format: TextJson = format_option(),
):
    """Table 1 (scans: one lesion left/right/other, multiple) and Table 2 (lesions by location x hemisphere)."""
    from .. import stats

    _emit(format, lambda: stats.paper_tables(workspace(), release), stats.format_tables)


@stats_app.command("volumes")
def volumes_cmd(
    release: str = typer.Option(None, "--release", help=_RELEASE_PARQUET),
    format: TextJson = format_option(),
):
    """Lesion volume mean ± SD, min, max: overall and per cohort, primary and all lesions."""
    from .. import stats

    _emit(format, lambda: stats.volume_stats(workspace(), release), stats.format_volumes)


@stats_app.command("overlap")
def overlap_cmd(
    out: str = typer.Option(..., "--out", help="Output NIfTI (FILE.nii.gz); the PNG goes to FILE.png."),
    release: str = typer.Option(None, "--release", help="Only the standardized scans of this release."),
    format: TextJson = format_option(),
):
    """Probabilistic overlap map of the primary lesions in MNI space (0-1) as NIfTI, plus a PNG."""
    from .. import stats

    _emit(
        format,
        lambda: stats.overlap_map(workspace(), out, release),
        lambda r: f"overlap of {r['n_scans']} primary lesions (max {r['max']:.3f}) -> {r['out']}, {r['png']}",
    )
