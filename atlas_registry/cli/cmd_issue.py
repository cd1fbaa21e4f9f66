"""``atlas-registry issue``: open, list, show and close issues against scans."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, workspace

issue_app = typer.Typer(
    help="Issues reported against a scan or one of its files (cited by revisions).", no_args_is_help=True
)
app.add_typer(issue_app, name="issue")


def _emit(views, format: str) -> None:
    import json

    if format == "json":
        typer.echo(json.dumps([v.to_dict() for v in views] if isinstance(views, list) else views.to_dict(), indent=2))
    elif isinstance(views, list):
        for v in views:
            typer.echo(v.line())
        if not views:
            typer.echo("no issues")
    else:
        v = views
        typer.echo(v.line())
        typer.echo(f"opened by {v.opened_by} at {v.opened_at:%Y-%m-%d %H:%M} UTC" + (f"; {v.url}" if v.url else ""))
        if v.body:
            typer.echo("")
            typer.echo(v.body)
        if v.closed_at:
            typer.echo(f"closed at {v.closed_at:%Y-%m-%d %H:%M} UTC: {v.close_reason}")
        for r in v.revisions:
            typer.echo(f"  revision {r['revision']} ({r['kind']}) by {r['author']} at {r['at'][:16]}: {r['reason']}")


@issue_app.command("open")
def open_cmd(
    scan: str = typer.Option(..., "--scan", help="the scan cXXXXsXXXXtXX"),
    title: str = typer.Option(..., "--title"),
    file: str = typer.Option(
        None, "--file", help="t1|t1_standard|lesion|lesion_standard|metadata or a file name of the scan"
    ),
    body: str = typer.Option(None, "--body"),
    url: str = typer.Option(None, "--url", help="URL of the issue on the public tracker"),
    format: TextJson = format_option(),
):
    """Open an issue against SCAN (and optionally one of its files)."""
    from ..tracker import open_issue

    _emit(open_issue(workspace(), scan, title, body=body, url=url, file_kind=file), format)


@issue_app.command("list")
def list_cmd(
    status: str = typer.Option(None, "--status", help="open|closed"),
    scan: str = typer.Option(None, "--scan"),
    format: TextJson = format_option(),
):
    """List issues (oldest first)."""
    from ..tracker import list_issues

    _emit(list_issues(workspace(), status=status, scan=scan), format)


@issue_app.command("show")
def show_cmd(number: int = typer.Argument(...), format: TextJson = format_option()):
    """Show issue NUMBER with the revisions that cite it."""
    from ..tracker import show_issue

    _emit(show_issue(workspace(), number), format)


@issue_app.command("close")
def close_cmd(
    number: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason"),
    format: TextJson = format_option(),
):
    """Close issue NUMBER without a revision (e.g. not a problem, duplicate)."""
    from ..tracker import close_issue

    _emit(close_issue(workspace(), number, reason), format)
