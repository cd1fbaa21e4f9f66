"""``atlas-registry sql "QUERY"``: one read-only query on the registry's SQL snapshot (or a release)."""

from __future__ import annotations

from typing import Literal

import typer

from . import app, format_option, workspace


@app.command("sql")
def sql_cmd(
    query: str = typer.Argument(
        ...,
        help="One SQL query (SELECT/WITH/VALUES/FROM/DESCRIBE/EXPLAIN; DuckDB's dialect, "
        "see docs/sql.md for the tables).",
    ),
    format: Literal["table", "csv", "json"] = format_option("table", "output: an aligned table, CSV or JSON"),
    release: str = typer.Option(
        None, "--release", help="Query this release (known to the registry): its Parquet files."
    ),
    release_dir: str = typer.Option(None, "--release-dir", help="Query the Parquet files of this release folder."),
    timeout: str = typer.Option(
        "30", "--timeout", help="Stop the query after this many seconds (above 0, at most 600)."
    ),
    limit: str = typer.Option("10000", "--limit", help="Return at most this many rows (1 to 1000000)."),
):
    """Run one read-only query (DuckDB, locked down, on a copy of the registry). Nothing is ever changed."""
    import sys

    from ..errors import UsageError
    from ..query import check_limit, check_timeout, render, run, run_release

    if format not in ("table", "csv", "json"):
        raise UsageError("SQL010", f"unknown format {format!r} (table|csv|json)")
    if release is not None and release_dir is not None:
        raise UsageError("SQL009", "give --release NAME or --release-dir DIR, not both")
    timeout_s = check_timeout(timeout)
    try:
        max_rows = check_limit(int(limit))
    except ValueError:
        check_limit(limit)
        raise
    ws = workspace()
    if release is None and release_dir is None:
        result = run(ws, query, timeout_s=timeout_s, limit=max_rows)
    else:
        result = run_release(ws, release, query, folder=release_dir, timeout_s=timeout_s, limit=max_rows)
    typer.echo(render(result, format))
    if result.truncated:
        print(
            f"note [SQL014] the result was cut at {result.limit} rows (--limit N to change, at most 1000000)",
            file=sys.stderr,
        )
