"""``atlas-registry intake DELIVERY --cohort CXXXX --out NATIVE_ROOT [--map MAP.csv]``."""

from __future__ import annotations

import typer

from . import TextJson, app, format_option, progress_option, want_progress, workspace


@app.command("intake")
def intake_cmd(
    delivery: str = typer.Argument(..., help="The site's delivery: DICOM series, a BIDS dataset or NIfTI files."),
    cohort: str = typer.Option(..., "--cohort", help="Cohort code cXXXX the delivery becomes."),
    out: str = typer.Option(..., "--out", help="New native root to write (must not exist or be empty)."),
    map_path: str = typer.Option(None, "--map", help="MAP.csv [default: MAP.csv at the top of the delivery]."),
    plan_only: bool = typer.Option(False, "--plan", help="Print the series/files chosen and skipped; write nothing."),
    workers: int = typer.Option(0, "--workers", help="Processes for the final validation [default: all cores]."),
    format: TextJson = format_option(),
    show_progress: bool = progress_option(),
):
    """Make a site's delivery an ATLAS native cohort: identifiers assigned, headers left behind."""
    import json
    from pathlib import Path

    from ..intake import plan, run

    ws = workspace()
    if plan_only:
        kind, scans, skipped = plan(Path(delivery), Path(map_path) if map_path else None, ws)
        rows = [{"subject": s.subject, "session": s.session, "t1": s.source} for s in scans]
        if format == "json":
            typer.echo(json.dumps({"kind": kind, "scans": rows, "skipped": skipped}, sort_keys=True, indent=2))
            return
        typer.echo(f"{kind} delivery: {len(scans)} scan(s)")
        for r in rows:
            typer.echo(f"  take  {r['subject']} {r['session']}: {r['t1']}")
        for s in skipped:
            typer.echo(f"  skip  {s['subject']} {s['session']}: {s['series']} ({s['reason']})")
        return

    from ..progress import bar

    with bar("intake", enabled=want_progress(show_progress, format)) as b:

        def progress(done: int, total: int, label: str) -> None:
            b.update(done, total, label)

        res = run(delivery, cohort, out, ws, map_path=map_path, progress=progress, workers=workers or None)
    from collections import Counter

    reasons = dict(sorted(Counter(s["reason"].split(" (")[0] for s in res.skipped).items()))
    if format == "json":
        typer.echo(
            json.dumps(
                {
                    "kind": res.kind,
                    "cohort": res.cohort,
                    "out": str(res.out),
                    "scans": res.scans,
                    "new_subjects": res.new_subjects,
                    "new_sessions": res.new_sessions,
                    "skipped": len(res.skipped),
                    "skipped_reasons": reasons,
                    "warnings": res.warnings,
                },
                sort_keys=True,
                indent=2,
            )
        )
        return
    typer.echo(
        f"intake of {delivery} ({res.kind}): {len(res.scans)} scan(s) of cohort {res.cohort} written to "
        f"{res.out}; {res.new_subjects} new subject(s), {res.new_sessions} new session(s), "
        f"{len(res.skipped)} series skipped, {res.warnings} validation warning(s)"
    )
