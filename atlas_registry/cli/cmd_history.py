"""``atlas-registry history SCAN``: every revision of a scan, with the issue it resolved."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, workspace


@app.command("history")
def history_cmd(
    scan: str = typer.Argument(..., help="the scan cXXXXsXXXXtXX"),
    format: TextJson = format_option(),
):
    """Show every revision of SCAN (oldest first): who, when, why, which issue, what changed."""
    import json

    from ..history import scan_history

    entries = scan_history(workspace(), scan)
    if format == "json":
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    for e in entries:
        issue = f" issue #{e.issue['number']} {e.issue['title']!r}" if e.issue else ""
        rel = f" [in {e.first_release}]" if e.first_release else " [unreleased]"
        typer.echo(f"r{e.revision} {e.at:%Y-%m-%d %H:%M} {e.kind} by {e.author}{issue}{rel}: {e.reason}")
        for line in e.changes:
            typer.echo(f"    {line}")
