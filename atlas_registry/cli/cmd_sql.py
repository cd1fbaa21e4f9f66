"""``atlas-registry sql "QUERY"``: one read-only query against the registry (or a release)."""

from __future__ import annotations

from typing import Literal

import typer

from . import app, format_option, workspace


@app.command("sql")
def sql_cmd(
    query: str = typer.Argument(..., help="One SQL query (SELECT/WITH/VALUES/EXPLAIN; see docs/sql.md for the views)."),
    format: Literal["table", "csv", "json"] = format_option("table", "output: an aligned table, CSV or JSON"),
    release: str = typer.Option(None, "--release", help="Query this release's Parquet files (DuckDB) instead."),
    timeout: float = typer.Option(30.0, "--timeout", help="Stop the query after this many seconds."),
):
    """Run one read-only query. Writes of any kind are refused and nothing is ever changed."""
    from ..query import render, run, run_release

    ws = workspace()
    result = run(ws, query, timeout_s=timeout) if release is None else run_release(ws, release, query, timeout_s=timeout)
    typer.echo(render(result, format))
