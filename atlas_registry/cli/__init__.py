"""The ``atlas-registry`` command line: thin wrappers over library functions.

Every command lives in its own module ``cmd_<name>.py`` that registers itself on :data:`app`;
heavy imports happen inside the command functions so that ``--help`` answers at once.
Exit codes: 0 success, 1 input or request refused, 2 usage error.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer

from ..config import Workspace

app = typer.Typer(
    name="atlas-registry",
    help="Curate, validate and publish stroke lesion datasets (ATLAS) from an SQL registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)

_state: dict = {"home": None, "db": None, "debug": False}


def _version(value: bool) -> None:
    """``--version``: the program's version and the newest registry schema it knows (no heavy imports)."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("atlas-registry")
    except PackageNotFoundError:
        v = "unknown (not installed)"
    heads = sorted(p.stem for p in _migration_files())
    typer.echo(f"atlas-registry {v} (registry schema {heads[-1] if heads else 'unknown'})")
    raise typer.Exit(0)


def _migration_files():
    from ..config import migrations_dir

    return [p for p in (migrations_dir() / "versions").glob("[0-9]*.py")]


@app.callback()
def _root(
    home: str = typer.Option(None, "--home", help="Workspace folder (env ATLAS_REGISTRY_HOME; default ./atlas-workspace)."),
    db: str = typer.Option(None, "--db", help="SQLAlchemy URL of the registry (env ATLAS_REGISTRY_DB; default SQLite in the workspace)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and the registry schema it writes, and exit."),
):
    _state.update(home=home, db=db, debug=debug or _state["debug"])


def workspace() -> Workspace:
    """The workspace chosen by the global options and environment."""
    return Workspace.resolve(_state["home"], _state["db"])


def _register_commands() -> None:
    from . import __path__ as pkg_path

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg_path)):
        if mod.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{mod}")


_register_commands()


def _click_exceptions():
    """Typer's click exceptions (newer typer vendors click as ``typer._click``)."""
    try:
        from typer._click import exceptions as cex
    except ImportError:  # typer that uses the click package
        from click import exceptions as cex
    return cex


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors with their rule code, tracebacks only with --debug."""
    from ..errors import AtlasError

    cex = _click_exceptions()

    args = list(sys.argv[1:] if argv is None else argv)
    _state["debug"] = "--debug" in args or os.environ.get("ATLAS_REGISTRY_DEBUG") == "1"
    try:
        rv = app(args=args, prog_name="atlas-registry", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Abort:
        print("aborted", file=sys.stderr)
        code = 1
    except cex.UsageError as e:
        e.show()
        code = 2
    except cex.ClickException as e:
        e.show()
        code = 1
    except typer.Exit as e:
        code = e.exit_code
    except AtlasError as e:
        if _state["debug"]:
            import traceback

            traceback.print_exc()
        print(f"error [{e.code}] {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # noqa: BLE001 - last resort: still one line unless --debug
        if _state["debug"]:
            raise
        print(f"error [INTERNAL] {type(e).__name__}: {e} (rerun with --debug for a traceback)", file=sys.stderr)
        code = 1
    if argv is None:
        sys.exit(code)
    return code
