"""``atlas-registry store``: the content-addressed object store."""

from __future__ import annotations

import typer

from . import app, workspace

store_app = typer.Typer(help="The object store: check that every file the registry records is there, whole.",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("verify")
def verify_cmd(
    format: str = typer.Option("text", "--format", help="text|json"),
    workers: int = typer.Option(None, "--workers", help="hashing threads [default: cores, at most 8]"),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="progress bar on stderr [default: on a terminal]"),
):
    """Read every stored object back: present, its recorded size and SHA-256, read-only. Exit 1 on
    any error."""
    import json
    import sys

    from ..errors import UsageError
    from ..store_check import verify_store

    if format not in ("text", "json"):
        raise UsageError("USAGE", f"--format must be text or json, not {format!r}")
    if progress is None:
        progress = format == "text" and sys.stderr.isatty()
    result = verify_store(workspace(), workers=workers, progress=progress)
    typer.echo(json.dumps(result.to_dict(), indent=2) if format == "json" else result.to_text())
    return 0 if result.ok else 1
