"""``atlas-registry status``: what the registry holds, at a glance."""

from __future__ import annotations

import typer

from . import app, workspace


@app.command("status")
def status_cmd(format: str = typer.Option("text", "--format", help="text|json")):
    """Schema, object store, cohorts/subjects/scans/lesions, revisions, issues, releases and ingests."""
    import json

    from ..errors import UsageError
    from ..status import status

    if format not in ("text", "json"):
        raise UsageError("USAGE", f"--format must be text or json, not {format!r}")
    st = status(workspace())
    typer.echo(json.dumps(st.to_dict(), indent=2) if format == "json" else st.to_text())
