"""``atlas-registry release``: plan, build, publish and compare releases."""

from __future__ import annotations

from pathlib import Path

import typer

from . import TextJson, app, format_option, progress_option, want_progress, workspace

release_app = typer.Typer(
    help="Plan, build, publish and compare releases (specifications in releases/*.toml).", no_args_is_help=True
)
app.add_typer(release_app, name="release")

SPECS = typer.Option(
    None,
    "--specs",
    help="folder of release specifications NAME.toml (default: the project's "
    "releases/); once built, the registry keeps the specification",
)
FORMAT = format_option()


def _json(obj) -> None:
    import json

    typer.echo(json.dumps(obj, indent=2, default=str))


@release_app.command("plan")
def plan_cmd(name: str = typer.Argument(...), specs: Path = SPECS, format: TextJson = FORMAT):
    """What release NAME would publish, and every change since the previous published release."""
    from ..release import plan

    p = plan(workspace(), name, specs=specs)
    _json(p.to_dict()) if format == "json" else typer.echo(p.to_text())


@release_app.command("build")
def build_cmd(
    name: str = typer.Argument(...),
    out: Path = typer.Option(
        None,
        "--out",
        help="folder to create (icpsr/, bids/, parquet/, packages/, MANIFEST.json) "
        "(default: <home>/releases/NAME); with --force, an earlier build there is updated",
    ),
    specs: Path = SPECS,
    cache: Path = typer.Option(None, "--cache", help="cache of derived files (default: <home>/cache)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="derive every file afresh"),
    force: bool = typer.Option(False, "--force", help="replace OUT if it exists"),
    format: TextJson = FORMAT,
    progress: bool = progress_option(),
):
    """Build release NAME into OUT atomically (a published release is rebuilt and checked)."""

    from ..release import build

    ws = workspace()
    cache_dir = None if no_cache else (cache or ws.home / "cache")
    out = out or ws.home / "releases" / name
    o = build(ws, name, out, specs=specs, cache_dir=cache_dir, force=force, progress=want_progress(progress, format))
    if format == "json":
        _json(o.to_dict())
    else:
        what = (
            "rebuilt and matches its published manifest"
            if o.reproduced
            else "unchanged since its last build (same inputs, same folder)"
            if o.unchanged
            else f"built ({o.kept} files kept from the earlier build)"
            if o.kept
            else "built"
        )
        typer.echo(
            f"{o.name} ({o.version}) {what}: {o.files} files, {o.bytes / 1e6:.1f} MB in {o.out} "
            f"(revision {o.revision}, manifest sha256 {o.manifest_sha256})"
        )


@release_app.command("publish")
def publish_cmd(
    name: str = typer.Argument(...),
    specs: Path = SPECS,
    out: Path = typer.Option(None, "--out", help="the folder the release was built into (default: where it was built)"),
    format: TextJson = FORMAT,
    progress: bool = progress_option(),
):
    """Freeze the built release NAME (its content can no longer change), write its deposit zip into the
    build folder and print the manifest's SHA-256 (also written into packages/RELEASE-NOTES.md)."""
    from ..release import publish

    o = publish(workspace(), name, specs=specs, out=out, progress=want_progress(progress, format))
    if format == "json":
        _json(o.to_dict())
    else:
        typer.echo(
            f"published {o.name} ({o.version}): {o.scans} scans, {o.files} files, revision "
            f"{o.last_revision_id}" + (f"; previous release {o.previous}" if o.previous else "")
        )
        typer.echo(f"manifest sha256 {o.manifest_sha256}")
        typer.echo(f"deposit zip {o.package_path} ({o.package_size} bytes) sha256 {o.package_sha256}")
        typer.echo(f"check a copy: atlas-registry release verify DIR --manifest-sha256 {o.manifest_sha256}")


@release_app.command("diff")
def diff_cmd(a: str = typer.Argument(...), b: str = typer.Argument(...), format: TextJson = FORMAT):
    """Scans and files added, removed or changed from release A to B, with the issues behind them."""
    from ..release import diff

    d = diff(workspace(), a, b)
    _json(d.to_dict()) if format == "json" else typer.echo(d.to_text())


@release_app.command("verify")
def verify_cmd(
    target: str = typer.Argument(..., help="a release folder, or the name of a release built in this workspace"),
    format: TextJson = FORMAT,
    workers: int = typer.Option(None, "--workers", help="hashing threads [default: cores, at most 8]"),
    progress: bool = progress_option(),
    manifest_sha256: str = typer.Option(
        None,
        "--manifest-sha256",
        metavar="HEX",
        help="the SHA-256 of MANIFEST.json printed at publication (release notes)",
    ),
):
    """Check a release folder (built, copied or downloaded) against its MANIFEST.json: every file
    present with its size and SHA-256, nothing unlisted, and the manifest the one the registry
    published. Exit 1 on any error."""

    import re

    from ..errors import UsageError
    from ..fixity import verify_release
    from ..query import release_dir

    ws = workspace()
    folder = Path(target)
    if not folder.exists() and "/" not in target:
        folder = release_dir(ws, target)
    if manifest_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", manifest_sha256):
        raise UsageError("REL037", "--manifest-sha256 must be 64 hexadecimal digits")
    result = verify_release(
        folder,
        ws=ws,
        workers=workers,
        progress=want_progress(progress, format),
        expected_manifest_sha256=manifest_sha256,
    )
    _json(result.to_dict()) if format == "json" else typer.echo(result.to_text())
    return 0 if result.ok else 1
