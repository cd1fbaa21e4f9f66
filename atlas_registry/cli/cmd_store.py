"""``atlas-registry store``: the content-addressed object store."""

from __future__ import annotations

import typer

from . import TextJson, app, emit, format_option, progress_option, want_progress, workspace

store_app = typer.Typer(
    help="The object store (a folder or S3): check that every file the registry records is there, whole; "
    "remove the objects nothing refers to.",
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


@store_app.command("gc")
def gc_cmd(
    yes: bool = typer.Option(False, "--yes", help="remove the orphaned objects [default: a dry run that lists them]"),
    format: TextJson = format_option(),
):
    """List the objects of the store that no registry row or release refers to (left by interrupted
    ingests), and with --yes remove them. Never removes an object a row or a release uses."""
    from ..store_check import gc_store

    emit(gc_store(workspace(), yes=yes), format)
    return 0
