"""``atlas-registry store``: the content-addressed object store."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, progress_option, want_progress, workspace

store_app = typer.Typer(
    help="The object store (a folder or S3): check that every file the registry records is there, whole.",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")


@store_app.command("verify")
def verify_cmd(
    format: TextJson = format_option(),
    workers: int = typer.Option(None, "--workers", help="hashing threads [default: cores, at most 8]"),
    progress: bool = progress_option(),
):
    """Read every stored object back: present, its recorded size and SHA-256, read-only. Exit 1 on
    any error."""
    import json

    from ..store_check import verify_store

    result = verify_store(workspace(), workers=workers, progress=want_progress(progress, format))
    typer.echo(json.dumps(result.to_dict(), indent=2) if format == "json" else result.to_text())
    return 0 if result.ok else 1
