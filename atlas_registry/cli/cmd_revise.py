"""``atlas-registry revise``: corrections to one scan, each validated, recorded and citing its issue."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, format_option, workspace

revise_app = typer.Typer(
    help="Correct a scan: masks, lesions, metadata, standardized-subset membership. "
    "Every revision is validated like ingest and never overwrites history.",
    no_args_is_help=True,
)
app.add_typer(revise_app, name="revise")

ISSUE = typer.Option(None, "--issue", help="the issue this revision resolves (required once a release is published)")
REASON = typer.Option(None, "--reason", help="why (default: the issue's title)")
FORMAT = format_option()
SMOOTH_VOI = typer.Option(None, "--smooth-voi", help="smoothed VOI (default: derived from the raw VOI)")
SMOOTH_NII = typer.Option(None, "--smooth-nii", help="smoothed NIfTI (default: derived from the raw VOI)")
STANDARD = typer.Option(None, "--standard", help="standard-space mask (default: resampled from the native one)")


def _done(o, format: str) -> None:
    import json

    from ..history import describe

    if format == "json":
        typer.echo(json.dumps(o.to_dict(), indent=2))
        return
    issue = f", resolves issue #{o.issue}" if o.issue else ""
    typer.echo(f"revision {o.revision} ({o.kind}) of {o.scan}{issue}")
    for line in describe(o.details):
        typer.echo(f"    {line}")


@revise_app.command("mask")
def mask_cmd(
    scan: str = typer.Argument(...),
    raw: Path = typer.Option(..., "--raw", help="the corrected raw VOI"),
    lesion: int = typer.Option(0, "--lesion", help="lesion number (0 = primary)"),
    smooth_voi: Path = SMOOTH_VOI,
    smooth_nii: Path = SMOOTH_NII,
    standard: Path = STANDARD,
    issue: int = ISSUE,
    reason: str = REASON,
    format: TextJson = FORMAT,
):
    """Replace the mask of a lesion of SCAN (primary or secondary)."""
    from ..revise import MaskFiles, replace_mask

    files = MaskFiles.from_paths(raw, smooth_voi, smooth_nii, standard)
    _done(replace_mask(workspace(), scan, lesion, files, issue=issue, reason=reason), format)


@revise_app.command("add-lesion")
def add_cmd(
    scan: str = typer.Argument(...),
    raw: Path = typer.Option(..., "--raw", help="raw VOI of the new lesion"),
    hemisphere: str = typer.Option(None, "--hemisphere", help="left|right|other (default: from the mask)"),
    location: str = typer.Option(None, "--location", help="cortical|subcortical|other (default: from the mask)"),
    tracer: str = typer.Option(..., "--tracer", help="code of who traced it (T01..)"),
    reviewer: str = typer.Option(..., "--reviewer", help="code of who reviewed it (T01..)"),
    smooth_voi: Path = SMOOTH_VOI,
    smooth_nii: Path = SMOOTH_NII,
    standard: Path = STANDARD,
    issue: int = ISSUE,
    reason: str = REASON,
    format: TextJson = FORMAT,
):
    """Add a secondary lesion to SCAN (numbered by size; others renumber)."""
    from ..revise import MaskFiles, add_lesion

    files = MaskFiles.from_paths(raw, smooth_voi, smooth_nii, standard)
    _done(
        add_lesion(
            workspace(),
            scan,
            files,
            hemisphere=hemisphere,
            location=location,
            tracer=tracer,
            reviewer=reviewer,
            issue=issue,
            reason=reason,
        ),
        format,
    )


@revise_app.command("remove-lesion")
def remove_cmd(
    scan: str = typer.Argument(...),
    lesion: int = typer.Option(..., "--lesion", help="lesion number (0 = primary: the largest secondary is promoted)"),
    issue: int = ISSUE,
    reason: str = REASON,
    format: TextJson = FORMAT,
):
    """Remove a lesion of SCAN (retired, not deleted)."""
    from ..revise import remove_lesion

    _done(remove_lesion(workspace(), scan, lesion, issue=issue, reason=reason), format)


@revise_app.command("metadata")
def metadata_cmd(
    scan: str = typer.Argument(...),
    set_: list[str] = typer.Option(..., "--set", help="FIELD=VALUE (repeatable; empty VALUE clears)"),
    lesion: int = typer.Option(None, "--lesion", help="correct this lesion's annotation instead of the scan report"),
    issue: int = ISSUE,
    reason: str = REASON,
    format: TextJson = FORMAT,
):
    """Correct scan report fields (stroke_type, primary_location, primary_hemisphere, vascular_territory,
    pvh, dwmh, notes) or, with --lesion, annotation fields (hemisphere, location, tracer, reviewer)."""
    from ..errors import UsageError
    from ..revise import correct_metadata

    fields: dict[str, str | None] = {}
    for item in set_:
        if "=" not in item:
            raise UsageError("REV006", f"--set wants FIELD=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        fields[k.strip()] = v
    _done(correct_metadata(workspace(), scan, fields, lesion=lesion, issue=issue, reason=reason), format)


@revise_app.command("exclude")
def exclude_cmd(
    scan: str = typer.Argument(...),
    note: str = typer.Option(None, "--note", help="why it leaves the standardized subset (default: the reason)"),
    issue: int = ISSUE,
    reason: str = REASON,
    format: TextJson = FORMAT,
):
    """Exclude SCAN from the standardized subset."""
    from ..revise import exclude_scan

    _done(exclude_scan(workspace(), scan, note, issue=issue, reason=reason), format)


@revise_app.command("include")
def include_cmd(scan: str = typer.Argument(...), issue: int = ISSUE, reason: str = REASON, format: TextJson = FORMAT):
    """Re-include SCAN in the standardized subset."""
    from ..revise import include_scan

    _done(include_scan(workspace(), scan, issue=issue, reason=reason), format)


@revise_app.command("withdraw")
def withdraw_cmd(
    scan: str = typer.Argument(..., help="a scan cXXXXsXXXXtXX, or a subject cXXXXsXXXX: all its scans"),
    issue: int = ISSUE,
    reason: str = REASON,
    format: TextJson = FORMAT,
):
    """Withdraw SCAN (or every scan of a subject, at once) from every future release: consent
    withdrawn, ineligible, a duplicate. Published releases keep it."""
    import re

    from ..revise import withdraw_scan, withdraw_subject

    if re.fullmatch(r"c\d{4}s\d{4}", scan):
        outcomes = withdraw_subject(workspace(), scan, issue=issue, reason=reason)
        if format == "json":
            import json

            typer.echo(json.dumps([o.to_dict() for o in outcomes], indent=2))
            return
        for o in outcomes:
            _done(o, format)
        return
    _done(withdraw_scan(workspace(), scan, issue=issue, reason=reason), format)


@revise_app.command("reinstate")
def reinstate_cmd(scan: str = typer.Argument(...), issue: int = ISSUE, reason: str = REASON, format: TextJson = FORMAT):
    """Bring a withdrawn SCAN back into the registry's views and the next releases."""
    from ..revise import reinstate_scan

    _done(reinstate_scan(workspace(), scan, issue=issue, reason=reason), format)
