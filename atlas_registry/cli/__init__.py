"""The ``atlas-registry`` command line: thin wrappers over library functions.

Every command lives in its own module ``cmd_<name>.py`` that registers itself on :data:`app`;
heavy imports happen inside the command functions so that ``--help`` answers at once.
Exit codes: 0 success, 1 input or request refused, 2 usage error.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
from typing import Literal

import typer

from ..config import Workspace

app = typer.Typer(
    name="atlas-registry",
    help="Curate, validate and publish stroke lesion datasets (ATLAS) from an SQL registry.\n\n"
    "The global options --home, --db and --debug may also follow the subcommand.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)

_state: dict = {"home": None, "db": None, "debug": False}

#: ``--format`` of a command whose result is text or (indented, schema-backed) JSON.
TextJson = Literal["text", "json"]

#: The code of a malformed command line (exit 2): docs/codes.md.
USAGE_CODE = "CLI001"

#: The options every command accepts, before or after the subcommand.
GLOBAL_OPTIONS = ("home", "db", "debug")


def format_option(default: str = "text", help: str = "output: text for people, json (indented) for programs"):
    """The one ``--format`` option: a choice (an unknown value is a usage error, exit 2)."""
    return typer.Option(default, "--format", help=help)


def progress_option():
    """The one ``--progress/--no-progress`` option of long-running commands (None: on a terminal)."""
    return typer.Option(None, "--progress/--no-progress", help="progress bar on stderr [default: on a terminal]")


def want_progress(progress: bool | None, format: str = "text") -> bool:
    """``--progress``/``--no-progress`` as given, else a bar for text output on a terminal."""
    if progress is None:
        return format == "text" and sys.stderr.isatty()
    return progress


@contextlib.contextmanager
def counting_bar(label: str, enabled: bool):
    """A progress bar of done/total items on stderr (no refresh thread: worker processes may be forked
    while it is live), yielding the callback ``progress(done, total, description)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        auto_refresh=False,
        transient=True,
        disable=not enabled,
    )
    with bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)
            bar.refresh()

        yield progress


def echo_json(obj) -> None:
    """Print a JSON document the one way: indented, keys in a stable order, UTF-8 as is."""
    import json

    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def emit(result, format: str) -> None:
    """Print a result the one way: ``result.to_text()`` or ``result.to_dict()`` as indented JSON."""
    if format == "json":
        echo_json(result.to_dict())
    else:
        typer.echo(result.to_text())


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
    home: str = typer.Option(
        None, "--home", metavar="DIR", help="Workspace folder (env ATLAS_REGISTRY_HOME; default ./atlas-workspace)."
    ),
    db: str = typer.Option(
        None,
        "--db",
        metavar="URL",
        help="SQLAlchemy URL of the registry (env ATLAS_REGISTRY_DB; default SQLite in the workspace).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and the registry schema it writes, and exit.",
    ),
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


def _set_global(ctx, param, value):
    """A global option given after the subcommand (``status --home X``)."""
    if param.name == "debug":
        if value:
            _state["debug"] = True
    elif value is not None:
        _state[param.name] = value
    return value


_TYPE_METAVARS = {"int": "N", "float": "NUMBER", "Path": "PATH", "PosixPath": "PATH", "bool": "BOOL"}


def _type_name(param) -> str:
    desc = getattr(param, "type_descriptor", None)  # typer >= 0.22; older typer has click types
    if desc is not None:
        ann = desc.annotation
        if getattr(desc, "is_list", False):
            from typing import get_args

            ann = (get_args(ann) or (str,))[0]
        return getattr(ann, "__name__", str(ann))
    return {"integer": "int", "text": "str", "path": "Path"}.get(getattr(param.type, "name", "str"), "str")


def _choices(param) -> tuple[str, ...] | None:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return tuple(str(getattr(c, "value", c)) for c in desc.choices) if desc.is_choice else None
    return tuple(param.type.choices) if hasattr(getattr(param, "type", None), "choices") else None


def first_sentence(text: str) -> str:
    """A command's summary in the command list: its help's first sentence, never cut mid-word."""
    import re

    flat = " ".join(text.split())
    m = re.match(r"(.+?[.!?])(\s|$)", flat)
    return (m.group(1) if m else flat).rstrip(".")


def _polish(cmd, root: bool = True) -> None:
    """Make every command's help clean and its options uniform (metavars, defaults, summaries),
    and let every subcommand take the global options too."""
    import copy

    if root:
        globals_ = [p for p in cmd.params if p.name in GLOBAL_OPTIONS]
        _polish.globals_ = globals_  # type: ignore[attr-defined]
    else:
        names = {p.name for p in cmd.params}
        for g in _polish.globals_:  # type: ignore[attr-defined]
            if g.name not in names:
                q = copy.copy(g)
                q.expose_value = False
                q.callback = _set_global
                q.is_eager = True
                cmd.params.append(q)
    for p in cmd.params:
        if p.name == "help" or getattr(p, "hidden", False):
            continue
        if p.param_type_name == "argument":
            if p.metavar is None:
                p.metavar = p.name.upper()
            _plain_argument(p)
        elif not getattr(p, "is_flag", False) and p.metavar is None:
            choices = _choices(p)
            p.metavar = f"[{'|'.join(choices)}]" if choices else _TYPE_METAVARS.get(_type_name(p), "TEXT")
        help_ = getattr(p, "help", None) or ""
        if "[default:" in help_ or p.default is None or p.default is False or p.default == "":
            p.show_default = False
    if cmd.help and not cmd.short_help:
        cmd.short_help = first_sentence(cmd.help)
    for sub in (getattr(cmd, "commands", None) or {}).values():
        _polish(sub, root=False)


def _plain_argument(p) -> None:
    """Typer >= 0.22 shows arguments as ``{scan}`` in the usage line and ``SCAN <str>`` in the help;
    show ``SCAN`` (``[SCAN]`` when optional) like every other Unix tool."""
    if hasattr(p, "_usage_display_name"):
        shown = p.metavar if p.required else f"[{p.metavar}]"
        p._usage_display_name = lambda: shown + ("..." if p.nargs != 1 else "")
    if hasattr(p, "display_type_rich"):
        p.display_type_rich = lambda ctx: None


_CLI = None


def cli():
    """The click command tree of :data:`app`, polished once."""
    global _CLI
    if _CLI is None:
        import typer.main

        _CLI = typer.main.get_command(app)
        _polish(_CLI)
    return _CLI


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
        rv = cli().main(args=args, prog_name="atlas-registry", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Abort:
        print("aborted", file=sys.stderr)
        code = 1
    except cex.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "atlas-registry"
        message = e.format_message().replace("Value error, ", "").rstrip(".")  # typer >= 0.22 words it so
        print(f"error [{USAGE_CODE}] {message} (see {where} --help)", file=sys.stderr)
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
