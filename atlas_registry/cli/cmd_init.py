"""``atlas-registry init``: create or upgrade a registry to the newest schema."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, workspace


@app.command("init")
def init_cmd(
    format: TextJson = format_option(),
    reader_role: str = typer.Option(
        None,
        "--reader-role",
        help="PostgreSQL: also create (or update) this "
        "least-privilege role for direct clients (SELECT on the views only).",
    ),
):
    """Create the registry (or upgrade it to the newest schema). Running it again is a no-op."""
    import json

    from .. import db

    ws = workspace()
    before = db.current_revision(ws)
    db.upgrade(ws)
    after = db.current_revision(ws)
    result: dict = {
        "url": _redact(ws.url),
        "home": str(ws.home),
        "from": before,
        "to": after,
        "changed": before != after,
    }
    if reader_role is not None:
        from .. import reader_role as roles

        result["reader_role"] = roles.create(ws, reader_role).to_dict()
    if format == "json":
        typer.echo(json.dumps(result, indent=2))
    elif before == after:
        typer.echo(f"registry at {result['url']} is already at schema {after}")
    else:
        typer.echo(f"registry at {result['url']} upgraded {before or 'empty'} -> {after}")
    if reader_role is not None and format != "json":
        r = result["reader_role"]
        typer.echo(
            f"reader role {r['role']} {'created' if r['created'] else 'updated'}: SELECT on "
            f"{', '.join(r['views'])} in schema {r['schema']}, read-only, statement timeout "
            f"{r['statement_timeout']}"
        )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
