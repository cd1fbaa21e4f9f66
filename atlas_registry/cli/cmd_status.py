"""``atlas-registry status``: what the registry holds, at a glance."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, workspace


@app.command("status")
def status_cmd(format: TextJson = format_option()):
    """Schema, object store, cohorts/subjects/scans/lesions, revisions, issues, releases and ingests."""
    import json

    from ..status import status

    st = status(workspace())
    typer.echo(json.dumps(st.to_dict(), indent=2) if format == "json" else st.to_text())
